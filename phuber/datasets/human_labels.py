"""Real human label noise: the CIFAR-10N and CIFAR-100N annotations (Wei et al., ICLR 2022).

Their authors publish them as ``torch.save``d dicts of NumPy arrays (``UCSC-REAL/cifar-10-100n``,
folder ``data/``). The labels are CC BY-NC 4.0, so phuber downloads them rather than shipping them,
and checks the SHA-256 of what it downloads. A ``.pt`` file is a pickle: it is read with
``torch.load(weights_only=True)`` admitting only what NumPy arrays are rebuilt from, so a file
that needs anything else is refused before anything in it runs.
"""

import hashlib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from phuber.core.domains import Choice
from phuber.core.errors import DataError, InvalidValue
from phuber.core.files import atomic_write
from phuber.datasets.arrays import label_array

_REPOSITORY = "https://github.com/UCSC-REAL/cifar-10-100n/raw/main/data/"


@dataclass(frozen=True)
class HumanLabels:
    """One CIFAR-N file: where it comes from, its checksum, and which key holds each choice of
    ``dataset.train.human_labels``."""

    file: str
    sha256: str
    choices: dict[str, str] = field(hash=False)
    clean: str = "clean_label"  # the key of the true labels, checked against the data set's

    @property
    def url(self) -> str:
        return _REPOSITORY + self.file

    @property
    def domain(self) -> Choice:
        """``dataset.train.human_labels``: one of the file's label sets."""
        return Choice(tuple(self.choices), why="a label set of the CIFAR-N file")

    def check(self, choice: object, corrupt_prob: object, noise_type: object) -> None:
        """Raise ``InvalidValue`` for a choice the file does not have, or synthetic noise on
        top of the human labels."""
        if isinstance(choice, bool) or choice not in self.choices:
            raise InvalidValue("human_labels", choice, self.domain.allowed())
        if corrupt_prob != 0:
            raise InvalidValue(
                "corrupt_prob", corrupt_prob, "0 with human labels (they are the noise)"
            )
        if noise_type not in (None, "symmetric"):
            raise InvalidValue("noise_type", noise_type, "left unset with human labels")


CIFAR10N = HumanLabels(
    "CIFAR-10_human.pt",
    "873e69c39cb9b5e97fb6bae2d60bb59b38a5cbc31d2b868f7903dcb2b9dd2310",
    {
        "aggre": "aggre_label",
        "worse": "worse_label",
        "random1": "random_label1",
        "random2": "random_label2",
        "random3": "random_label3",
    },
)
CIFAR100N = HumanLabels(
    "CIFAR-100_human.pt",
    "bd2d80409754d420292d622e15e25248ba21e37d27429efac49c8da723f44394",
    {"noisy": "noisy_label"},
)
# The same file's 20-class labels (CIFAR-100's super-classes): dataset=cifar100n_coarse.
CIFAR100N_COARSE = HumanLabels(
    CIFAR100N.file, CIFAR100N.sha256, {"noisy_coarse": "noisy_coarse_label"}, "clean_coarse_label"
)


def read_human_labels(
    spec: HumanLabels,
    choice: str,
    root: Path,
    download: bool,
    clean: np.ndarray,
    clean_source: Path,
    num_classes: int,
) -> np.ndarray:
    """The human labels ``choice`` for the training images, whose true labels are ``clean``
    (read from ``clean_source``). The file's own ``clean_label`` must equal them, in order."""
    path = root / spec.file
    if not path.is_file():
        if not download:
            raise DataError(_missing(spec, path, "not found (dataset.download=false)"))
        _download(spec, path)
    data = _load(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: holds a {type(data).__name__}, not CIFAR-N's dict of labels")
    key = spec.choices[choice]
    for name in (spec.clean, key):
        if name not in data:
            raise DataError(f"{path}: has no {name!r} (keys: {sorted(map(str, data))})")
    labels = {
        name: label_array(data[name], f"{path}: {name!r}", len(clean), num_classes)
        for name in (spec.clean, key)
    }
    if not np.array_equal(labels[spec.clean], clean):
        wrong = int(np.flatnonzero(labels[spec.clean] != clean)[0])
        raise DataError(
            f"{path}: its {spec.clean} differs from the CIFAR training labels of {clean_source} "
            f"(first at index {wrong}); the two files are not of the same data set version"
        )
    return labels[key]


def _load(path: Path) -> object:
    """``torch.load(weights_only=True)``, admitting NumPy's array reconstruction only (under
    NumPy 1's and 2's module names), of arrays of any integer type."""
    from phuber.core.files import Unreadable, safe_load

    reconstruct = np._core.multiarray._reconstruct
    integers = [
        getattr(np.dtypes, f"{kind}{bits}DType")
        for kind in ("Int", "UInt")
        for bits in (8, 16, 32, 64)
    ]
    allowed = [
        reconstruct,
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        *integers,
    ]
    try:
        return safe_load(path, allowed)
    except Unreadable as err:
        if err.unsafe:
            raise DataError(
                f"{path} was refused: it {err}; a label file is read without running code. "
                f"Delete it and download it again"
            ) from None
        raise DataError(
            f"{path} {err}: delete it and download it again (dataset.download=true)"
        ) from None


def _download(spec: HumanLabels, path: Path) -> None:
    """Fetch the file and keep it only if its SHA-256 is the published one."""
    try:
        with urllib.request.urlopen(spec.url, timeout=60) as response:
            payload = response.read()
    except Exception as err:  # URLError, HTTPError, timeouts, ...
        tried = f"{spec.url} ({type(err).__name__}: {' '.join(str(err).split())})"
        raise DataError(_missing(spec, path, "could not be downloaded", tried)) from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != spec.sha256:
        raise DataError(
            f"{spec.url}: SHA-256 {digest}, not the published {spec.sha256}; nothing was saved"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(payload))


def _missing(spec: HumanLabels, path: Path, what: str, tried: str | None = None) -> str:
    fetch = "place it there by hand" if tried else "download it with dataset.download=true"
    return (
        f"CIFAR-N labels {spec.file} {what}."
        + (f"\n  tried: {tried}" if tried else "")
        + f"\n  expected: {path} (from {spec.url})\n  {fetch}, or train offline on the "
        f"embedded set: dataset=mnist_5k (needs no files)"
    )
