"""One checked reader per file format: every reader, given a valid file mutated at random (cut
short at any byte, emptied, bytes overwritten, junk appended) or rewritten with other contents
(another dtype, a column, ragged rows, another length, labels outside the classes, another data
set's labels), either returns what it promises (int64 labels, one per example, within the
classes; uint8 images) or raises one DataError/CheckpointError naming the file — never another
exception."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import idx_bytes, write_cifar, write_cifar_n
from hypothesis import given
from hypothesis import strategies as st

from phuber.core.errors import CheckpointError, DataError
from phuber.datasets.human_labels import CIFAR10N, read_human_labels
from phuber.datasets.labels import label_bytes, read_label_file
from phuber.datasets.readers import _read_cifar, read_idx
from phuber.models import LeNet
from phuber.training.checkpoint import load_checkpoint, save_checkpoint

K, N = 10, 120
CLEAN = np.random.default_rng(0).integers(0, K, N)
NOISY = np.where(np.arange(N) % 3 == 0, (CLEAN + 1) % K, CLEAN)


@st.composite
def damage(draw, data: bytes) -> bytes:
    """``data`` cut short, emptied, overwritten in places, or with junk appended."""
    how = draw(st.sampled_from(["cut", "empty", "overwrite", "append"]), label="how")
    if how == "cut":
        return data[: draw(st.integers(0, len(data) - 1), label="at")]
    if how == "empty":
        return b""
    if how == "append":
        return data + draw(st.binary(min_size=1, max_size=64), label="junk")
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8), label="count")):
        at = draw(st.integers(0, len(out) - 1), label="at")
        out[at] = draw(st.integers(0, 255), label="byte")
    return bytes(out)


def npz(**arrays) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def npy(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# Valid contents of each kind of label file, and contents a label file must be refused for.
CONTENTS = {
    "npz": npz(noisy_labels=NOISY, clean_labels=CLEAN),
    "npz_int16": label_bytes(NOISY, CLEAN, K),
    "npz_uint8": npz(noisy_labels=NOISY.astype(np.uint8), clean_labels=CLEAN.astype(np.uint8)),
    "npy": npy(NOISY),
    "npy_column": npy(NOISY[:, None].astype(np.int32)),
    "json": json.dumps(NOISY.tolist()).encode(),
    "json_column": json.dumps([[int(v)] for v in NOISY]).encode(),
}
REFUSED = {
    "npz_other_data": (npz(noisy_labels=NOISY, clean_labels=(CLEAN + 1) % K), "made for other"),
    "npz_floats": (npz(noisy_labels=NOISY.astype(float)), "must be integers"),
    "npz_bools": (npz(noisy_labels=NOISY > 4), "must be integers"),
    "npz_short": (npz(noisy_labels=NOISY[:-1]), f"holds {N - 1} labels"),
    "npz_outside": (npz(noisy_labels=NOISY + K), "outside the 10 classes"),
    "npz_no_member": (npz(labels=NOISY), "has no noisy_labels"),
    "npy_objects": (npy(np.array([{}] * N)), "not a .npy file of labels"),
    "npy_matrix": (npy(np.stack([NOISY, NOISY], 1)), "labels of shape"),
    "json_ragged": (json.dumps([[1, 2], [3]] * (N // 2)).encode(), "differ in length"),
    "json_text": (b'{"a": 1}', "labels of shape"),
}


def read(tmp_path: Path, name: str, data: bytes):
    path = tmp_path / f"labels.{name.split('_')[0]}"
    path.write_bytes(data)
    return path, read_label_file(path, CLEAN, K)


@pytest.mark.parametrize("name", sorted(CONTENTS))
def test_valid_label_files_of_any_integer_type_and_shape_are_read(tmp_path, name):
    _, labels = read(tmp_path, name, CONTENTS[name])
    assert labels.dtype == np.int64 and np.array_equal(labels, NOISY)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_malformed_label_files_are_one_message_naming_the_file(tmp_path, name):
    data, message = REFUSED[name]
    with pytest.raises(DataError, match=message) as err:
        read(tmp_path, name, data)
    assert "dataset.train.label_file=" in str(err.value) and "labels." in str(err.value)


@given(data=st.data())
def test_a_damaged_label_file_is_read_whole_or_named(tmp_path, data):
    name = data.draw(st.sampled_from(sorted(CONTENTS)), label="file")
    damaged = data.draw(damage(CONTENTS[name]))
    try:
        labels = read(tmp_path, name, damaged)[1]
    except DataError as err:
        assert f"labels.{name.split('_')[0]}" in str(err), str(err)
    else:
        assert labels.dtype == np.int64 and labels.shape == (N,)
        assert labels.min() >= 0 and labels.max() < K


@given(data=st.data())
def test_damaged_cifar_n_annotations_are_read_whole_or_named(tmp_path_factory, data):
    """CIFAR-N's torch file, damaged in bytes or in content: another integer dtype or a list
    of its labels reads; anything else is one message naming the file."""
    root = tmp_path_factory.mktemp("cifar_n")
    content = data.draw(st.sampled_from(["as published", "int16", "list", "column", "ragged"]))
    worse = {
        "as published": None,
        "int16": NOISY.astype(np.int16),
        "list": NOISY.tolist(),
        "column": NOISY[:, None].tolist(),
        "ragged": [[1, 2], [3]] * (N // 2),
    }[content]
    written = write_cifar_n(root, CLEAN, **({} if worse is None else {"worse_label": worse}))
    expected = written["worse_label"] if content != "ragged" else None
    path = root / CIFAR10N.file
    damaged = data.draw(st.booleans(), label="damage bytes")
    if damaged:
        path.write_bytes(data.draw(damage(path.read_bytes())))
    try:
        labels = read_human_labels(CIFAR10N, "worse", root, False, CLEAN, root, K)
    except DataError as err:
        assert CIFAR10N.file in str(err), str(err)
        assert damaged or content == "ragged", f"valid ({content}) but refused: {err}"
    else:
        same = np.array_equal(labels, np.asarray(expected).reshape(-1))
        assert (labels.dtype == np.int64 and same) or damaged


@given(data=st.data())
def test_damaged_idx_and_cifar_files_are_read_whole_or_named(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("files")
    kind = data.draw(st.sampled_from(["idx", "cifar"]), label="kind")
    if kind == "idx":
        path = root / "train-images-idx3-ubyte"
        path.write_bytes(idx_bytes(np.zeros((4, 28, 28), np.uint8)))
    else:
        write_cifar(root, per_batch=4)
        path = root / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(data.draw(damage(path.read_bytes())))
    try:
        if kind == "idx":
            read_idx(path)
        else:
            _read_cifar([path], K)
    except DataError as err:
        assert str(path) in str(err), str(err)


@given(data=st.data())
def test_a_damaged_checkpoint_is_refused_naming_it(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("checkpoint")
    path = root / "model.pt"
    save_checkpoint(path, {"epoch": 1, "model": LeNet().state_dict()})
    path.write_bytes(data.draw(damage(path.read_bytes())))
    try:
        state = load_checkpoint(path)
    except CheckpointError as err:
        assert str(path) in str(err), str(err)
    else:
        assert isinstance(state["model"], dict) and all(
            isinstance(v, torch.Tensor) for v in state["model"].values()
        )
