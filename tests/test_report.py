import csv
import json
import math
import statistics

import pytest
from conftest import CONF, run_cli
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from phuber import report
from phuber.training import run as train


@pytest.fixture(scope="module")
def identity_of():
    """``identity_of(*overrides, seed=0)``: the identity train.py gives that command line."""
    from hydra import compose, initialize_config_dir

    def _identity(*overrides, seed=0):
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
            cfg = compose(config_name="train", overrides=["dataset=mnist", *overrides])
        return train.run_identity(cfg, seed).to_dict()

    return _identity


def fake_run(path, identity, acc=0.9, status="completed"):
    path.mkdir(parents=True)
    epochs = identity["settings"]["hparams.epochs"]
    metrics = {
        "status": status,
        "identity": identity,
        "summary": {"epochs": epochs},
        "history": [{}] * (epochs if status == "completed" else 3),
        "final": {"test_acc": acc} if status == "completed" else {},
    }
    (path / "metrics.json").write_text(json.dumps(metrics))


def test_groups_aggregates_and_compares_with_paper(tmp_path, identity_of):
    ce, rho = ["loss=ce"], ["dataset.train.corrupt_prob=0.2"]
    fake_run(tmp_path / "0", identity_of(*ce, *rho, seed=0), 0.97)
    fake_run(tmp_path / "1", identity_of(*ce, *rho, seed=1), 0.98)
    clip = identity_of(*ce, *rho, "hparams.grad_clip_max_norm=0.1", seed=2)
    fake_run(tmp_path / "2", clip, 0.99)
    phuber = ["loss=phuber_ce", "dataset.train.corrupt_prob=0.4"]
    fake_run(tmp_path / "3", identity_of(*phuber, seed=0), 0.985)
    fake_run(tmp_path / "4", identity_of(*phuber, seed=1), 0.5, status="running")
    fake_run(tmp_path / "sub" / "5", identity_of("loss=gce", seed=0), 0.95)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{not json")
    assert report.main([str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "| CE | " in text and "97.5 ± 0.7 (n=2)" in text  # mean ± sample std of 97, 98
    assert "| CE + clipping |" in text and "| PHuber-CE τ=10 |" in text and "| GCE |" in text
    assert "98.5 (n=1)" in text and "± 0.0" not in text  # one run: no made-up spread
    # The paper's MNIST CE at rho=0.2 is 97.7: ours - paper = -0.2.
    assert "| CE | paper | " in text and "97.7 (-0.2)" in text
    assert "running after 3/20 epochs" in text and "unreadable metrics.json" in text
    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    ce = next(r for r in rows if r["loss"] == "ce" and r["grad_clip_max_norm"] == "")
    assert float(ce["test_acc_mean"]) == pytest.approx(97.5)
    assert float(ce["paper_mean"]) == 97.7 and float(ce["reproduction_mean"]) == 98.8
    single = next(r for r in rows if r["loss"] == "phuber_ce")
    assert single["test_acc_std"] == "" and single["n_runs"] == "1"
    assert (tmp_path / "report.png").stat().st_size > 10000


def test_runs_of_different_identity_are_never_pooled(tmp_path, identity_of, capsys):
    """Noise types, clipping modes and epochs split cells; a seed is counted once; only the
    paper's setting is compared with the paper."""
    rho = "dataset.train.corrupt_prob=0.4"
    runs = {
        "sym": (identity_of("loss=ce", rho), 0.90),
        "asym": (identity_of("loss=ce", rho, "dataset.train.noise_type=asymmetric"), 0.80),
        "pair": (identity_of("loss=ce", rho, "dataset.train.noise_type=pairflip"), 0.70),
        "global": (identity_of("loss=ce", rho, "hparams.grad_clip_max_norm=0.1"), 0.91),
        "per_ex": (
            identity_of(
                "loss=ce",
                rho,
                "hparams.grad_clip_max_norm=0.1",
                "hparams.grad_clip_mode=per_example",
            ),
            0.92,
        ),
        "short": (identity_of("loss=ce", rho, "hparams.epochs=1"), 0.60),
        "short_again": (identity_of("loss=ce", rho, "hparams.epochs=1"), 0.65),  # same seed 0
    }
    for name, (identity, acc) in runs.items():
        fake_run(tmp_path / name, identity, acc)
    assert report.main([str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    for noise in ("symmetric", "asymmetric", "pairflip"):
        assert f"### mnist / lenet, {noise} noise" in text
    # A differing setting is named where it is not the value most rows have (20 epochs)
    assert "| CE | 90.0 (n=1) |" in text
    assert "| CE, hparams.epochs=1 | 60.0 (n=1) |" in text  # not averaged with 65 or 90
    assert "| CE + clipping | 91.0 (n=1) |" in text
    assert "| CE + clipping (per_example) | 92.0 (n=1) |" in text
    assert "80.0 (n=1)" in text and "70.0 (n=1)" in text
    assert "counted once" in text and "short_again" in text
    assert "counted once" in capsys.readouterr().err
    # Paper: CE at 0.4 is 96.4, CE + clipping 96.8: only the 20-epoch global rows compare.
    paper_lines = [line for line in text.splitlines() if "| paper |" in line]
    assert len(paper_lines) == 2 and all("epochs=1" not in line for line in paper_lines)


def test_broken_metrics_files_are_skipped_one_line_each(tmp_path, identity_of, capsys):
    fake_run(tmp_path / "good", identity_of("loss=ce"), 0.9)
    for name, text in (
        ("list", "[1, 2, 3]"),
        ("truncated", '{"status": "comp'),
        ("no_identity", json.dumps({"status": "completed", "final": {"test_acc": 0.5}})),
        ("no_config", json.dumps({"status": "completed", "summary": {"loss": "ce"}})),
        (
            "bool_acc",
            json.dumps(
                {"status": "completed", "identity": identity_of(), "final": {"test_acc": True}}
            ),
        ),
        ("bad_identity", json.dumps({"status": "completed", "identity": [1]})),
        ("no_final", json.dumps({"status": "completed", "identity": identity_of()})),
        ("binary", None),
    ):
        (tmp_path / name).mkdir()
        path = tmp_path / name / "metrics.json"
        path.write_bytes(b"\xff\xfe\x00" * 10) if text is None else path.write_text(text)
    assert report.main([str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if line.startswith("left out")]) == 8
    assert "holds a list" in err and "no run identity" in err and "broken run identity" in err
    assert "90.0 (n=1)" in (tmp_path / "report.md").read_text()
    (tmp_path / "file").write_text("x")
    assert report.main([str(tmp_path), "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "report.md").mkdir()  # a folder where the report file should go
    assert report.main([str(tmp_path), "--out", str(tmp_path / "taken")]) == 2
    assert "cannot write the report into" in capsys.readouterr().err


def test_empty_or_wrong_dir(tmp_path, capsys):
    assert report.main([str(tmp_path / "absent")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert report.main([str(tmp_path)]) == 2
    assert "no completed run" in capsys.readouterr().err


def test_tiny_grid_through_multirun_and_report(cli, tmp_path):
    """2 noise rates x 2 seeds, 1 epoch on the embedded data, then the report (every method of
    the robust grid goes through the same path in the test below)."""
    code, output = cli(
        "train.py",
        "--multirun",
        "loss=phuber_ce",
        "dataset.train.corrupt_prob=0.0,0.4",
        "seed=0,1",
        "hparams.epochs=1",
        "device=cpu",
        "save=false",
        "hydra.sweep.dir=sweep",
    )
    assert code == 0, output
    runs = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/metrics.json")]
    assert len(runs) == 4
    out = run_cli("-m", "phuber.report", "sweep", "--out", "rep", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = list(csv.DictReader((tmp_path / "rep" / "report.csv").open()))
    assert len(rows) == 2
    for row in rows:
        accs = [
            100 * r["final"]["test_acc"]
            for r in runs
            if r["summary"]["loss"] == row["loss"]
            and r["summary"]["corrupt_prob"] == float(row["corrupt_prob"])
        ]
        assert int(row["n_runs"]) == 2
        assert float(row["test_acc_mean"]) == pytest.approx(statistics.mean(accs), abs=1e-3)
        assert float(row["test_acc_std"]) == pytest.approx(statistics.stdev(accs), abs=1e-3)
    assert (
        "### mnist_5k / lenet, symmetric noise" in out.stdout
        and (tmp_path / "rep" / "report.png").is_file()
    )
    assert (tmp_path / "rep" / "memorisation.png").is_file()  # the rho = 0.4 runs


def test_runs_of_the_previous_version_are_grouped_by_their_recorded_config(tmp_path, identity_of):
    """metrics.json written before identities existed kept the resolved config and a summary:
    the identity is derived from them as train.py derives it, so old sweeps stay reportable and
    pool only with runs of exactly the same settings (here: not with a run that records a key
    they lack)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    for seed, acc in ((0, 0.90), (1, 0.92)):
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
            cfg = compose("train", ["dataset=mnist", "loss=ce", f"seed={seed}"])
        config = OmegaConf.to_container(cfg, resolve=True)
        del config["hparams"]["scheduler_interval"]  # a key the previous version did not have
        old = {
            "status": "completed",
            "summary": {"loss": "ce", "seed": seed, "epochs": 20},
            "config": config,
            "history": [],
            "final": {"test_acc": acc},
        }
        (tmp_path / f"old{seed}").mkdir()
        (tmp_path / f"old{seed}" / "metrics.json").write_text(json.dumps(old))
    fake_run(tmp_path / "new", identity_of("loss=ce", seed=2), 0.94)
    assert report.main([str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "91.0 ± 1.4 (n=2)" in text  # the two old runs: one identity
    assert "| CE, hparams.scheduler_interval=step | 94.0 (n=1) |" in text  # not pooled with them


ROBUST_LABELS = {
    "CE",
    "CE + clipping",
    "CE + LogitClip (τ=0.2)",
    "GCE",
    "PHuber-CE τ=10",
    "PHuber-GCE τ=10",
    "MAE scale=1",
    "Taylor-CE order=2",
    "Focal γ=0.5",
    "Bootstrap β=0.95 mode=soft",
    "Bootstrap β=0.8 mode=hard",
    "Forward (true T)",
    "SCE A=-9.21034 α=0.01 β=1",
    "NCE+RCE A=-9.21034 α=1 β=10",
    "NCE+MAE α=1 β=10",
    "AGCE a=4 q=0.2",
    "OGC-CE ε=20 queue=4096 s=32",
    "OGC-FL ε=20 γ=0.5 queue=4096 s=32",
    "OGC-GCE ε=20 queue=4096 s=32",
    "ANL-CE (NCE+NNCE) α=1 β=1 δ=1e-06, hparams.optimizer.weight_decay=0",
    "ANL-FL (NFL+NNFL) α=1 β=1 δ=1e-06 γ=0.5, hparams.optimizer.weight_decay=0",
    "JS π₁=0.7",
    "ε-softmax CE+MAE α=0.01 β=5 m=100000",
    "ε-softmax FL+MAE α=0.01 β=5 γ=0.1 m=100000",
    "LS r=0.1",
    "NLS r=-0.2 warmup_epochs=10",
}


# Methods a one-epoch run on 400 images refuses (phuber.training.plan): NLS's warm-up is the
# whole run, OGC's threshold would never be fitted; the key each message names.
CANNOT_ACT = {
    "nls": "loss.warmup_epochs=10",
    "ogc_ce": "loss.time_frame_s=32, loss.queue_size_q=4096",
    "ogc_fl": "loss.time_frame_s=32, loss.queue_size_q=4096",
    "ogc_gce": "loss.time_frame_s=32, loss.queue_size_q=4096",
}


def test_robust_grid_every_method_trains_and_is_reported_by_name(cli, tmp_path):
    """Every method of the robust grid trains through the CLI and has its own row, labelled by
    its loss and parameters, with the final and the best epoch's test accuracy — but those that
    cannot act in a run this short, which are refused, each naming its key (their rows are
    checked on runs recorded as the sweep would have)."""
    grid = OmegaConf.load(CONF / "experiment" / "robust_mnist_5k.yaml").hydra.sweeper.params
    methods = grid["+robust_loss"]
    assert len(methods.split(",")) == 26
    short = ["seed=0", "hparams.epochs=1", "hparams.batch_size=4000", "dataset.val.use=false"]
    short += ["dataset.val.split=0.9"]  # 400 training images: the path is tested, not accuracy
    fixed = ["+experiment=robust_mnist_5k", "+robust_noise=asym40", *short]
    code, output = cli(
        "train.py",
        "--multirun",
        *fixed,
        f"+robust_loss={methods}",
        "save=false",
        "tensorboard=false",
        "hydra.sweep.dir=sweep",
    )
    assert code == 2, output
    failed = [line for line in output.splitlines() if line.startswith("  failed #")]
    assert len(failed) == len(CANNOT_ACT), failed
    for name, key in CANNOT_ACT.items():
        assert any(f"+robust_loss={name})" in line and key in line for line in failed), name
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
            cfg = compose("train", [*fixed, f"+robust_loss={name}"])
        fake_run(tmp_path / "sweep" / name, train.run_identity(cfg, 0).to_dict(), acc=0.5)
    built = report.build([tmp_path / "sweep"])
    rows = built["groups"][("mnist_5k", "lenet", "asymmetric")]
    assert set(rows) == ROBUST_LABELS
    for label, cells in rows.items():
        (cell,) = cells.values()
        trained = not label.startswith(("OGC", "NLS"))
        assert cell["n"] == 1 and (not trained or cell["best_mean"] >= cell["mean"])
    assert report.main([str(tmp_path / "sweep")]) == 0
    assert "| NCE+RCE A=-9.21034 α=1 β=10 | " in (tmp_path / "sweep" / "report.md").read_text()
    assert (tmp_path / "sweep" / "memorisation.png").stat().st_size > 10000


# -- every file accounted for, whatever the run directories hold -------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.fixture(scope="module")
def base_identities(identity_of):
    """One recorded identity per loss, and an old run's config (before identities existed)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        config = OmegaConf.to_container(compose("train", ["dataset=mnist"]), resolve=True)
    losses = {name: identity_of(f"loss={name}") for name in ("ce", "gce", "phuber_ce")}
    return losses, config


RHO = "dataset.train.corrupt_prob"
SPELLINGS = {"loss.q": [1, 1.0, 0.7], "loss.tau": [10, 10.0, 2], RHO: [0, 0.0, 0.4]}
# Settings that may be absent, null or spelled as another number in a file of another tool
ABSENT_OR_NULL = ("hparams.logit_clip", "hparams.grad_clip_max_norm", "dataset.train.label_file")
FRACTIONS = st.floats(0, 1) | st.sampled_from([0, 1])
POINTS = FRACTIONS | st.sampled_from([float("nan"), float("inf"), None])  # a point of a curve
NOT_FRACTIONS = st.sampled_from([-0.1, 1.5, 100, "0.9", True, None, [0.5], {"a": 1}])


@st.composite
def run_file(draw, bases):
    """The text of one metrics.json: completed runs whose settings are spelled as int or float,
    replicates and duplicates of a seed, runs stopped early, files of an older version, partial
    and corrupt files, values out of range."""
    losses, old_config = bases
    kind = draw(st.sampled_from(["valid", "valid", "valid", "unfinished", "old", "corrupt", "bad"]))
    if kind == "corrupt":
        return draw(
            st.sampled_from(["", "{", "[1, 2]", "3", '"text"', "null", '{"status": "comp'])
            | st.binary(max_size=20).map(lambda b: b.decode("latin1"))
        )
    identity = json.loads(json.dumps(losses[draw(st.sampled_from(sorted(losses)))]))
    settings = identity["settings"]
    for key, spellings in SPELLINGS.items():
        if key in settings or key == RHO:
            settings[key] = draw(st.sampled_from(spellings))
    for key in ABSENT_OR_NULL:
        if draw(st.booleans()):
            settings.pop(key, None)
        else:
            settings[key] = None
    identity["seeds"]["seed"] = draw(st.sampled_from([0, 1, 2, 0.0]))
    acc = draw(FRACTIONS)
    history = [
        {"epoch": e, "test_acc": draw(POINTS), "train_noisy_memorised": draw(POINTS)}
        for e in range(draw(st.integers(0, 3)))
    ]
    metrics = {"status": "completed", "identity": identity, "history": history}
    metrics["summary"] = {"epochs": 20, "loss": identity["loss"], "seed": 0}
    metrics["final"] = {"test_acc": acc}
    if kind == "unfinished":
        metrics["status"] = draw(st.sampled_from(["running", "preempted", "failed", 7, None]))
    elif kind == "old":
        del metrics["identity"]
        metrics["config"] = draw(st.sampled_from([old_config, {}, {"dataset": {}}, []]))
    elif kind == "bad":
        where = draw(st.sampled_from(["final", "history", "identity", "settings", "epoch"]))
        if where == "final":
            metrics["final"] = draw(st.sampled_from([{"test_acc": draw(NOT_FRACTIONS)}, [], None]))
        elif where == "history":
            metrics["history"] = [{"epoch": 0, "test_acc": draw(NOT_FRACTIONS)}]
        elif where == "epoch":
            metrics["history"] = [{"epoch": draw(NOT_FRACTIONS), "test_acc": 0.5}]
        elif where == "identity":
            metrics["identity"] = draw(st.sampled_from([[1], "x", {"settings": [], "seeds": {}}]))
        else:
            settings[draw(st.sampled_from(["dataset.name", RHO, "hparams.logit_clip"]))] = draw(
                NOT_FRACTIONS
            )
    return json.dumps(metrics)


@given(data=st.data())
def test_every_metrics_file_ends_in_one_cell_or_in_the_left_out_list(
    tmp_path, base_identities, data
):
    """For any set of run directories — some reached only through a symbolic link, some twice
    (a link into the tree), a link that loops, settings spelled several ways, histories with
    non-finite points — the runs in the cells (their n) plus the runs left out are exactly the
    distinct metrics.json files, the report's own accounting says so, a non-finite point costs
    its point (named) and not the run, and no file needed the reader's safety net."""
    texts = data.draw(st.lists(run_file(base_identities), max_size=8))
    case = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    sweep, elsewhere = case / "sweep", case / "elsewhere"
    sweep.mkdir(parents=True)
    folders = []
    for i, text in enumerate(texts):
        where = data.draw(st.sampled_from(["in", "linked", "twice"]), label=f"run {i}")
        folder = (elsewhere if where == "linked" else sweep) / str(i)
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(text)
        folders.append(folder.resolve())
        if where == "linked":
            (sweep / f"link{i}").symlink_to(folder, target_is_directory=True)
        elif where == "twice":
            (sweep / f"again{i}").symlink_to(folder, target_is_directory=True)
    if data.draw(st.booleans(), label="a loop"):
        (sweep / "loop").symlink_to(sweep, target_is_directory=True)
    built = report.build([sweep])
    cells = [c for rows in built["groups"].values() for row in rows.values() for c in row.values()]
    assert sum(c["n"] for c in cells) + len(built["unfinished"]) == len(texts)
    assert built["files"] == built["accounted"] == len(texts)
    assert not [why for _, why in built["unfinished"] if why.startswith("could not be read")]
    left_out = {path.resolve() for path, _ in built["unfinished"]}
    pointless = {path.resolve() for path, _ in built["points_left_out"]}
    for folder, text in zip(folders, texts, strict=True):
        try:
            history = json.loads(text).get("history")
        except (ValueError, AttributeError):
            continue
        rows = history if isinstance(history, list) else []
        non_finite = any(
            isinstance(v, float) and not math.isfinite(v)
            for row in rows
            if isinstance(row, dict)
            for v in row.values()
        )
        if non_finite and folder not in left_out:  # tabulated: only the points are left out
            assert folder in pointless, folder
    report.markdown(built)
    report.tables.csv_rows(built)


def test_int_and_float_spellings_of_one_setting_are_one_identity(tmp_path, identity_of):
    """Two seeds of GCE, one written loss.q=1 and one loss.q=1.0: one cell of n=2 (before, two
    identities with one label, and one of them vanished from the tables)."""
    for seed, q in ((0, 1), (1, 1.0)):
        identity = identity_of("loss=gce", f"loss.q={q}", seed=seed)
        assert identity["settings"]["loss.q"] == 1 and type(identity["settings"]["loss.q"]) is int
        fake_run(tmp_path / str(seed), identity, 0.9 + seed / 100)
    (cells,) = report.build([tmp_path])["groups"][("mnist", "lenet", "symmetric")].values()
    assert [c["n"] for c in cells.values()] == [2]


@given(
    st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=6),
    st.floats(0, 100, allow_nan=False),
    st.randoms(use_true_random=False),
)
def test_rows_that_show_the_same_mean_tie(accuracies, other, rng):
    """Two rows whose means are equal up to float rounding (the same runs summed in another
    order) or show alike in the table share one rank; ties are judged as the table shows."""
    from phuber.report.aggregate import aggregate
    from phuber.report.tables import average_ranks, shown

    shuffled = accuracies[:]
    rng.shuffle(shuffled)
    means = {"A": aggregate(accuracies)[0], "B": aggregate(shuffled)[0], "C": other}
    rows = {
        label: {0.2: {"mean": m, "std": None, "n": 1, "refs": {}}} for label, m in means.items()
    }
    ranks = average_ranks(rows)
    assert ranks["A"] == ranks["B"]
    same = shown(means["C"]) == shown(means["A"])
    assert (ranks["C"] == ranks["A"]) == same
    assert ranks["A"][0] == (2.0 if same else 1.5 if means["A"] > means["C"] else 2.5)


def test_average_rank_across_noise_rates():
    """Ranks by mean accuracy per rate (1 = best), ties sharing their mean rank, averaged over
    the rates a row has; the Markdown and CSV show it."""
    from phuber.report.tables import average_ranks, markdown

    def cells(**means):
        return {
            float(rho[1:]) / 10: {"mean": m, "std": None, "n": 1, "refs": {}}
            for rho, m in means.items()
        }

    rows = {
        "A": cells(r2=90.0, r4=80.0),
        "B": cells(r2=90.0, r4=70.0),
        "C": cells(r2=50.0, r4=85.0),
        "D": cells(r4=10.0),
    }
    # ρ=0.2: A, B tie for ranks 1–2 (1.5 each), C 3; ρ=0.4: C 1, A 2, B 3, D 4
    assert average_ranks(rows) == {"A": (1.75, 2), "B": (2.25, 2), "C": (2.0, 2), "D": (4.0, 1)}
    text = markdown({"groups": {("mnist", "lenet", "symmetric"): rows}, "unfinished": []})
    assert "| A | 90.0 (n=1) | 80.0 (n=1) | 1.8 |" in text
    assert "| D |  | 10.0 (n=1) | 4.0 (1 of 2) |" in text
