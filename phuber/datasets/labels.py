"""Labels that travel between code bases: every run writes the training labels it trained on
(``noisy_labels.npz``: ``noisy_labels`` and ``clean_labels``, the whole training set in the data
set's own order, before any validation split) and records the file's SHA-256; and a run can
train on labels from a file (``dataset.train.label_file``: ``.npy``, ``.npz`` with a
``noisy_labels`` array, or a ``.json`` list), checked against the data — and against the data
it was made for, which a ``noisy_labels.npz`` records in its ``clean_labels``. A file is
identified by its content (its SHA-256 is part of the run's identity), not by its path.

Nothing here runs code from a file: NumPy files are read with ``allow_pickle=False``.
"""

import hashlib
import io
import logging
from pathlib import Path

import numpy as np

from phuber.core.domains import File
from phuber.core.errors import DataError
from phuber.core.files import atomic_write
from phuber.datasets.arrays import label_array, read_arrays

log = logging.getLogger(__name__)

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
    training image (in the data set's order), each a class in 0…K−1, and, where the file says
    what data it was made for (a ``noisy_labels.npz``'s ``clean_labels``), made for this data."""
    key = "dataset.train.label_file"
    where = f"{key}={str(path)!r}"
    try:
        path = Path(LABEL_FILE.check(str(path))).expanduser()
    except ValueError as err:
        raise DataError(f"{where}: must be {err}") from None
    arrays = read_arrays(path, where)
    if path.suffix == ".npz" and "noisy_labels" not in arrays:
        raise DataError(f"{where}: has no noisy_labels array (arrays: {sorted(arrays)})")
    n = clean.shape[0]
    labels = label_array(arrays.get("noisy_labels", arrays.get("array")), where, n, num_classes)
    if "clean_labels" in arrays:
        made_for = label_array(arrays["clean_labels"], f"{where} (its clean_labels)", n, None)
        if not np.array_equal(made_for, clean):
            wrong = np.flatnonzero(made_for != clean)
            raise DataError(
                f"{where}: was made for other data: its clean_labels differ from this training "
                f"set's labels at {wrong.size} of {n} images (first at index {int(wrong[0])}); "
                f"the data set, its version or its order is not the one the file was made for"
            )
    else:
        log.warning(f"{where} does not say what data it was made for (no clean_labels)")
    return labels
