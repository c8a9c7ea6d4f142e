"""The checked readers of array files (NumPy ``.npy`` and ``.npz``, JSON lists) and the one check
of a label array, used by every reader of labels (label files, CIFAR-N's annotations, IDX and
CIFAR files, and readers added from outside phuber): whatever a file or reader holds, the result
is int64 labels of the right length within the classes, or one ``DataError`` naming the file (or
the reader) and what is wrong. Nothing here runs code from a file (``allow_pickle=False``).
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

from phuber.core.errors import DataError


def label_array(value: Any, where: str, n: int | None, num_classes: int | None) -> np.ndarray:
    """``value`` (an array, a list, or a column of one label per row; a tensor too) as int64
    class indices: one per example (``n`` of them, where given), each in 0…K−1 (``num_classes``,
    where given). Any integer dtype is taken; floats, booleans and ragged lists are not."""
    if hasattr(value, "detach"):  # a torch tensor, from a reader added outside phuber
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # a ragged list: rows of different lengths
        raise DataError(f"{where}: not one label per example (its rows differ in length)") from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # a column: one label per row
    if array.ndim != 1:
        raise DataError(
            f"{where}: labels of shape {array.shape}; expected one label per example"
            + (f" ({n})" if n is not None else "")
        )
    if n is not None and array.shape[0] != n:
        raise DataError(f"{where}: holds {array.shape[0]} labels; the data has {n} examples")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{where}: labels must be integers, got {array.dtype}")
    if num_classes is not None and (outside := outside_classes(array, num_classes)):
        raise DataError(f"{where}: {outside}")
    return array.astype(np.int64)


def outside_classes(labels: np.ndarray, num_classes: int) -> str | None:
    """The first label outside 0…K−1 and how many there are, in words; None if all are in."""
    outside = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if not outside.size:
        return None
    i = int(outside[0])
    return (
        f"label {int(labels[i])} at index {i} is outside the {num_classes} classes "
        f"0…{num_classes - 1} ({outside.size} such labels)"
    )


def read_arrays(path: Path, where: str) -> dict[str, Any]:
    """The arrays of a ``.npz`` (by name), a ``.npy`` (as ``"array"``) or a ``.json`` list (as
    ``"array"``), each member read in full here, so that a file cut short or damaged is one
    ``DataError`` naming it, whichever member it damaged."""
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{where}: is empty (0 bytes)")
        if path.suffix == ".json":
            return {"array": json.loads(path.read_text())}
        if path.suffix == ".npy":
            return {"array": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as loaded:
            return {name: loaded[name] for name in loaded.files}
    except DataError:
        raise
    except Exception as err:  # NumPy's and zipfile's parsers raise many kinds on damaged bytes
        # (BadZipFile, zlib.error, tokenize.TokenError, ValueError for a pickled object array
        # under allow_pickle=False or for bad JSON, ...): each is this one message
        detail = " ".join(str(err).split())[:160]
        raise DataError(
            f"{where}: is truncated, damaged or not a {path.suffix} file of labels "
            f"({type(err).__name__}: {detail})"
        ) from None
