"""Labels that travel between code bases: every run writes the training labels it trained on
(``noisy_labels.npz``: ``noisy_labels`` and ``clean_labels``, the whole training set in the data
set's own order, before any validation split) and records the file's SHA-256; and a run can
train on labels from a file (``dataset.train.label_file``: ``.npy``, ``.npz`` with a
``noisy_labels`` array, or a ``.json`` list), checked against the data. A file is identified by
its content (its SHA-256 is part of the run's identity), not by its path.

Nothing here runs code from a file: NumPy files are read with ``allow_pickle=False``.
"""

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from phuber.core.domains import File
from phuber.core.errors import DataError
from phuber.core.files import atomic_write
from phuber.datasets.readers import outside_classes

LABELS_FILE = "noisy_labels.npz"
SUFFIXES = (".npy", ".npz", ".json")
# dataset.train.label_file: what read_label_file reads
LABEL_FILE = File(
    "label file",
    SUFFIXES,
    nullable=True,
    null_means="labels from the noise model",
)


def sha256(path: str | Path, key: str | None = None) -> str:
    """The hex SHA-256 of a file's bytes (a ``DataError`` naming it, and the config ``key`` that
    gave it, if it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()
    except (OSError, ValueError) as err:
        where = f"{key}={str(path)!r}" if key else str(path)
        reason = getattr(err, "strerror", None) or err
        raise DataError(f"{where}: cannot be read ({reason})") from None


def label_bytes(noisy: np.ndarray, clean: np.ndarray, num_classes: int) -> bytes:
    """``noisy_labels.npz`` as bytes: int16 where the classes fit, else int64. The same labels
    give the same bytes (NumPy writes every member with the same fixed date)."""
    dtype = np.int16 if num_classes <= np.iinfo(np.int16).max else np.int64
    buffer = io.BytesIO()
    np.savez(buffer, noisy_labels=noisy.astype(dtype), clean_labels=clean.astype(dtype))
    return buffer.getvalue()


def labels_sha256(noisy: np.ndarray, clean: np.ndarray, num_classes: int) -> str:
    """The SHA-256 of the ``noisy_labels.npz`` these labels make."""
    return hashlib.sha256(label_bytes(noisy, clean, num_classes)).hexdigest()


def save_labels(path: Path, noisy: np.ndarray, clean: np.ndarray, num_classes: int) -> None:
    """Write the training labels atomically (a full disk is a ``StorageError``)."""
    data = label_bytes(noisy, clean, num_classes)
    atomic_write(path, lambda f: f.write(data))


def read_label_file(path: str | Path, clean: np.ndarray, num_classes: int) -> np.ndarray:
    """The noisy training labels in ``path``, as int64, checked against the data: one per
    training image (in the data set's order) and each a class in 0…K−1."""
    path = Path(path).expanduser()
    key = "dataset.train.label_file"
    if path.suffix not in SUFFIXES:
        raise DataError(
            f"{key}={str(path)!r}: must be a .npy, a .npz with a noisy_labels array, or a .json "
            f"list of labels (got {path.suffix or 'no suffix'!r})"
        )
    if not path.is_file():
        raise DataError(f"{key}={str(path)!r}: no such file")
    try:
        if path.suffix == ".json":
            labels = np.asarray(json.loads(path.read_text()))
        else:
            loaded = np.load(path, allow_pickle=False)
            if path.suffix == ".npz":
                if "noisy_labels" not in loaded.files:
                    raise DataError(
                        f"{key}={str(path)!r}: has no noisy_labels array (arrays: {loaded.files})"
                    )
                loaded = loaded["noisy_labels"]
            labels = np.asarray(loaded)
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as err:  # a pickled object array is a ValueError
        raise DataError(
            f"{key}={str(path)!r}: cannot be read as labels ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]})"
        ) from None
    n = clean.shape[0]
    if labels.ndim != 1 or labels.shape[0] != n:
        raise DataError(
            f"{key}={str(path)!r}: holds {labels.shape} labels; the training set has {n} images "
            f"(one label each, in the data set's order, before any validation split)"
        )
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{key}={str(path)!r}: labels must be integers, got {labels.dtype}")
    if outside := outside_classes(labels, num_classes):
        raise DataError(f"{key}={str(path)!r}: {outside}")
    return labels.astype(np.int64)
