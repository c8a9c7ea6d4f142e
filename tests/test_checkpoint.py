import os

import pytest
import torch

from phuber.core.errors import CheckpointError
from phuber.models import LeNet, resnet18
from phuber.training.checkpoint import (
    atomic_write,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)


class CreatesFile:
    """A pickle payload: unpickling it would call open(path, "w"), creating the file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_code_carrying_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": LeNet().state_dict(), "extra": CreatesFile(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"epoch": 1, "model": LeNet().state_dict()})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint"):
        load_checkpoint(path)


def test_garbage_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint"):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "absent.pt")
    listing = tmp_path / "list.pt"
    torch.save([1, 2, 3], listing)
    with pytest.raises(CheckpointError, match="not a phuber checkpoint"):
        load_checkpoint(listing)


def test_bare_state_dict_is_accepted(tmp_path):
    path = tmp_path / "weights.pt"
    model = LeNet()
    torch.save(model.state_dict(), path)
    state = load_checkpoint(path)
    load_model_state(LeNet(), state["model"], str(path))


def test_architecture_and_class_mismatch_are_named(tmp_path):
    state = LeNet(num_classes=10).state_dict()
    with pytest.raises(CheckpointError, match=r"does not fit this run[\s\S]*entries missing, e.g"):
        load_model_state(resnet18(), state, "lenet.pt")
    with pytest.raises(
        CheckpointError, match=r"fc3.weight: float32 \(10, 84\) where this run builds float32 \(100"
    ):
        load_model_state(LeNet(num_classes=100), state, "lenet.pt")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "most_recent.pt"
    save_checkpoint(path, {"epoch": 1, "model": {}})

    def crash(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["most_recent.pt"]  # no temporary left
