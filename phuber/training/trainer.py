"""Training: config → data, model, loss, optimiser → epochs → logs and checkpoints.

Data stays on the device as uint8 tensors; each epoch is a permutation of indices; metrics are
accumulated in device tensors and read once per epoch, so no step waits on the host.
"""

import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import tqdm
from omegaconf import DictConfig, OmegaConf
from torch import nn

from phuber.core.errors import NonFiniteLoss, PhuberError, Preempted
from phuber.core.identity import RunIdentity
from phuber.datasets.labels import LABELS_FILE
from phuber.datasets.load import Split
from phuber.datasets.transforms import BatchTransform
from phuber.losses.base import StepContext
from phuber.training.build import build_parts
from phuber.training.checkpoint import save_checkpoint
from phuber.training.evaluation import evaluate
from phuber.training.identify import run_identity
from phuber.training.metrics import Sums, batch_counts, epoch_row
from phuber.training.recorder import Recorder
from phuber.training.resume import Progress, RunState
from phuber.training.run_data import load_run_data
from phuber.training.runtime import StopSignals, resolve_seeds, seed_everything, sweep_job

log = logging.getLogger(__name__)


class Trainer:
    """Holds a run's objects and runs its epochs."""

    def __init__(
        self,
        cfg: DictConfig,
        out_dir: Path,
        identity: RunIdentity | None = None,
        resume_from: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """Build the run's objects (validating their values) before reading any data, then the
        data; ``resume_from`` is ``(path, state)`` of a checkpoint already checked to fit."""
        if identity is None:  # built directly (not through run): fix the seeds here
            cfg = resolve_seeds(cfg)
            identity = run_identity(cfg)
        self.cfg, self.out_dir, self.identity = cfg, out_dir, identity
        self.seed = self.identity.seeds["seed"]
        seed_everything(self.seed)
        parts = build_parts(cfg)
        self.device, self.precision = parts.device, parts.precision
        self.model: nn.Module = parts.model
        self.forward = parts.forward
        self.loss_fn: nn.Module = parts.loss_fn  # on the device once the data is loaded
        self.optimizer, self.scheduler = parts.optimizer, parts.scheduler
        self.gradient_step = parts.gradient_step
        self.sched_per_step = cfg.hparams.get("scheduler_interval", "epoch") == "step"
        self.clip_mode = cfg.hparams.get("grad_clip_mode", "global")
        self.loss_context = hasattr(self.loss_fn, "set_context")
        # a non-finite gradient fails the run, but under fp16 scaling (its scaler skips the step)
        self.finite_grads = not self.precision.scaler.is_enabled()
        self.in_sweep = sweep_job() is not None
        self.data = load_run_data(cfg, parts)
        self.train_set, self.val_set, self.test_set = self.data.train, self.data.val, self.data.test
        self.eval_transform = self.data.eval_transform

        # Separate generators for data order (CPU) and augmentation (device): saved and restored
        # with the checkpoint, they make a resumed run draw what an uninterrupted one would.
        self.order_gen = torch.Generator().manual_seed(self.seed)
        self.aug_gen = torch.Generator(self.device).manual_seed(self.seed + 1)
        self.train_transform = BatchTransform(
            parts.info.mean,
            parts.info.std,
            self.device,
            cfg.dataset.train.augment,
            generator=self.aug_gen,
        )
        self.n_noisy = int(self.train_set.is_noisy.sum())
        self.progress = Progress()
        self.state = RunState(
            self.model,
            self.optimizer,
            self.scheduler,
            self.precision.scaler,
            (self.order_gen, self.aug_gen),
            self.progress,
            self.seed,
            self.identity,
            OmegaConf.to_container(cfg, resolve=True),
            self.data.labels_sha256,
            self.loss_fn,
            len(self.train_set),
        )
        if resume_from is not None:
            self.state.restore(*resume_from, self.device)

    # -- checkpoints -------------------------------------------------------------------------

    def save(self, name: str) -> None:
        if self.cfg.save:
            save_checkpoint(self.out_dir / name, self.state.to_checkpoint())

    # -- training ----------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train for ``hparams.epochs`` epochs, then evaluate; return the final metrics."""
        cfg, p = self.cfg, self.progress
        recorder = Recorder(self.out_dir, cfg, self.identity, p.history, cfg.tensorboard)
        self.data.save_labels(self.out_dir / LABELS_FILE)
        recorder.data(*self.data.facts())
        start = time.perf_counter()
        try:
            with StopSignals() as signals:
                while p.epoch < cfg.hparams.epochs:
                    row = self.train_epoch(signals)
                    if self.val_set is not None:
                        row.update(self._scores("val", self.val_set))
                    p.epoch += 1
                    if self.test_set is not None and self._test_due(p.epoch):
                        row.update(self._scores("test", self.test_set))
                    recorder.epoch(row)  # appends to p.history
                    self.save("most_recent.pt")
                    if signals.received is not None and p.epoch < cfg.hparams.epochs:
                        raise self._stopped(signals)
        except BaseException as err:
            try:
                recorder.finish("preempted" if isinstance(err, Preempted) else "failed")
            except PhuberError as also:  # e.g. the disk is still full: report the first error
                log.debug(f"Could not record the outcome: {also}")
            raise
        final: dict[str, Any] = {"train_time_s": time.perf_counter() - start}
        last = p.history[-1] if p.history else {}
        for name, split in (("val", self.val_set), ("test", self.test_set)):
            if split is None:
                continue
            if last.get("epoch") == p.epoch - 1 and f"{name}_acc" in last:  # scored already
                final.update({k: v for k, v in last.items() if k.startswith(f"{name}_")})
            else:
                final.update(self._scores(name, split))
        self.save("final_model.pt")
        recorder.finish("completed", final)
        return final

    def _test_due(self, epochs_done: int) -> bool:
        """Whether to score the test set after ``epochs_done`` epochs: every ``eval_every``
        epochs, and always after the last."""
        every = eval_interval(self.cfg.get("eval_every"), len(self.test_set))
        return epochs_done % every == 0 or epochs_done == self.cfg.hparams.epochs

    def _scores(self, name: str, split: Split) -> dict[str, float]:
        scores = evaluate(
            self.forward,
            split,
            self.eval_transform,
            self.loss_fn,
            self.cfg.eval_batch_size,
            self.precision,
        )
        return {f"{name}_{k}": v for k, v in scores.items()}

    def train_epoch(self, signals: StopSignals) -> dict[str, Any]:
        """One pass over the training set (or the rest of it, when resuming mid-epoch)."""
        cfg, p, data = self.cfg, self.progress, self.train_set
        batch_size = cfg.hparams.batch_size
        steps = math.ceil(len(data) / batch_size)
        if p.step_in_epoch == 0:
            p.perm = torch.randperm(len(data), generator=self.order_gen)
            p.sums = None
        perm = p.perm.to(self.device)
        sums = Sums(self.device, p.sums)
        first_bad = torch.full((), -1, device=self.device)
        step_counter = torch.full((), p.global_step, device=self.device)
        epoch_start = time.perf_counter()
        self.model.train()
        quiet = not sys.stderr.isatty() or self.in_sweep  # a sweep shows one line of its own
        bar = tqdm.trange(
            p.step_in_epoch, steps, desc=f"Epoch {p.epoch}", leave=False, disable=quiet
        )
        for step in bar:
            index = perm[step * batch_size : (step + 1) * batch_size]
            images, labels = self.train_transform(data.images[index]), data.labels[index]
            if self.loss_context:  # the lr of this very step (OGC), the epoch (NLS's warm-up)
                lr = self.optimizer.param_groups[0]["lr"]
                self.loss_fn.set_context(StepContext(lr, p.epoch, p.global_step))
            logits, loss, grad_norm, n_clipped = self.gradient_step(images, labels)
            self.precision.scaler.step(self.optimizer)
            self.precision.scaler.update()
            if self.sched_per_step:
                self.scheduler.step()
            loss = loss.detach()
            counts = batch_counts(
                logits.detach(),
                labels,
                data.clean_labels[index],
                data.is_noisy[index],
                self.loss_fn,
            )
            sums.add(
                loss=loss.double() * labels.shape[0],
                grad_norm=grad_norm,
                grad_clipped=n_clipped,
                **counts,
            )
            bad = ~loss.isfinite() | (~grad_norm.isfinite() if self.finite_grads else False)
            first_bad = torch.where(bad & (first_bad < 0), step_counter, first_bad)
            step_counter += 1
            p.global_step += 1
            p.step_in_epoch = step + 1
            if signals.received is not None and p.step_in_epoch < steps:
                check_finite(first_bad, p.epoch, self.out_dir, self.identity)
                p.sums = sums.values
                self.save("most_recent.pt")
                raise self._stopped(signals)
        bar.close()
        check_finite(first_bad, p.epoch, self.out_dir, self.identity)
        lr = self.optimizer.param_groups[0]["lr"]
        if not self.sched_per_step:
            self.scheduler.step()
        p.step_in_epoch, p.perm, p.sums = 0, None, None
        row = epoch_row(sums.read(), len(data), self.n_noisy, steps, self.loss_fn, self.clip_mode)
        return {
            "epoch": p.epoch,
            **row,
            "lr": lr,
            "epoch_time_s": time.perf_counter() - epoch_start,
        }

    def _stopped(self, signals: StopSignals) -> Preempted:
        p, path = self.progress, self.out_dir / "most_recent.pt"
        return Preempted.saved(signals, p.epoch, p.step_in_epoch, path if self.cfg.save else None)


def check_finite(first_bad: torch.Tensor, epoch: int, out_dir: Path, identity: RunIdentity) -> None:
    """Stop the run if a step of this epoch had a non-finite loss or gradient (one host read)."""
    if (step := int(first_bad)) >= 0:
        raise NonFiniteLoss.at(epoch, step, out_dir / "most_recent.pt", identity.suspects())


def eval_interval(eval_every: int | None, test_size: int) -> int:
    """Epochs between test evaluations: ``eval_every``, or by default every epoch for test sets
    of up to 10,000 images (cheap beside an epoch of training) and every 10 epochs above."""
    return eval_every or (1 if test_size <= 10_000 else 10)
