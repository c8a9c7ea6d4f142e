"""Every parameter's domain is declared once, where it is consumed (phuber.core.domains), and
judged at its edges where it is used: every option of every config group (conf/loss, conf/dataset,
conf/model, conf/hparams, conf/hparams/optimizer) × every key it sets × each edge of that
key's domain (0, the smallest and largest float32, each bound and its float32 and float64
neighbours, NaN, ±inf, wrong types) goes through the CLI's check and the build. Either one message
names the key, or the value is inside its domain and builds — and a sample of those trains one
step to a finite loss and gradient (all of them with HYPOTHESIS_PROFILE=thorough). A loss, data
set or recipe added to conf/ is enumerated with no change here; one whose parameters declare no
domain fails ``test_every_key_a_shipped_option_sets_has_a_domain``."""

import copy
import json
import math
from pathlib import Path

import pytest
from conftest import ROOT
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from phuber.app.options import (
    DEFAULT_LOSS,
    GROUPS,
    RUN_KEYS,
    cases,
    compose_option,
    option_keys,
    options,
)
from phuber.core.errors import PhuberError
from phuber.training.build import build_problems
from phuber.training.config import config_problems
from phuber.training.domains import domain_of


def composed(group: str, option: str) -> DictConfig:
    """A copy of the option's config (the composed one is shared, and enumerated), its data
    read from this clone (for the training sample)."""
    cfg = copy.deepcopy(compose_option(group, option))
    with open_dict(cfg):
        cfg.dataset.root = str(ROOT / "data")
    return cfg


def judge(cfg: DictConfig, key: str, value: object) -> list[str]:
    """The problems the CLI's check and the build find with ``key=value`` (any other exception
    escapes: a traceback is a failure). ``cfg`` is changed for the call and restored."""
    before = OmegaConf.select(cfg, key)
    if isinstance(before, ListConfig):
        before = OmegaConf.to_container(before)
    OmegaConf.update(cfg, key, value, merge=False)
    try:
        problems = config_problems(cfg, "train", [key])
        broken = {p.key for p in problems}
        return [*problems, *build_problems(cfg, broken, [key])]
    finally:
        OmegaConf.update(cfg, key, before, merge=False)


@pytest.fixture(autouse=True)
def models_built_once(monkeypatch):
    """Each model is built once per process here: an optimiser or schedule judged at an edge
    is built on the parameters of the same (unchanged) model; the models are judged by their
    own options."""
    from phuber.training import build

    built: dict = {}
    make = build._model

    def cached(cfg, info, device):
        key = (repr(OmegaConf.to_container(cfg.model, resolve=True)), info.channels)
        if key not in built:
            built[key] = make(cfg, info, device)
        return built[key]

    monkeypatch.setattr(build, "_model", cached)


OPTIONS = options()
# Tests that compose every option (seconds each time) share one worker process.
ALL_OPTIONS = pytest.mark.xdist_group("every_option_composed")


@ALL_OPTIONS
def test_the_docs_table_of_values_is_the_declared_domains():
    """docs/options.md's table is generated: ``python -m phuber.app.options --write``."""
    from phuber.app.options import main

    assert main([str(ROOT / "docs" / "options.md")]) == 0


@ALL_OPTIONS
def test_every_key_a_shipped_option_sets_has_a_domain():
    """A new loss, data set, recipe or optimiser must declare its parameters' domains."""
    every = cases()
    missing = [f"{g}={o}: {k}" for g, o, k in every if domain_of(composed(g, o), k) is None]
    assert not missing, missing
    assert {group for group, _, _ in every} == set(GROUPS) - {"model"}  # models: interpolations


@pytest.mark.parametrize("group,option", options(), ids=[f"{g}={o}" for g, o in options()])
def test_every_shipped_option_builds(group, option):
    """The shipped options are known good, so a check need not build what the command line
    did not change (phuber.training.config.parts_to_build)."""
    assert judge(composed(group, option), "seed", 0) == []
    cfg = composed(group, option)
    assert config_problems(cfg) == [] and build_problems(cfg, set()) == []


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_each_edge_of_each_key_is_refused_naming_it_or_builds(group, option):
    """Each key the option sets (or the run's own keys, on the default loss), at each edge."""
    keys = option_keys(group, option) + (list(RUN_KEYS) if option == DEFAULT_LOSS else [])
    cfg = composed(group, option)
    for key in keys:
        domain = domain_of(cfg, key)
        for value in domain.edges():
            problems = judge(cfg, key, value)
            where = f"{group}={option} {key}={value!r}"
            if problems:
                assert any(f"{key}=" in line for line in problems), (where, problems)
                assert all(len(line) < 600 for line in problems), (where, problems)
            else:
                domain.check(value)  # built: then its declared domain takes it too


SHORT = {"hparams.epochs": 1, "hparams.batch_size": 4000, "save": False}  # one step


def one_step_losses() -> list[str]:
    """The loss options with parameters whose defaults a run of one step admits (a run plan
    that cannot act is refused before the step: NLS's warm-up, OGC's fit need longer runs, and
    their training is tested elsewhere)."""
    from phuber.core.errors import InvalidValue
    from phuber.losses import RunPlan
    from phuber.training.build import build_loss

    found = []
    for group, option in OPTIONS:
        if group != "loss" or not option_keys(group, option):
            continue
        loss = build_loss(composed(group, option).loss, None)
        try:
            loss.check_plan(RunPlan(SHORT["hparams.epochs"], 4000, SHORT["hparams.batch_size"]))
        except InvalidValue:
            continue
        found.append(option)
    return found


@settings(max_examples=max(6, settings().max_examples // 4))
@given(data=st.data())
def test_a_value_that_builds_trains_a_step_to_a_finite_loss_and_gradient(data, tmp_path):
    """One step of LeNet on the embedded data (the whole training set as one batch): either a
    message naming the key (a non-finite loss or gradient names the loss's settings), or a
    finite loss and gradient norm."""
    from phuber.training import run as train

    option = data.draw(st.sampled_from(one_step_losses()), label="loss")
    key = data.draw(st.sampled_from(option_keys("loss", option)), label="key")
    group = "loss"
    cfg = composed(group, option)
    value = data.draw(st.sampled_from(domain_of(cfg, key).edges()), label="value")
    assume(not judge(cfg, key, value))
    cfg = copy.deepcopy(cfg)
    OmegaConf.update(cfg, key, value, merge=False)
    for setting, to in SHORT.items():
        OmegaConf.update(cfg, setting, to)
    cfg.tensorboard = False
    out = Path(tmp_path) / f"run{abs(hash((option, key, repr(value))))}"
    try:
        train.run(cfg, out)
    except PhuberError as err:
        assert f"{key}=" in str(err), str(err)
        return
    row = json.loads((out / "metrics.json").read_text())["history"][0]
    assert math.isfinite(row["train_loss"]) and math.isfinite(row["grad_norm"]), row


def file_keys() -> list[tuple[str, str, str]]:
    """Every file-valued key, found from the declared domains: (group, option, key)."""
    from phuber.core.domains import File
    from phuber.training.config import KEYS

    found = {
        key: (g, o) for g, o, key in cases() if isinstance(domain_of(composed(g, o), key), File)
    }
    for key, domain in KEYS.items():
        if isinstance(domain, File):
            found.setdefault(key, ("loss", DEFAULT_LOSS))
    return [(g, o, key) for key, (g, o) in sorted(found.items())]


@ALL_OPTIONS
def test_every_file_valued_key_is_named_by_its_messages(cli, tmp_path):
    """A missing file and an empty one, for each file-valued key: one message naming the key
    the user typed (not another file-valued key, such as checkpoint=), exit status 2."""
    keys = file_keys()
    assert {k for _, _, k in keys} >= {
        "checkpoint",
        "dataset.train.label_file",
        "loss.estimate_from",
    }
    for group, option, key in keys:
        suffix = (domain_of(composed(group, option), key).suffixes or (".pt",))[0]
        empty = tmp_path / f"empty{suffix}"
        empty.write_bytes(b"")
        for path, said in ((tmp_path / f"missing{suffix}", "no such file"), (empty, "empty")):
            args = [f"{group}={option}", f"{key}={path}", "hparams.epochs=1", "device=cpu"]
            code, output = cli("train.py", *args, f"hydra.run.dir=runs/{key}/{said}")
            assert code == 2 and f"{key}='{path}'" in output and said in output, output
            assert "Traceback" not in output
            others = [k for _, _, k in keys if k != key and f"{k}=" in output]
            assert not others, (key, others, output)


MEANING = ("dataset.name", "dataset.module", "dataset.num_classes")


def drawable(group: str, option: str) -> list[str]:
    return [key for key in option_keys(group, option) if key not in MEANING]


def refused_edges(domain) -> list:
    """The edges ``domain`` itself refuses."""
    out = []
    for value in domain.edges():
        try:
            domain.check(value)
        except ValueError:
            out.append(value)
    return out


@ALL_OPTIONS
@given(data=st.data())
def test_several_bad_values_of_one_option_are_each_named_in_one_message(data):
    """Several keys of one option, each out of its domain: the one message names every one
    (a bad loss parameter does not hide its neighbours', nor an unbuilt optimiser its lr). The
    keys that say what the others mean — which data set — are not drawn: with one of them
    broken, what depends on it (the data set's label sets) is not judged, by design."""
    group, option = data.draw(
        st.sampled_from([(g, o) for g, o in OPTIONS if len(drawable(g, o)) >= 2]), label="option"
    )
    cfg = composed(group, option)
    keys = data.draw(
        st.lists(st.sampled_from(drawable(group, option)), min_size=2, max_size=4, unique=True),
        label="keys",
    )
    values = {
        k: data.draw(st.sampled_from(refused_edges(domain_of(cfg, k))), label=k) for k in keys
    }
    before = {k: OmegaConf.select(cfg, k) for k in keys}
    before = {
        k: OmegaConf.to_container(v) if isinstance(v, ListConfig) else v for k, v in before.items()
    }
    try:
        for key, value in values.items():
            OmegaConf.update(cfg, key, value, merge=False)
        problems = config_problems(cfg, "train", keys)
        problems += build_problems(cfg, {p.key for p in problems}, keys)
    finally:
        for key, value in before.items():
            OmegaConf.update(cfg, key, value, merge=False)
    for key in keys:
        assert any(f"{key}=" in line for line in problems), (key, values, problems)
