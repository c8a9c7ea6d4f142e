"""One restore path checks before it loads: every entry of a real checkpoint (weights, optimiser
state, schedule, random states, a stateful loss's state, a mid-epoch order and sums), damaged
in turn (another shape, another dtype, a non-finite value, another kind of value, removed, and
an entry this run does not have beside it in a component), is one ``CheckpointError`` naming the
checkpoint and the entry, and leaves the run as it was built; the undamaged checkpoint resumes."""

import copy

import torch

from phuber.core.errors import CheckpointError
from phuber.training import run as train
from phuber.training.checkpoint import load_checkpoint
from phuber.training.metrics import SUM_NAMES
from phuber.training.restore import RUN_FLAGS
from phuber.training.trainer import Trainer

# What a resume checks against the run's identity before restoring (resume_state).
IDENTITY = ("identity", "config", "history", "labels_sha256", "seed")


def leaves(obj, where=()):
    """The paths to every tensor and plain value, a long tuple (Python's random state) as one."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from leaves(value, (*where, key))
    elif isinstance(obj, list | tuple) and len(obj) <= 20:
        for i, value in enumerate(obj):
            yield from leaves(value, (*where, i))
    else:
        yield where


def get(state, path):
    for key in path:
        state = state[key]
    return state


def damaged(saved, entry):
    """``(how, the entry a message must name, the damaged state)`` for each way ``entry`` can be
    damaged: its kind's (shape, dtype, non-finite, another kind of value), removed, and an
    unexpected entry beside it."""
    value = get(saved, entry)
    ways = []
    if isinstance(value, torch.Tensor):
        ways += [("shape", value.reshape(-1).repeat(2) if value.dim() else value.reshape(1, 1))]
        ways += [("dtype", value.to(torch.int32 if value.is_floating_point() else torch.float64))]
        if value.is_floating_point() and value.numel():
            bad = value.clone().contiguous()  # channels_last weights are not: one NaN in
            bad.view(-1)[0] = float("nan")
            ways += [("non-finite", bad)]
    elif isinstance(value, float):
        ways += [("non-finite", float("inf")), ("kind", "x")]
    elif isinstance(value, bool | int):
        ways += [("kind", "x")]
    elif isinstance(value, tuple):
        ways += [("kind", list(value[:1]))]
    elif value is not None:
        ways += [("kind", 1.5)]
    for how, bad in ways:
        state = copy.deepcopy(saved)
        parent = get(state, entry[:-1])
        if isinstance(parent, tuple):
            continue  # inside Python's random state: damaged whole, as its parent's entry
        parent[entry[-1]] = bad
        yield how, entry, state
    if isinstance(get(saved, entry[:-1]), dict) and entry[-1] not in RUN_FLAGS:
        state = copy.deepcopy(saved)  # (an optimiser's run flags may be absent: older torch's)
        del get(state, entry[:-1])[entry[-1]]
        yield "removed", entry, state
    if isinstance(get(saved, entry[:-1]), dict) and len(entry) > 1:  # the top level may grow
        state = copy.deepcopy(saved)
        get(state, entry[:-1])["unexpected"] = torch.zeros(1)
        yield "unexpected", (*entry[:-1], "unexpected"), state


def test_each_entry_damaged_in_turn_is_one_message_naming_it(tiny_cfg, tmp_path):
    overrides = ["loss=ogc_ce", "loss.queue_size_q=64", "loss.time_frame_s=4"]
    train.run(tiny_cfg(*overrides), tmp_path / "first")
    path = str(tmp_path / "first" / "most_recent.pt")
    saved = load_checkpoint(path)
    assert saved["loss"]["_extra_state"]["updates"] > 0  # a fitted loss state
    saved["perm"] = torch.randperm(4000)  # a mid-epoch checkpoint, as a signal leaves one
    saved["sums"] = torch.zeros(len(SUM_NAMES), dtype=torch.float64)
    saved["step_in_epoch"] = 3
    trainer = Trainer(tiny_cfg(*overrides, "hparams.epochs=2"), tmp_path / "second")
    built = copy.deepcopy(trainer.state.to_checkpoint())
    entries = [e for e in leaves(saved) if e and e[0] not in IDENTITY]
    tried = 0
    for entry in entries:
        for how, named, state in damaged(saved, entry):
            name = ".".join(map(str, named))
            try:
                trainer.state.restore(path, state, trainer.device)
                message = "(restored)"
            except CheckpointError as err:
                message = str(err)
            assert f"checkpoint={path!r}" in message and name in message, (how, name, message)
            tried += 1
    assert len(entries) > 60 and tried > 200
    after = trainer.state.to_checkpoint()
    for part in ("model", "loss"):
        for name, tensor in built[part].items():
            if isinstance(tensor, torch.Tensor):
                assert torch.equal(tensor, after[part][name]), (part, name)  # nothing loaded
    trainer.state.restore(path, saved, trainer.device)  # undamaged, it resumes
    assert trainer.progress.step_in_epoch == 3 and trainer.progress.perm is not None
