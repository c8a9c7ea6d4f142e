"""Where the data sets' files are (torchvision's layouts under ``dataset.root``, Debian's
Fashion-MNIST package) and how missing ones are fetched: through torchvision's download code,
which verifies each file's MD5, imported only to download."""

import shutil
from pathlib import Path

from phuber.core.errors import DataError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# name → (folder under root, training files, test files)
_IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_FILES = {
    "mnist": ("MNIST/raw", _IDX_TRAIN, _IDX_TEST),
    "fashion_mnist": ("FashionMNIST/raw", _IDX_TRAIN, _IDX_TEST),
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]),
    "cifar100": ("cifar-100-python", ["train"], ["test"]),
}


def _find(name: str, root: Path, file: str) -> Path | None:
    """Where ``file`` is: in torchvision's folder, in ``root`` itself, or (Fashion-MNIST) in
    Debian's ``dataset-fashion-mnist`` package; IDX files also as ``.gz``, read in place."""
    folders = [root / _FILES[name][0]]
    suffixes = [""]
    if name in ("mnist", "fashion_mnist"):
        folders.append(root)
        suffixes.append(".gz")
        if name == "fashion_mnist":
            folders.append(DEBIAN_FASHION_MNIST)
    for folder in folders:
        for suffix in suffixes:
            if (folder / f"{file}{suffix}").is_file():
                return folder / f"{file}{suffix}"
    return None


def _missing(name: str, root: Path, what: str, tried: list[str] | None = None) -> str:
    """The message for files that are not there: what happened, the URLs tried, the files
    expected and where, and what to do."""
    folder, train, test = _FILES[name]
    gz = " (or .gz)" if name in ("mnist", "fashion_mnist") else ""
    fetch = (
        "place them there by hand"
        if tried
        else "download them with dataset.download=true (needs internet)"
    )
    return (
        f"data set {name!r} {what}."
        + "".join(f"\n  tried: {line}" for line in tried or [])
        + f"\n  expected files{gz}: {', '.join([*train, *test])}\n  in {root / folder}/ "
        f"(dataset.root={str(root)!r})\n  {fetch}, or train offline on the embedded set: "
        f"dataset=mnist_5k (needs no files)"
    )


def _download(name: str, root: Path) -> None:
    """Fetch a data set's files through torchvision's download code (which verifies each
    file's MD5); a failure names every URL tried and why, and leaves no empty folders."""
    import torchvision

    folder = root / _FILES[name][0]
    created = next((p for p in [*reversed(folder.parents), folder] if not p.exists()), None)
    download = torchvision.datasets.utils.download_and_extract_archive
    tried: list[str] = []
    try:
        if name in ("cifar10", "cifar100"):
            cls = (
                torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
            )
            jobs = [[(cls.url, cls.filename, cls.tgz_md5, root)]]
        else:
            cls = (
                torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
            )
            jobs = [
                [(f"{mirror}{file}", file, md5, folder) for mirror in cls.mirrors]
                for file, md5 in cls.resources
            ]
        for mirrors in jobs:
            for url, filename, md5, into in mirrors:
                try:
                    download(url, download_root=str(into), filename=filename, md5=md5)
                    break
                except Exception as err:  # URLError, HTTPError, OSError, a wrong checksum, ...
                    tried.append(f"{url} ({type(err).__name__}: {' '.join(str(err).split())})")
            else:
                raise DataError(_missing(name, root, "could not be downloaded", tried))
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
