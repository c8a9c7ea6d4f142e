"""Every JSON file phuber writes is strict (no NaN or Infinity): one writer, ``files.save_json``,
checked here for any content, and every JSON file of a run, an eval, a sweep checked after the
fact."""

import json
import math
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from phuber.core.files import NON_FINITE, save_json


def strict_loads(text: str):
    """``json.loads`` as strict readers (jq, JavaScript) parse: NaN and Infinity refused."""

    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def assert_strict_tree(root: Path) -> int:
    """Every ``*.json`` under ``root`` parses strictly; returns how many there are."""
    paths = sorted(root.rglob("*.json"))
    for path in paths:
        strict_loads(path.read_text())
    return len(paths)


numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**20), 10**20)
numpy_numbers = st.sampled_from([np.float32, np.float64]).flatmap(
    lambda t: st.floats(allow_nan=True, allow_infinity=True, width=32).map(t)
)
leaves = st.none() | st.booleans() | numbers | numpy_numbers | st.text(max_size=5)
keys = st.text(max_size=4).filter(lambda k: k != NON_FINITE)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def expected(obj, path=""):
    """What the file must hold, written from the rule itself: finite numbers as they are (NumPy
    ones as Python's), non-finite ones as null, each named by its dotted path."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None, {path: repr(obj)}
    if isinstance(obj, dict):
        out, notes = {}, {}
        for k, v in obj.items():
            out[k], found = expected(v, f"{path}.{k}" if path else k)
            notes.update(found)
        return out, notes
    if isinstance(obj, list):
        pairs = [expected(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(obj)]
        return [p[0] for p in pairs], {k: v for p in pairs for k, v in p[1].items()}
    return obj, {}


@given(st.dictionaries(keys, values, max_size=5))
def test_save_json_writes_strict_json_and_names_what_it_nulled(tmp_path, obj):
    path = tmp_path / "out.json"
    save_json(path, obj)
    parsed = strict_loads(path.read_text())
    content, notes = expected(obj)
    if notes:
        content[NON_FINITE] = notes
    assert parsed == content


def test_a_non_finite_metric_reaches_metrics_json_as_null(tiny_cfg, tmp_path, monkeypatch):
    """A run whose test loss is infinite (CE of a wrong prediction with probability 0): the
    history and final metrics hold null there, and say which values those were."""
    from phuber.training import evaluation as evaluate
    from phuber.training import run as train
    from phuber.training import trainer

    real = evaluate.evaluate

    def infinite_loss(*args, **kwargs):
        return {**real(*args, **kwargs), "loss": math.inf}

    monkeypatch.setattr(trainer, "evaluate", infinite_loss)
    train.run(tiny_cfg(), tmp_path)
    metrics = strict_loads((tmp_path / "metrics.json").read_text())
    assert metrics["history"][0]["test_loss"] is None and metrics["final"]["test_loss"] is None
    assert metrics[NON_FINITE] == {"history.0.test_loss": "inf", "final.test_loss": "inf"}
    assert metrics["final"]["test_acc"] > 0.5
