"""One metrics dict per epoch feeds the log, TensorBoard and ``metrics.json``."""

import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from phuber.core.files import save_json
from phuber.core.identity import RunIdentity

log = logging.getLogger(__name__)


class Recorder:
    """Writes a run's metrics; ``history`` carries over from a resumed checkpoint."""

    def __init__(
        self,
        out_dir: Path,
        cfg: DictConfig,
        identity: RunIdentity,
        history: list[dict[str, Any]] | None = None,
        tensorboard: bool = True,
    ) -> None:
        self.out_dir = out_dir
        self.metrics: dict[str, Any] = {
            "status": "running",
            "summary": identity.summary(),
            "identity": identity.to_dict(),
            "config": OmegaConf.to_container(cfg, resolve=True),
            "data": {},
            "history": history if history is not None else [],
            "final": {},
        }
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # Events go to out_dir/<run name>, so `tensorboard --logdir multirun/DATE/TIME` names
            # each run by its loss, τ, clipping, noise, ρ and seed. purge_step drops events a
            # crashed run logged after its last checkpoint.
            log_dir = out_dir / identity.name
            self.writer = SummaryWriter(str(log_dir), purge_step=len(self.metrics["history"]))
            self.writer.add_text("config", f"<pre>{OmegaConf.to_yaml(cfg)}</pre>")

    def data(self, info: dict[str, Any], transition: np.ndarray) -> None:
        """Facts about the data (sizes, nominal and realized noise rate) and the realized
        transition matrix (row i: the distribution of given labels of true class i)."""
        self.metrics["data"].update(info)
        self.metrics["data"]["transition_matrix"] = transition.round(6).tolist()
        log.info("Data: " + ", ".join(f"{k}={_fmt(v)}" for k, v in info.items()))
        if self.writer is not None:
            self.writer.add_scalar("noise/realized_rate", info["realized_noise_rate"], 0)
            self.writer.add_image(
                "noise/transition_matrix", heatmap(transition), 0, dataformats="HWC"
            )
        self._save()

    def epoch(self, row: dict[str, Any]) -> None:
        """One epoch's metrics: ``row["epoch"]`` is the epoch number (0-based). Appends to the
        ``history`` list given at construction."""
        self.metrics["history"].append(row)
        log.info(" | ".join(f"{k} {_fmt(v)}" for k, v in row.items()))
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, int | float):
                    self.writer.add_scalar(key.replace("_", "/", 1), value, row["epoch"])
            self.writer.flush()
        self._save()

    def finish(self, status: str, final: dict[str, Any] | None = None) -> None:
        """Record the outcome: ``completed`` with final metrics, or ``preempted``/``failed``."""
        self.metrics["status"] = status
        self.metrics["final"].update(final or {})
        if final:
            log.info("Final: " + ", ".join(f"{k}={_fmt(v)}" for k, v in final.items()))
        if self.writer is not None:
            history = self.metrics["history"]
            step, last = len(history), history[-1] if history else {}
            for key, value in (final or {}).items():
                if key.startswith(("val_", "test_")) and key not in last:  # not logged already
                    self.writer.add_scalar(key.replace("_", "/", 1), value, step)
            if status == "completed":
                hparams = {k: v for k, v in self.metrics["summary"].items() if v is not None}
                scores = {f"hparam/{k}": v for k, v in final.items() if isinstance(v, float)}
                self.writer.add_hparams(hparams, scores, run_name=".")
            self.writer.close()
        self._save()

    def _save(self) -> None:
        save_json(self.out_dir / "metrics.json", self.metrics)


# viridis at 0, 1/4, 1/2, 3/4 and 1: the colours a matplotlib heatmap of the matrix would use
_VIRIDIS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64
)


def heatmap(matrix: np.ndarray, size: int = 320) -> np.ndarray:
    """The matrix as an RGB image (uint8, ``(H, W, 3)``): each entry in [0, 1] a square of
    viridis colour, row i of the matrix row i of squares, without matplotlib (whose import
    would cost a run most of a second)."""
    k = matrix.shape[0]
    cell = max(size // k, 2)
    t = np.clip(matrix, 0, 1) * (len(_VIRIDIS) - 1)
    low = np.minimum(t.astype(int), len(_VIRIDIS) - 2)
    frac = (t - low)[..., None]
    colours = _VIRIDIS[low] * (1 - frac) + _VIRIDIS[low + 1] * frac
    return np.repeat(np.repeat(colours.round().astype(np.uint8), cell, 0), cell, 1)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
