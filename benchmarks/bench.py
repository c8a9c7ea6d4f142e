"""Training throughput: our pipeline against the common one, on the same data, device and model.

    OMP_NUM_THREADS=1 python benchmarks/bench.py                      # LeNet, ResNet-18, ResNet-50
    OMP_NUM_THREADS=1 python benchmarks/bench.py --cases lenet --steps 300 --device cuda
    OMP_NUM_THREADS=1 python benchmarks/bench.py --cases --process --reference-repo ../dmizr_phuber
    OMP_NUM_THREADS=1 python benchmarks/bench.py --cases --process --only grid train \
        --reference-repo ../dmizr_phuber                               # the grid and one run
    python benchmarks/bench.py --tiny                                 # seconds; for the test suite

"Ours" is phuber's path: uint8 images resident on the device, batches drawn by index, normalisation
and augmentation batched on the device, metrics accumulated on the device, channels_last and a
fused optimiser (and bf16 autocast on CUDA). The reference is the common path, as in the earlier
reproduction: a torchvision-style data set of PIL images, PIL transforms, a ``DataLoader`` with
workers, fp32 and ``loss.item()`` every step. Each (pipeline, case) runs in its own process (peak
memory is its own). LeNet uses Fashion-MNIST's 60k images when Debian's ``dataset-fashion-mnist``
is installed; the ResNets use random 50k×32×32×3 images (CIFAR cannot be downloaded here).
"""

import argparse
import gzip
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from phuber.core.files import save_json, to_json  # noqa: E402
from phuber.datasets.download import DEBIAN_FASHION_MNIST  # noqa: E402
from phuber.datasets.load import load_arrays  # noqa: E402
from phuber.datasets.registry import DATASETS  # noqa: E402
from phuber.datasets.transforms import BatchTransform  # noqa: E402
from phuber.losses.paper import PHuberCrossEntropy  # noqa: E402
from phuber.models import LeNet, resnet18, resnet50  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))

CASES: dict[str, dict[str, Any]] = {
    "lenet": {"model": LeNet, "n": 60000, "shape": (1, 28, 28), "batch": 32, "augment": False},
    "resnet18": {
        "model": resnet18,
        "n": 50000,
        "shape": (3, 32, 32),
        "batch": 128,
        "augment": True,
    },
    "resnet50": {"model": resnet50, "n": 50000, "shape": (3, 32, 32), "batch": 64, "augment": True},
}


def load_case(name: str, tiny: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """uint8 images (N, C, H, W), int64 labels, and where they came from."""
    case = CASES[name]
    if name == "lenet" and not tiny and DEBIAN_FASHION_MNIST.is_dir():
        images, labels = load_arrays("fashion_mnist", ROOT / "data", train=True)
        return images.numpy(), labels.numpy(), "Fashion-MNIST (60k, real)"
    n = 256 if tiny else case["n"]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, *case["shape"]), dtype=np.uint8)
    return images, rng.integers(0, 10, n), f"random {n}×{'×'.join(map(str, case['shape']))}"


def make_model(
    name: str, device: torch.device, ours: bool = False
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The case's model and optimiser; ours as the trainer builds them (channels_last, fused)."""
    case = CASES[name]
    model = case["model"](num_classes=10, in_channels=case["shape"][0]).to(device)
    fast = {"fused": True} if ours else {}
    if ours:
        model = model.to(memory_format=torch.channels_last)
    if name == "lenet":
        return model, torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3, **fast)
    kwargs = {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, **fast}
    return model, torch.optim.SGD(model.parameters(), **kwargs)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def batch_size(name: str, tiny: bool) -> int:
    return 4 if tiny else CASES[name]["batch"]


def run_ours(name: str, steps: int, device: torch.device, tiny: bool, start: float, compiled=None):
    case = CASES[name]
    images_np, labels_np, source = load_case(name, tiny)
    images = torch.from_numpy(images_np).to(device)
    labels = torch.from_numpy(labels_np).to(device)
    info = DATASETS["fashion_mnist" if name == "lenet" else "cifar10"]
    gen = torch.Generator(device).manual_seed(0)
    transform = BatchTransform(info.mean, info.std, device, case["augment"], generator=gen)
    model, optimizer = make_model(name, device, ours=True)
    forward = torch.compile(model, backend=compiled) if compiled else model  # a backend's name
    cuda = device.type == "cuda"
    loss_fn, batch = PHuberCrossEntropy(tau=10), batch_size(name, tiny)
    sums = torch.zeros(2, device=device)
    perm = torch.randperm(len(labels), device=device)
    times = []
    for step in range(steps + 1):
        index = perm[(step * batch) % len(labels) :][:batch]
        x = transform(images[index])
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = forward(x)
            loss = loss_fn(logits, labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sums += torch.stack([loss.detach(), (logits.argmax(1) == labels[index]).sum().float()])
        if step == 0:
            sync(device)
            times.append(time.perf_counter())
    sync(device)
    times.append(time.perf_counter())
    sums.tolist()
    return _result(source, times, start, steps, batch, len(labels), device)


class PILDataset(torch.utils.data.Dataset):
    """What torchvision's MNIST/CIFAR classes do per item: array → PIL image → transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Any) -> None:
        self.images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
        self.labels, self.transform = labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def reference_loader(name: str, tiny: bool, workers: int, device: torch.device):
    import torchvision.transforms as T  # the reference's cost, not ours

    case = CASES[name]
    images, labels, source = load_case(name, tiny)
    info = DATASETS["fashion_mnist" if name == "lenet" else "cifar10"]
    augment = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if case["augment"] else []
    transform = T.Compose([*augment, T.ToTensor(), T.Normalize(info.mean, info.std)])
    loader = torch.utils.data.DataLoader(
        PILDataset(images, labels, transform),
        batch_size=batch_size(name, tiny),
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    return loader, source, len(labels)


def run_reference(
    name: str, steps: int, device: torch.device, tiny: bool, start: float, workers: int
) -> dict:
    from reference_train import train_step  # imports torchvision and TensorBoard

    loader, source, n = reference_loader(name, tiny, workers, device)
    model, optimizer = make_model(name, device)
    loss_fn = torch.nn.CrossEntropyLoss()
    times, step = [], 0
    while step <= steps:
        for x, y in loader:
            train_step(model, optimizer, loss_fn, x, y, device)
            if step == 0:
                times.append(time.perf_counter())
            step += 1
            if step > steps:
                break
    times.append(time.perf_counter())
    return _result(source, times, start, steps, batch_size(name, tiny), n, device)


def _result(source, times, start, steps, batch, n, device) -> dict:
    rate = steps * batch / (times[-1] - times[0])
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB → MiB on Linux
    result = {
        "data": source,
        "images_per_s": rate,
        "epoch_time_s": n / rate,
        "time_to_first_step_s": times[0] - start,
        "peak_rss_mib": peak_rss,
    }
    if device.type == "cuda":
        result["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def worker(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    device = torch.device(args.device)
    if args.worker == "ours":
        return run_ours(args.case, args.steps, device, args.tiny, start)
    return run_reference(args.case, args.steps, device, args.tiny, start, args.workers)


def in_subprocess(pipeline: str, case: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", pipeline, "--case", case]
    command += ["--steps", str(args.steps), "--device", args.device, "--workers", str(args.workers)]
    command += ["--tiny"] if args.tiny else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{pipeline} {case} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mnist_layout(root: Path) -> None:
    """Real Fashion-MNIST (Debian's package) as uncompressed IDX files in ``root/MNIST/raw``, the
    layout ``dataset=mnist`` reads, and in ``root/NoisyMNIST/raw``, where torchvision's reader
    looks for the earlier reproduction's ``NoisyMNIST`` class."""
    if not list(DEBIAN_FASHION_MNIST.glob("*.gz")):
        raise SystemExit(
            f"no Fashion-MNIST in {DEBIAN_FASHION_MNIST}: install Debian's package "
            f"(apt-get install dataset-fashion-mnist), which the process cases train on"
        )
    for folder in ("MNIST", "NoisyMNIST"):
        raw = root / folder / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for gz in DEBIAN_FASHION_MNIST.glob("*.gz"):
            target = raw / gz.stem
            if not target.exists():
                target.write_bytes(gzip.decompress(gz.read_bytes()))


def process_commands(args: argparse.Namespace, root: Path) -> dict[str, tuple[list, list | None]]:
    """What a user waits for, as (ours, reference) commands; no reference where it has none.

    The reference is the earlier reproduction itself when ``--reference-repo`` names a checkout of
    it (github.com/dmizr/phuber), else ``benchmarks/reference_train.py`` for the training run.
    """
    py, ours = sys.executable, str(ROOT / "train.py")
    data = [f"dataset.root={root}", f"device={args.device}"]
    shape = ["dataset=mnist", "model=lenet", *data]  # the earlier reproduction's command shape
    repo = args.reference_repo.resolve() if args.reference_repo else None  # runs cd elsewhere
    if repo:
        theirs = [py, str(repo / "train.py"), *shape, f"dataset.num_workers={args.workers}"]
    else:
        theirs = None
    stand_in = [py, str(ROOT / "benchmarks" / "reference_train.py"), "--device", args.device]
    stand_in += ["--workers", str(args.workers), "--root", str(root), "--dataset", "mnist"]
    grid = ["--multirun", "loss=ce,gce", "dataset.train.corrupt_prob=0.2,0.4", "hparams.epochs=1"]
    return {
        "grid: 2 losses x 2 rates, 1 epoch": (  # --multirun as users type it, each side's default
            [py, ours, *grid, *shape, "seed=0"],
            [*theirs[:2], *grid, *theirs[2:]] if theirs else None,
        ),
        "train: 1 epoch": (
            [py, ours, *shape, "hparams.epochs=1", "seed=0"],
            [*theirs, "hparams.epochs=1"] if theirs else stand_in,
        ),
        "start-up: 0 epochs": (
            [py, ours, *shape, "hparams.epochs=0", "seed=0"],
            [*theirs, "hparams.epochs=0"] if theirs else None,
        ),
        "--help": ([py, ours, "--help"], [py, str(repo / "train.py"), "--help"] if repo else None),
        "config error (+hparams.epoch=1)": ([py, ours, "+hparams.epoch=1"], None),
        "build error (loss.tau=1)": ([py, ours, *shape, "loss.tau=1"], None),
        "synthetic_1.py n_repeat=100": (
            [py, str(ROOT / "synthetic_1.py"), "n_repeat=100", "show_fig=false"],
            [py, str(repo / "synthetic_1.py"), "n_repeat=100", "show_fig=false"] if repo else None,
        ),
    }


def process_benchmark(args: argparse.Namespace) -> dict:
    """Whole processes, ours and the reference interleaved ``--repeats`` times, each in a fresh
    run directory (a finished run would be skipped); medians and the ratio of medians."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env["MPLBACKEND"] = "Agg"
    root = Path(tempfile.mkdtemp(prefix="phuber_bench_data_"))
    _mnist_layout(root)  # untimed
    commands = {
        c: pair
        for c, pair in process_commands(args, root).items()
        if not args.only or any(c.startswith(o) for o in args.only)
    }
    times: dict[str, dict[str, list[float]]] = {c: {"ours": [], "reference": []} for c in commands}
    failed: dict[str, str] = {}  # case → why the reference could not run it (then it is dropped)
    for _ in range(args.repeats):
        for case, pair in commands.items():
            for side, command in zip(("ours", "reference"), pair, strict=True):
                if command is None or (side == "reference" and case in failed):
                    continue
                cwd = tempfile.mkdtemp(prefix="phuber_bench_run_")
                start = time.perf_counter()
                done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
                times[case][side].append(time.perf_counter() - start)
                if (done.returncode != 0) == ("error" in case):
                    continue
                if side == "ours":
                    raise SystemExit(f"ours {case} failed:\n{done.stderr[-2000:]}")
                failed[case] = done.stderr.strip().splitlines()[-1][:300]
                times[case]["reference"] = []
                print(f"reference {case}: could not run ({failed[case]})", flush=True)
    results: dict[str, Any] = {"reference_failed": failed}
    print(f"{'whole process':<34} {'ours s':>14} {'reference s':>14} {'ref/ours':>9}")
    for case, sides in times.items():
        row = {side: _spread(values) for side, values in sides.items() if values}
        if "reference" in row:
            row["ratio"] = row["reference"]["median"] / row["ours"]["median"]
        results[case] = row
        ref = row.get("reference")
        print(
            f"{case:<34} {_show(row['ours']):>14} {_show(ref) if ref else '':>14}"
            f" {row['ratio']:>8.2f}x"
            if ref
            else f"{case:<34} {_show(row['ours']):>14}"
        )
    return {"repeats": args.repeats, "reference": str(args.reference_repo or "stand-in"), **results}


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": float(np.median(values)), "min": min(values), "max": max(values)}


def _show(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} ({s['min']:.1f}–{s['max']:.1f})"


def main() -> None:
    args = parser().parse_args()
    _main(args)


def parser() -> argparse.ArgumentParser:
    """The benchmark's command line (the docs' commands are parsed by it in the suite)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--steps", type=int, default=100, help="timed steps after the first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (reference)")
    parser.add_argument("--tiny", action="store_true", help="256 random images, a few steps")
    parser.add_argument("--process", action="store_true", help="time whole processes")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved process repeats")
    parser.add_argument("--only", nargs="*", help="process cases starting with these (grid, ...)")
    parser.add_argument(
        "--reference-repo", type=Path, default=None, help="a checkout of dmizr/phuber"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    parser.add_argument("--worker", choices=["ours", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    return parser


def _main(args: argparse.Namespace) -> None:
    if args.worker:
        print(to_json(worker(args), indent=None))  # one line: the parent reads the last
        return
    if args.tiny:  # a smoke test: a few small batches through both pipelines
        args.steps = min(args.steps, 2)
    report: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "commit": _commit(),
        "command": " ".join(sys.argv),
        "cases": {},
    }
    header = (
        f"{'case':<9} {'pipeline':<9} {'img/s':>9} {'epoch s':>9} {'1st step s':>10} {'RSS MiB':>8}"
    )
    print(header)
    for case in args.cases:
        rows = {p: in_subprocess(p, case, args) for p in ("ours", "reference")}
        rows["speedup"] = rows["ours"]["images_per_s"] / rows["reference"]["images_per_s"]
        report["cases"][case] = rows
        for pipeline in ("ours", "reference"):
            r = rows[pipeline]
            print(
                f"{case:<9} {pipeline:<9} {r['images_per_s']:>9.0f} {r['epoch_time_s']:>9.1f}"
                f" {r['time_to_first_step_s']:>10.2f} {r['peak_rss_mib']:>8.0f}"
            )
        print(f"{case:<9} {'ours/ref':<9} {rows['speedup']:>8.2f}x   ({rows['ours']['data']})")
    if args.process:
        report["process"] = process_benchmark(args)
    if args.out:
        save_json(args.out, report)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True)
        return out.stdout.decode().strip()
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
