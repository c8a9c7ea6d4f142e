"""The GPU check (``benchmarks/gpu.sh``): what a machine with a GPU must show, in one JSON.

    bash benchmarks/gpu.sh                    # on a CUDA machine: under 8 minutes
    bash benchmarks/gpu.sh --dry-run          # every piece at toy size on the CPU (the suite)

1. ResNet-50 on CIFAR-shaped data (50k random 32×32×3 images, the paper's batch 64, crop and
   flip on the device, bf16 autocast, channels_last): training images/s, eager and with
   ``torch.compile`` (``benchmarks/bench.py``'s loop).
2. A LeNet grid of 4 jobs sharing one GPU, launched as users do (``--multirun``, 4 parallel
   jobs), on MNIST-format files of random digits: its wall time and each job's epoch time.
3. A 200-step ResNet-18 run through ``train.py`` (2 epochs of 100 steps) on CIFAR-format files
   whose classes differ in colour, so a working pipeline must lower the training loss.

It records the device, torch and the commit, and exits non-zero if a piece failed.
"""

import argparse
import json
import math
import pickle
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import _commit, run_ours  # noqa: E402


def idx_bytes(array: np.ndarray) -> bytes:
    """A uint8 array in the IDX format (magic 0x0803 or 0x0801, big-endian sizes)."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_digits(root: Path, n_train: int, n_test: int) -> None:
    """MNIST's IDX files (``root/MNIST/raw``) of random 28×28 digits."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(idx_bytes(images))
        labels = rng.integers(0, 10, n).astype(np.uint8)
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))


def write_colours(root: Path, per_batch: int, n_test: int) -> None:
    """CIFAR-10's pickle batches (``root/cifar-10-batches-py``) of noisy images whose mean
    colour is their class's: learnable, so the training loss must fall."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    colours = rng.integers(40, 216, (10, 3, 1, 1))
    names = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        labels = rng.integers(0, 10, n)
        noise = rng.normal(0, 30, (n, 3, 32, 32))
        images = np.clip(colours[labels] + noise, 0, 255).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": images.reshape(n, -1), "labels": labels.tolist()}, f)


def train(args: list[str], cwd: Path, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    """``train.py`` with ``args`` as a user runs it: its result and wall time."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done, time.perf_counter() - start


def throughput(device: torch.device, dry: bool, case: str = "resnet50") -> dict[str, Any]:
    """Eager and compiled (inductor; in a dry run dynamo's capture with the eager backend, as
    inductor's CPU build alone takes minutes)."""
    steps = 2 if dry else 300
    backend = "eager" if dry else "inductor"
    eager = run_ours(case, steps, device, dry, time.perf_counter())
    compiled = run_ours(case, steps, device, dry, time.perf_counter(), compiled=backend)
    return {"steps": steps, "eager": eager, "compiled": {"backend": backend, **compiled}}


def grid_args(device: str, root: Path, sweep: Path) -> list[str]:
    """The LeNet grid: 2 losses × 2 noise rates, one epoch each, 4 jobs at once."""
    args = ["--multirun", "loss=ce,gce", "dataset.train.corrupt_prob=0.2,0.4", "dataset=mnist"]
    args += [f"dataset.root={root}", "hparams.epochs=1", "hydra.launcher.n_jobs=4"]
    return [
        *args,
        f"device={device}",
        "tensorboard=false",
        "save=false",
        f"hydra.sweep.dir={sweep}",
    ]


def resnet18_args(device: str, root: Path, run_dir: Path, batch: int) -> list[str]:
    """The ResNet-18 run: 2 epochs of the training files at ``batch``, no validation split."""
    args = ["dataset=cifar10", "model=resnet18", f"dataset.root={root}", "hparams.epochs=2"]
    args += [f"hparams.batch_size={batch}", "dataset.val.use=false", f"device={device}"]
    return [*args, "tensorboard=false", "save=false", f"hydra.run.dir={run_dir}"]


def grid(device: str, dry: bool, work: Path) -> dict[str, Any]:
    write_digits(work / "digits", *((256, 64) if dry else (60000, 10000)))
    sweep = work / "grid"
    done, wall = train(grid_args(device, work / "digits", sweep), work, timeout=400)
    jobs = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    epochs = [m["history"][0]["epoch_time_s"] for m in jobs if m.get("history")]
    return {
        "ok": done.returncode == 0 and len(epochs) == 4,
        "wall_time_s": wall,
        "epoch_time_s": epochs,
        "tail": done.stderr[-1500:] if done.returncode else "",
    }


def resnet18_run(device: str, dry: bool, work: Path) -> dict[str, Any]:
    batch = 8 if dry else 128
    per_batch = 4 if dry else batch * 100 // 5  # 100 steps per epoch on the GPU
    write_colours(work / "colours", per_batch=per_batch, n_test=256)
    run_dir = work / "resnet18"
    args = resnet18_args(device, work / "colours", run_dir, batch)
    done, wall = train(args, work, timeout=300)
    try:
        history = json.loads((run_dir / "metrics.json").read_text())["history"]
    except (OSError, ValueError, KeyError):
        history = []
    losses = [row["train_loss"] for row in history]
    steps = len(losses) * math.ceil(5 * per_batch / batch)
    falls = len(losses) == 2 and losses[1] < losses[0]
    return {
        "ok": done.returncode == 0 and (falls or dry),
        "loss_falls": falls,
        "steps": steps,
        "train_loss_per_epoch": losses,
        "wall_time_s": wall,
        "tail": done.stderr[-1500:] if done.returncode else "",
    }


OUT = Path("outputs/gpu_check.json")  # outputs/ is in .gitignore: never a file in the checkout


def parser() -> argparse.ArgumentParser:
    """gpu.sh's command line (the docs' commands are parsed by it in the suite)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU")
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT,
        help=f"the JSON report (default: {OUT}, in a folder the project ignores)",
    )
    return parser


def main() -> int:
    args = parser().parse_args()
    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        print("no CUDA device here: run with --dry-run to check the pieces on the CPU")
        return 2
    device = "cpu" if dry else "cuda"
    with tempfile.TemporaryDirectory(prefix="phuber_gpu_check_") as folder:
        work = Path(folder)
        report: dict[str, Any] = {
            "device": torch.cuda.get_device_name() if not dry else "cpu (dry run)",
            "torch": torch.__version__,
            "commit": _commit(),
            "dry_run": dry,
            "resnet50_throughput": throughput(torch.device(device), dry),
            "lenet_grid_4_jobs_one_gpu": grid(device, dry, work),
            "resnet18_200_steps": resnet18_run(device, dry, work),
        }
    from phuber.core.files import save_json

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_json(args.out, report)
    r50 = report["resnet50_throughput"]
    print(
        f"ResNet-50 images/s: eager {r50['eager']['images_per_s']:.0f}, "
        f"compiled {r50['compiled']['images_per_s']:.0f}; "
        f"grid ok: {report['lenet_grid_4_jobs_one_gpu']['ok']}; "
        f"ResNet-18 loss falls: {report['resnet18_200_steps']['loss_falls']} -> {args.out}"
    )
    pieces = (report["lenet_grid_4_jobs_one_gpu"], report["resnet18_200_steps"])
    return 0 if all(piece["ok"] for piece in pieces) else 1


if __name__ == "__main__":
    sys.exit(main())
