"""Labels that travel: every run writes the labels it trained on; a run can train on labels from
a file, identified by its content; a forward correction can estimate T from a first model."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from phuber.core.errors import ConfigError
from phuber.datasets.labels import LABELS_FILE
from phuber.training import run as train
from phuber.training import trainer
from phuber.training.checkpoint import load_checkpoint
from phuber.training.estimate import anchor_transition


def labels_of(run_dir):
    with np.load(run_dir / LABELS_FILE) as f:
        return {k: f[k] for k in f.files}


def test_a_run_writes_its_labels_and_another_trains_on_them(tiny_cfg, tmp_path):
    """noisy_labels.npz: int16 noisy and clean labels of the whole training set (before the
    validation split), its SHA-256 in metrics.json and the checkpoint. Read back through
    dataset.train.label_file (.npz, .npy, .json), it reproduces the realized noise exactly."""
    noise = ("dataset.train.corrupt_prob=0.4", "dataset.train.noise_type=pairflip")
    train.run(tiny_cfg(*noise, "dataset.val.split=0.1", "hparams.epochs=0"), tmp_path / "a")
    written = labels_of(tmp_path / "a")
    assert written["noisy_labels"].dtype == np.int16 and written["noisy_labels"].shape == (4000,)
    assert 0.35 < np.mean(written["noisy_labels"] != written["clean_labels"]) < 0.45
    digest = hashlib.sha256((tmp_path / "a" / LABELS_FILE).read_bytes()).hexdigest()
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert a["data"]["noisy_labels_sha256"] == digest
    assert load_checkpoint(tmp_path / "a" / "final_model.pt")["labels_sha256"] == digest
    np.save(tmp_path / "labels.npy", written["noisy_labels"])
    (tmp_path / "labels.json").write_text(json.dumps(written["noisy_labels"].tolist()))
    for i, source in enumerate((tmp_path / "a" / LABELS_FILE, "labels.npy", "labels.json")):
        path = tmp_path / source
        cfg = tiny_cfg(f"+dataset.train.label_file={path}", "dataset.val.split=0.1")
        cfg.hparams.epochs = 0
        train.run(cfg, tmp_path / f"b{i}")
        b = json.loads((tmp_path / f"b{i}" / "metrics.json").read_text())
        assert b["data"]["noisy_labels_sha256"] == digest  # the same labels, byte for byte
        assert b["data"]["transition_matrix"] == a["data"]["transition_matrix"]
        assert b["data"]["realized_noise_rate"] == a["data"]["realized_noise_rate"]


def test_a_label_file_is_identified_by_its_content(tiny_cfg, tmp_path):
    labels = np.arange(4000) % 10
    np.save(tmp_path / "one.npy", labels)
    shutil.copy(tmp_path / "one.npy", tmp_path / "copy.npy")
    np.save(tmp_path / "other.npy", (labels + 1) % 10)

    def identity(name):
        return train.run_identity(tiny_cfg(f"+dataset.train.label_file={tmp_path / name}"))

    assert identity("one.npy") == identity("copy.npy") != identity("other.npy")
    settings = identity("one.npy").settings
    want = hashlib.sha256((tmp_path / "one.npy").read_bytes()).hexdigest()
    assert settings["dataset.train.label_file"] == f"sha256:{want}"


@pytest.mark.parametrize(
    "content,message",
    [
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros(99, int)), "holds 99 labels"),
        (lambda p: np.save(p.with_suffix(".npy"), np.full(4000, 10)), "label 10 at index 0"),
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros(4000)), "must be integers"),
        (lambda p: np.save(p.with_suffix(".npy"), np.array([{}] * 4000)), "damaged or not a .npy"),
        (lambda p: p.with_suffix(".txt").write_text("1 2 3"), "label file (.npy, .npz, .json)"),
        (lambda p: np.savez(p.with_suffix(".npz"), labels=np.zeros(4000, int)), "no noisy_labels"),
        (lambda p: p.with_suffix(".json").write_text("[1, 2"), "not a .json file of labels"),
    ],
)
def test_a_bad_label_file_is_one_message(cli, tmp_path, content, message):
    content(tmp_path / "labels")
    (path,) = tmp_path.glob("labels.*")
    code, output = cli("train.py", f"+dataset.train.label_file={path}", "hparams.epochs=0")
    assert code == 2 and message in output and "Traceback" not in output, output
    assert "dataset.train.label_file=" in output


def test_a_label_file_is_the_noise(cli, tmp_path):
    np.save(tmp_path / "labels.npy", np.arange(4000) % 10)
    path = f"+dataset.train.label_file={tmp_path / 'labels.npy'}"
    code, output = cli("train.py", path, "dataset.train.corrupt_prob=0.4", "hparams.epochs=0")
    assert code == 2 and "dataset.train.label_file=" in output and "used alone" in output, output


# -- forward correction with an estimated T (Patrini et al., CVPR 2017) ------------------------


def patrini_estimator(eta_corr, filter_outlier):
    """Written from NoiseEstimator.fit and .predict (giorgiop/loss-correction, models.py at
    15a79de; alpha=0, row_normalize=True), in NumPy 2 (``method=`` for ``interpolation=``),
    its in-place zeroing of a view included."""
    eta_corr = eta_corr.copy()
    c = eta_corr.shape[1]
    T = np.empty((c, c))
    for i in np.arange(c):
        if not filter_outlier:
            idx_best = np.argmax(eta_corr[:, i])
        else:
            eta_thresh = np.percentile(eta_corr[:, i], 97, method="higher")
            robust_eta = eta_corr[:, i]
            robust_eta[robust_eta >= eta_thresh] = 0.0
            idx_best = np.argmax(robust_eta)
        for j in np.arange(c):
            T[i, j] = eta_corr[idx_best, j]
    return T / T.sum(axis=1)[:, np.newaxis]


@pytest.mark.parametrize("filter_outlier", [True, False])
def test_anchor_points_as_patrinis_estimator(filter_outlier):
    """On predictions whose anchors are confident in their own class only, ours equals theirs
    (their in-place zeroing then changes nothing)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2000, 10)) + 6 * np.eye(10)[rng.integers(0, 10, 2000)]
    eta = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ours = anchor_transition(eta, 97 if filter_outlier else None)
    np.testing.assert_allclose(ours, patrini_estimator(eta, filter_outlier), rtol=1e-12)
    assert np.allclose(ours.sum(1), 1) and (np.diag(ours) > 0.5).all()


def test_forward_with_t_estimated_from_a_ce_run(tiny_cfg, tmp_path):
    """Stage 1 trains CE; stage 2 estimates T from its checkpoint on the same noisy labels,
    records the estimate and its error against the true T, and trains with it; a checkpoint of
    a run on other labels is refused."""
    noise = ("dataset.train.noise_type=asymmetric", "dataset.train.corrupt_prob=0.4")
    train.run(tiny_cfg("loss=ce", *noise, "hparams.epochs=2"), tmp_path / "ce")
    source = tmp_path / "ce" / "final_model.pt"
    cfg = tiny_cfg("loss=forward", *noise, f"loss.estimate_from={source}")
    built = trainer.Trainer(cfg, tmp_path / "probe")
    model = load_checkpoint(source)["model"]
    probs = _predictions(built, model)
    want = anchor_transition(probs, 97)
    np.testing.assert_allclose(built.loss_fn.log_transition.exp().numpy(), want, atol=1e-6)
    train.run(cfg, tmp_path / "forward")
    data = json.loads((tmp_path / "forward" / "metrics.json").read_text())["data"]
    np.testing.assert_allclose(data["estimated_transition"], want, atol=1e-6)
    true = np.array(data["transition_matrix"])
    assert data["estimation_error_realized"]["max_abs"] == pytest.approx(
        np.abs(want - true).max(), abs=1e-5
    )
    assert "estimation_error_true" in data and data["estimated_from"] == str(source)
    other = tiny_cfg(
        "loss=forward", *noise, "dataset.train.noise_seed=7", f"loss.estimate_from={source}"
    )
    with pytest.raises(ConfigError, match="trained on other labels"):
        train.run(other, tmp_path / "refused")


def _predictions(trainer, state):
    from phuber.models import LeNet

    model = LeNet()
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        x = trainer.eval_transform(trainer.train_set.images)
        return torch.softmax(model(x), 1).double().numpy()


def test_the_two_stage_grid_composes(compose_cfg):
    stage1 = compose_cfg(["+experiment=forward_estimated_ce", "seed=1"])
    stage2 = compose_cfg(
        ["+experiment=forward_estimated", "seed=1", "dataset.train.corrupt_prob=0.4"]
    )
    assert stage1.loss._target_.endswith(".CrossEntropy")
    assert stage2.loss.estimate_from == (
        "multirun/forward_estimated/mnist_5k/ce/symmetric_rho0.4_seed1/final_model.pt"
    )
