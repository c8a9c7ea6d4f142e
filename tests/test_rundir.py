"""A finished result is never overwritten, a resume never mixes settings, storage faults are
reported, and one run directory has one writer at a time."""

import errno
import json
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from phuber.core.errors import CheckpointError, RunDirError, StorageError
from phuber.core.files import atomic_write
from phuber.core.rundir import STATUSES, RunDir
from phuber.training import run as train
from phuber.training.checkpoint import load_checkpoint, save_checkpoint
from phuber.training.runtime import resolve_seeds

RESULTS = ("metrics.json", "most_recent.pt", "final_model.pt")


def files_of(run_dir):
    """The results' bytes and modification times: what must not change."""
    paths = [run_dir / name for name in RESULTS if (run_dir / name).exists()]
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}


def test_rerun_into_a_completed_run_dir_skips_it(cli, tmp_path):
    args = ["hparams.epochs=1", "seed=0", "device=cpu", "tensorboard=false", "hydra.run.dir=run"]
    code, output = cli("train.py", *args)
    assert code == 0, output
    before = files_of(tmp_path / "run")
    assert set(RESULTS) == before.keys()
    code, output = cli("train.py", *args)
    assert code == 0, output
    skipped = [line for line in output.splitlines() if "Skipped" in line]
    assert len(skipped) == 1 and str(tmp_path / "run" / "metrics.json") in skipped[0]
    assert "Epoch" not in output and "Test accuracy" not in output
    assert files_of(tmp_path / "run") == before


def test_completed_run_with_other_settings_is_refused_and_kept(cli, tmp_path):
    args = ["hparams.epochs=1", "seed=0", "device=cpu", "tensorboard=false", "hydra.run.dir=run"]
    assert cli("train.py", *args)[0] == 0
    before = files_of(tmp_path / "run")
    code, output = cli("train.py", *args, "hparams.batch_size=64", "loss=ce", "seed=1")
    assert code == 2 and "holds a completed run with other settings" in output, output
    for line in (
        "hparams.batch_size: 32 in the completed run, 64 now",
        "loss.tau: 10 in the completed run, <not set> now",
        "seed: 0 in the completed run, 1 now",
    ):
        assert line in output
    assert "Traceback" not in output
    assert files_of(tmp_path / "run") == before


def test_relaunched_sweep_redoes_only_unfinished_jobs(cli, tmp_path):
    args = ["--multirun", "loss=ce,phuber_ce", "hparams.epochs=1", "seed=0", "device=cpu"]
    args += ["tensorboard=false", "hydra.sweep.dir=sweep"]
    assert cli("train.py", *args)[0] == 0
    done = files_of(tmp_path / "sweep" / "0")
    # Job 1 as a preempted job leaves it: a mid-run checkpoint and a "preempted" status.
    metrics_path = tmp_path / "sweep" / "1" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["status"], metrics["final"] = "preempted", {}
    metrics_path.write_text(json.dumps(metrics))
    code, output = cli("train.py", *args)
    assert code == 0, output
    assert output.count("Skipped") == 1 and "resuming from" in output
    assert files_of(tmp_path / "sweep" / "0") == done
    assert json.loads(metrics_path.read_text())["status"] == "completed"


def test_resume_with_changed_settings_is_refused(tiny_cfg, tmp_path):
    train.run(tiny_cfg("hparams.epochs=1"), tmp_path / "first")
    checkpoint = str(tmp_path / "first" / "most_recent.pt")
    for overrides, lines in (
        (["hparams.batch_size=64"], ["hparams.batch_size: 32 in the checkpoint, 64 now"]),
        (
            ["hparams/optimizer=sgd"],
            ["hparams.optimizer._target_: 'torch.optim.Adam' in the checkpoint, "],
        ),
        (
            ["dataset.train.corrupt_prob=0.2", "loss.tau=2"],
            ["corrupt_prob: 0 in the checkpoint, 0.2 now", "loss.tau"],
        ),
        (["dataset.train.noise_seed=4"], ["dataset.train.noise_seed: 0 in the checkpoint, 4 now"]),
    ):
        cfg = tiny_cfg("hparams.epochs=2", *overrides)
        cfg.checkpoint = checkpoint
        with pytest.raises(CheckpointError, match="written with other settings") as err:
            train.run(cfg, tmp_path / "second")
        for line in lines:
            assert line in str(err.value)
        assert not (tmp_path / "second" / "metrics.json").exists()


def test_resume_without_seed_takes_the_checkpoints(tiny_cfg, tmp_path):
    train.run(tiny_cfg("seed=7", "hparams.epochs=2"), tmp_path / "straight")
    train.run(tiny_cfg("seed=7", "hparams.epochs=1"), tmp_path / "first")
    cfg = tiny_cfg("hparams.epochs=2")
    cfg.seed = None
    cfg.checkpoint = str(tmp_path / "first" / "most_recent.pt")
    train.run(cfg, tmp_path / "second")
    a = load_checkpoint(tmp_path / "straight" / "final_model.pt")
    b = load_checkpoint(tmp_path / "second" / "final_model.pt")
    assert b["seed"] == 7 and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    summary = json.loads((tmp_path / "second" / "metrics.json").read_text())["summary"]
    assert summary["seed"] == 7


def test_checkpoint_records_identity_and_config(tiny_cfg, tmp_path):
    train.run(tiny_cfg("dataset.train.corrupt_prob=0.2"), tmp_path)
    state = load_checkpoint(tmp_path / "final_model.pt")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert state["identity"] == metrics["identity"]
    assert state["identity"]["settings"]["dataset.train.corrupt_prob"] == 0.2
    assert state["identity"]["settings"]["loss.tau"] == 10
    assert state["config"]["dataset"]["name"] == "mnist_5k"


def test_upstream_optimizer_state_of_another_optimizer_is_named(tiny_cfg, tmp_path):
    """A checkpoint without recorded settings (the earlier reproduction's) from Adam, resumed
    with SGD: a message, not ``KeyError: 'momentum'``."""
    train.run(tiny_cfg("hparams.epochs=1"), tmp_path / "first")
    state = load_checkpoint(tmp_path / "first" / "most_recent.pt")
    upstream = {k: state[k] for k in ("epoch", "model", "optimizer", "scheduler")}
    save_checkpoint(tmp_path / "upstream.pt", upstream)
    cfg = tiny_cfg("hparams.epochs=2", "hparams/optimizer=sgd")
    cfg.checkpoint = str(tmp_path / "upstream.pt")
    with pytest.raises(CheckpointError, match=r"optimizer.param_groups.0.momentum: missing"):
        train.run(cfg, tmp_path / "second")


@pytest.mark.parametrize(
    "field,value", [("epoch", "three"), ("optimizer", [1, 2]), ("history", {"a": 1})]
)
def test_checkpoint_fields_of_the_wrong_type_are_named(tiny_cfg, tmp_path, field, value):
    train.run(tiny_cfg("hparams.epochs=1"), tmp_path / "first")
    state = load_checkpoint(tmp_path / "first" / "most_recent.pt")
    state[field] = value
    save_checkpoint(tmp_path / "edited.pt", state)
    cfg = tiny_cfg("hparams.epochs=2")
    cfg.checkpoint = str(tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match=rf"wrong type:\n  {field}: "):
        train.run(cfg, tmp_path / "second")


def test_second_process_in_a_run_dir_is_refused(tiny_cfg, tmp_path):
    with (
        RunDir(tmp_path),
        pytest.raises(RunDirError, match=rf"another process \(pid {os.getpid()}"),
    ):
        train.run(tiny_cfg(), tmp_path)  # the lock is held by another open file: refused
    assert not (tmp_path / "metrics.json").exists()
    train.run(tiny_cfg(), tmp_path)  # released: the run goes ahead


def test_temporary_files_of_a_killed_save_are_removed(tiny_cfg, tmp_path):
    stale = tmp_path / ".most_recent.pt.k1ll3d.tmp"
    tmp_path.mkdir(exist_ok=True)
    stale.write_bytes(b"x" * 1000)
    train.run(tiny_cfg(), tmp_path)
    assert not stale.exists() and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "f.json", lambda f: f.write(b"{}"))
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == mode


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_keeps_the_previous_file(tmp_path):
    path = tmp_path / "most_recent.pt"
    save_checkpoint(path, {"epoch": 1, "model": {}})

    def write_then_fail(f):
        f.write(b"partial")
        no_space()

    with pytest.raises(StorageError) as err:
        atomic_write(path, write_then_fail)
    assert str(err.value) == (
        f"no space left on device while writing {path}; the previous most_recent.pt is intact"
    )
    assert load_checkpoint(path)["epoch"] == 1 and [p.name for p in tmp_path.iterdir()] == [
        path.name
    ]


def test_full_disk_during_training_is_one_message(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", no_space)
    code, output = cli("train.py", "hparams.epochs=1", "device=cpu", "hydra.run.dir=run")
    assert code == 2 and "StorageError: no space left on device while writing" in output, output
    assert "most_recent.pt; nothing was written" in output and "Traceback" not in output


def test_eval_and_synthetic_results_are_not_overwritten(cli, tmp_path):
    """The same rule for every finished result: the same request is skipped, another refused."""
    args = ["hparams.epochs=1", "seed=0", "device=cpu", "tensorboard=false", "hydra.run.dir=run"]
    assert cli("train.py", *args)[0] == 0
    checkpoint = f"checkpoint={tmp_path / 'run' / 'final_model.pt'}"
    for script, first, other, result in (
        ("eval.py", [checkpoint], ["loss=gce"], "eval.json"),
        ("synthetic_1.py", ["n_repeat=3", "seed=0"], ["n_repeat=4"], "results.json"),
        ("synthetic_2.py", ["seed=0", "save_fig=false"], ["seed=1"], "results.json"),
    ):
        pinned = f"hydra.run.dir={script}_out"
        code, output = cli(script, *first, pinned)
        assert code == 0, output
        path = tmp_path / f"{script}_out" / result
        before = (path.read_bytes(), path.stat().st_mtime_ns)
        code, output = cli(script, *first, pinned)
        assert code == 0 and "Skipped" in output and str(path) in output, output
        code, output = cli(script, *first, *other, pinned)
        assert code == 2 and "holds a result made with other settings" in output, output
        assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize(
    "field,value",
    [("identity", torch.zeros(2)), ("config", [1]), ("config", {"dataset": "mnist"})],
)
def test_eval_names_malformed_checkpoint_fields(cli, tmp_path, field, value):
    from phuber.models import LeNet

    save_checkpoint(
        tmp_path / "edited.pt", {"epoch": 1, "model": LeNet().state_dict(), field: value}
    )
    code, output = cli("eval.py", f"checkpoint={tmp_path / 'edited.pt'}", "device=cpu")
    assert code == 2 and field in output and "Traceback" not in output, output


TORCH_SHORT_WRITE = RuntimeError(
    "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
)


@pytest.mark.parametrize(
    "free,reason", [(4096, "no space left on device"), (10**12, "not written whole")]
)
def test_torchs_short_write_is_a_storage_error(tmp_path, monkeypatch, free, reason):
    """torch's zip writer reports a full disk as a RuntimeError that says nothing of why: the
    free space tells. The previous file is intact either way."""
    import shutil

    path = tmp_path / "most_recent.pt"
    save_checkpoint(path, {"epoch": 1, "model": {}})

    def short_write(*args, **kwargs):
        raise TORCH_SHORT_WRITE

    monkeypatch.setattr(torch, "save", short_write)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**13, 0, free))
    with pytest.raises(StorageError, match=reason) as err:
        save_checkpoint(path, {"epoch": 2, "model": {}})
    assert "the previous most_recent.pt is intact" in str(err.value)
    assert load_checkpoint(path)["epoch"] == 1 and len(list(tmp_path.iterdir())) == 1


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MiB file system (tmpfs), where the machine lets us mount one."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_a_really_full_disk_during_training_is_one_message(tiny_disk, cli):
    """A LeNet checkpoint (0.5 MiB, twice) does not fit in 1 MiB: torch's own error path."""
    args = ["hparams.epochs=2", "device=cpu", "tensorboard=false", f"hydra.run.dir={tiny_disk}/run"]
    code, output = cli("train.py", *args, "hparams.batch_size=4000")
    assert code == 2 and "StorageError: no space left on device while writing" in output, output
    assert "Traceback" not in output and not list(tiny_disk.rglob(".*.tmp"))


@pytest.mark.parametrize("sweep", [False, True])
def test_an_output_folder_that_cannot_be_one_is_one_message(cli, tmp_path, sweep):
    (tmp_path / "taken").write_text("a file")
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    for where, reason in (("taken", "a file is in its place"), ("taken/run", "Not a directory")):
        args = ["--multirun"] if sweep else []
        code, output = cli("train.py", *args, "hparams.epochs=1", f"{key}={where}")
        assert code == 2 and f"{key}='{where}': cannot be the output folder ({reason})" in output
        assert "Traceback" not in output
    assert (tmp_path / "taken").read_text() == "a file"


def test_files_no_metrics_json_explains_are_not_overwritten(cli, tmp_path):
    """A final_model.pt (or most_recent.pt) in a run dir without a metrics.json saying which run
    wrote it: refused, left as it is."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "final_model.pt").write_bytes(b"someone's model")
    code, output = cli("train.py", "hparams.epochs=1", "device=cpu", "hydra.run.dir=run")
    assert code == 2 and "holds final_model.pt but no readable metrics.json" in output, output
    assert (tmp_path / "run" / "final_model.pt").read_bytes() == b"someone's model"
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_null_noise_seed_is_drawn_once_and_reused_on_resume(tiny_cfg, tmp_path):
    """noise_seed=null (and the split's seed): drawn once, recorded; the resumed run trains on
    the same labels, and its weights equal an uninterrupted run's with those seeds."""
    cfg = tiny_cfg("dataset.train.corrupt_prob=0.4", "dataset.val.split=0.1")
    cfg.dataset.train.noise_seed = cfg.dataset.val.seed = None
    train.run(cfg, tmp_path / "first")
    seeds = json.loads((tmp_path / "first" / "metrics.json").read_text())["identity"]["seeds"]
    noise_seed, split_seed = seeds["dataset.train.noise_seed"], seeds["dataset.val.seed"]
    assert isinstance(noise_seed, int) and isinstance(split_seed, int)
    resumed = cfg.copy()
    resumed.hparams.epochs, resumed.checkpoint = 2, str(tmp_path / "first" / "most_recent.pt")
    train.run(resumed, tmp_path / "resumed")
    metrics = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert metrics["identity"]["seeds"] == seeds
    assert metrics["config"]["dataset"]["train"]["noise_seed"] == noise_seed
    straight = tiny_cfg(
        "dataset.train.corrupt_prob=0.4", "dataset.val.split=0.1", "hparams.epochs=2"
    )
    straight.dataset.train.noise_seed, straight.dataset.val.seed = noise_seed, split_seed
    train.run(straight, tmp_path / "straight")
    a = load_checkpoint(tmp_path / "straight" / "final_model.pt")["model"]
    b = load_checkpoint(tmp_path / "resumed" / "final_model.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    rerun = cfg.copy()  # the same null-seeded command into the completed dir: skipped, not refused
    assert (
        train.run(rerun, tmp_path / "first")["test_acc"]
        == json.loads((tmp_path / "first" / "metrics.json").read_text())["final"]["test_acc"]
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def foreign_or_ours(draw, identity):
    """A metrics.json in a run folder: another tool's (any JSON object, or one that borrows a
    key or two of ours) or a phuber run's of this or another identity, in any status."""
    kind = draw(st.sampled_from(["foreign", "borrowed", "ours", "other run"]), label="kind")
    if kind == "foreign":
        return draw(st.dictionaries(st.text(max_size=8), JSON, max_size=4))
    if kind == "borrowed":
        record = draw(st.dictionaries(st.sampled_from(["status", "final", "history"]), JSON))
        return {**record, "status": draw(st.sampled_from(["completed", "running", 3, None]))}
    status = draw(st.sampled_from(["completed", "running", "preempted", "failed"]), label="status")
    theirs = json.loads(json.dumps(identity))
    if kind == "other run":
        theirs["settings"]["loss.tau"] = 3
    return {"status": status, "identity": theirs, "final": {"test_acc": 0.5}, "history": []}


@settings(max_examples=max(8, settings().max_examples // 3))
@given(data=st.data())
def test_a_metrics_json_no_run_of_ours_explains_is_never_overwritten(tiny_cfg, tmp_path, data):
    """Whatever metrics.json a run folder holds, a run into it either refuses (the file left
    byte for byte), skips (it holds this run, completed), or continues a run of ours that did
    not complete; another tool's file, or a completed run's of other settings, is never
    overwritten."""
    cfg = tiny_cfg("hparams.epochs=0", "save=false")
    identity = train.run_identity(resolve_seeds(cfg)).to_dict()
    record = data.draw(foreign_or_ours(identity), label="metrics.json")
    folder = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    text = json.dumps(record)
    (folder / "metrics.json").write_text(text)
    ours = record.get("identity") is not None and record.get("status") in STATUSES
    try:
        train.run(cfg, folder)
    except RunDirError:
        assert (folder / "metrics.json").read_text() == text  # refused: left as it was
        assert not ours or record["status"] == "completed"
        return
    after = (folder / "metrics.json").read_text()
    assert ours, "another tool's metrics.json was overwritten"
    if record["status"] == "completed":
        assert after == text and record["identity"] == identity  # skipped: this very run
