"""The process a run lives in: device, random state, numeric precision and stop signals."""

import copy
import logging
import os
import random
import signal
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from types import FrameType
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from phuber.core.identity import SEED_KEYS
from phuber.core.signals import HeldSignals

log = logging.getLogger(__name__)
_ABSENT = "<absent>"


def select_device(name: str, auto_cpu: bool = True) -> torch.device:
    """``torch.device(name)``, or the CPU when CUDA is asked for but absent and ``auto_cpu``.
    In a sweep on a machine with several GPUs, ``cuda`` without an index is GPU k mod n for
    job k (``--multirun`` runs one job per GPU by default)."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available() and auto_cpu:
        log.info("CUDA is not available: running on the CPU")
        return torch.device("cpu")
    job = sweep_job() if device.type == "cuda" and device.index is None else None
    if job is not None and (count := torch.cuda.device_count()) > 1:
        device = torch.device("cuda", job % count)
        torch.cuda.set_device(device)
    return device


def sweep_job() -> int | None:
    """This run's job number if it is a job of a ``--multirun`` sweep, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return int(HydraConfig.get().job.num)


def resolve_seeds(cfg: DictConfig, saved: Mapping[str, Any] | None = None) -> DictConfig:
    """A copy of ``cfg`` with every seed fixed (``seed``, the noise's and the split's, as
    ``identity.SEED_KEYS`` lists them): a seed given is kept (0 included); a null one takes the
    value in ``saved`` (the seeds of the checkpoint a run resumes) or is drawn once and logged.
    The run then records them all, so a resumed run draws the same noise, split and
    initialisation as the run it continues."""
    cfg = copy.deepcopy(cfg)
    for name in SEED_KEYS:
        if OmegaConf.select(cfg, name, default=_ABSENT) is not None:
            continue  # given, or not a key of this config
        value = (saved or {}).get(name)
        if value is None:
            value = int.from_bytes(os.urandom(4), "little") >> 1
            log.info(f"No {name} given: drew {name}={value} (recorded with the run)")
        else:
            log.info(f"No {name} given: the checkpoint's {name}={value}")
        OmegaConf.update(cfg, name, value)
    return cfg


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (model initialisation uses them)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(*generators: torch.Generator) -> dict[str, Any]:
    """Every random state a run depends on, as tensors and plain data (``weights_only``-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": [g.get_state() for g in generators],
    }


def restore_rng_state(state: dict[str, Any], *generators: torch.Generator) -> None:
    """Inverse of :func:`rng_state`."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for g, s in zip(generators, state["generators"], strict=True):
        g.set_state(s)


class Precision:
    """Mixed precision: bf16 autocast where the device supports it, else fp16 with loss scaling.

    Disabled, ``autocast()`` is a no-op and the scaler passes gradients through unchanged.
    """

    def __init__(self, enabled: bool, device: torch.device) -> None:
        self.device = device
        self.device_type = device.type
        self.dtype: torch.dtype | None = None
        if enabled:
            cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
            self.dtype = torch.bfloat16 if device.type != "cuda" or cuda_bf16 else torch.float16
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)

    def autocast(self) -> AbstractContextManager:
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


class StopSignals(HeldSignals):
    """Turns SIGTERM, SIGINT, SIGUSR1 (Slurm's warning before a time limit) and SIGUSR2
    (submitit's) into a flag that the training loop checks between steps, so it can save and exit
    cleanly. ``previous_handler`` is what was installed before, e.g. submitit's requeue handler,
    for the caller to hand the signal on to once the checkpoint is written."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self) -> None:
        super().__init__()
        self.received: int | None = None

    @property
    def previous_handler(self) -> Any:
        return self._previous.get(self.received) if self.received is not None else None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        log.warning(f"Received {signal.Signals(signum).name}: stopping after the current step")

    def __enter__(self) -> "StopSignals":
        super().__enter__()
        return self
