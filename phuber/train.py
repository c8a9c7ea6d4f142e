"""Training: config → data, model, loss, optimiser → epochs → logs and checkpoints.

Data stays on the device as uint8 tensors; each epoch is a permutation of indices; metrics are
accumulated in device tensors and read once per epoch, so no step waits on the host.
"""

import hashlib
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import tqdm
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import nn

from phuber.baselines import attach_transition
from phuber.build import build_parts, loss_settings, probe_loss
from phuber.checkpoint import save_checkpoint
from phuber.config import validate
from phuber.dataset import Split, load_data
from phuber.errors import NonFiniteLoss, PhuberError, Preempted
from phuber.estimate import estimate, forward_to_estimate, source_settings
from phuber.evaluate import evaluate
from phuber.identity import RunIdentity, key
from phuber.labels import LABELS_FILE, labels_sha256, save_labels, sha256
from phuber.metrics import Sums, batch_counts, epoch_row
from phuber.noise import realized_transition
from phuber.recorder import Recorder
from phuber.resume import Progress, RunState, resume_state
from phuber.rundir import RunDir
from phuber.runtime import StopSignals, resolve_seeds, seed_everything
from phuber.transform import BatchTransform

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
        self.cfg = cfg
        self.out_dir = out_dir
        self.identity = identity
        self.seed = self.identity.seeds["seed"]
        seed_everything(self.seed)
        parts = build_parts(cfg)
        info = parts.info
        self.device, self.precision = parts.device, parts.precision
        self.model: nn.Module = parts.model
        self.forward = parts.forward
        self.loss_fn: nn.Module = parts.loss_fn  # on the device once the data is loaded
        self.optimizer, self.scheduler = parts.optimizer, parts.scheduler
        self.gradient_step = parts.gradient_step
        self.parts_noise = parts.noise  # the noise model's T, where it is known before the data
        self.sched_per_step = cfg.hparams.get("scheduler_interval", "epoch") == "step"
        self.clip_mode = cfg.hparams.get("grad_clip_mode", "global")
        self.data = load_data(cfg.dataset)
        k = cfg.dataset.num_classes
        self.labels_sha256 = labels_sha256(*self.data.labels, k)
        self.train_set = self.data.train.to(self.device)
        self.val_set = self.data.val.to(self.device) if self.data.val is not None else None
        self.test_set = self.data.test.to(self.device) if self.data.test is not None else None
        self.eval_transform = BatchTransform(info.mean, info.std, self.device)
        self.estimate = None
        if (forward := forward_to_estimate(self.loss_fn)) is not None:
            with torch.random.fork_rng(devices=[]):  # the source model's init draws nothing here
                self.estimate = estimate(
                    forward,
                    self.train_set.images,
                    self.eval_transform,
                    self.labels_sha256,
                    cfg.eval_batch_size,
                    info,
                )
        if attach_transition(self.loss_fn, self.data.transition) or self.estimate is not None:
            probe_loss(self.loss_fn, k, loss_settings(cfg.loss, None))
        self.loss_fn.to(self.device)

        # Separate generators for data order (CPU) and augmentation (device): saved and restored
        # with the checkpoint, they make a resumed run draw what an uninterrupted one would.
        self.order_gen = torch.Generator().manual_seed(self.seed)
        self.aug_gen = torch.Generator(self.device).manual_seed(self.seed + 1)
        self.train_transform = BatchTransform(
            info.mean, info.std, self.device, cfg.dataset.train.augment, generator=self.aug_gen
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
            self.labels_sha256,
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
        k = cfg.dataset.num_classes
        save_labels(self.out_dir / LABELS_FILE, *self.data.labels, k)
        # from the host copy of the training split
        realized = realized_transition(
            self.data.train.clean_labels.numpy(), self.data.train.labels.numpy(), k
        )
        estimated = self.estimate.record(self.parts_noise, realized) if self.estimate else {}
        recorder.data(
            {
                "train_size": len(self.train_set),
                "val_size": len(self.val_set) if self.val_set is not None else 0,
                "test_size": len(self.test_set) if self.test_set is not None else 0,
                "corrupt_prob": cfg.dataset.train.corrupt_prob,
                "realized_noise_rate": self.train_set.noise_rate,
                "num_noisy": self.n_noisy,
                "noisy_labels_sha256": self.labels_sha256,
                **estimated,
            },
            realized,
        )
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
        bar = tqdm.trange(
            p.step_in_epoch,
            steps,
            desc=f"Epoch {p.epoch}",
            leave=False,
            disable=not sys.stderr.isatty(),
        )
        for step in bar:
            index = perm[step * batch_size : (step + 1) * batch_size]
            images, labels = self.train_transform(data.images[index]), data.labels[index]
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
            first_bad = torch.where(~loss.isfinite() & (first_bad < 0), step_counter, first_bad)
            step_counter += 1
            p.global_step += 1
            p.step_in_epoch = step + 1
            if signals.received is not None and p.step_in_epoch < steps:
                self._check_finite(first_bad)
                p.sums = sums.values
                self.save("most_recent.pt")
                raise self._stopped(signals)
        bar.close()
        self._check_finite(first_bad)
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

    def _check_finite(self, first_bad: torch.Tensor) -> None:
        if (step := int(first_bad)) >= 0:
            checkpoint = self.out_dir / "most_recent.pt"
            raise NonFiniteLoss.at(self.progress.epoch, step, checkpoint, self.identity.suspects())

    def _stopped(self, signals: StopSignals) -> Preempted:
        p, path = self.progress, self.out_dir / "most_recent.pt"
        return Preempted.saved(signals, p.epoch, p.step_in_epoch, path if self.cfg.save else None)


def eval_interval(eval_every: int | None, test_size: int) -> int:
    """Epochs between test evaluations: ``eval_every``, or by default every epoch for test sets
    of up to 10,000 images (cheap beside an epoch of training) and every 10 epochs above."""
    return eval_every or (1 if test_size <= 10_000 else 10)


def run_identity(cfg: DictConfig, seed: Any = "config") -> RunIdentity:
    """The identity of the run ``cfg`` describes, with its seeds (``seed``: the config's unless
    given). A setting that names a file is identified by what the file holds: a label file by
    its SHA-256, the checkpoint a forward correction estimates T from by its run's settings (so
    that forward runs estimated from replicates of one run are replicates too)."""
    loss_cls = get_class(cfg.loss._target_)
    loss = getattr(loss_cls, "name", loss_cls.__name__)
    seed = cfg.seed if seed == "config" else seed
    by_content = {}
    if (label_file := OmegaConf.select(cfg, "dataset.train.label_file")) is not None:
        by_content["dataset.train.label_file"] = f"sha256:{sha256(label_file)}"
    if (source := OmegaConf.select(cfg, "loss.estimate_from")) is not None:
        digest = hashlib.sha256(key(source_settings(source)).encode()).hexdigest()
        by_content["loss.estimate_from"] = f"run:{digest[:16]}"
    config = OmegaConf.to_container(cfg, resolve=True)
    return RunIdentity.from_config(config, seed, loss, by_content)


def saved_seeds(state: dict[str, Any] | None) -> dict[str, Any]:
    """The seeds a checkpoint's run used (an older checkpoint recorded only ``seed``)."""
    if state is None:
        return {}
    identity = state.get("identity")
    seeds = identity.get("seeds") if isinstance(identity, dict) else None
    return dict(seeds) if isinstance(seeds, dict) else {"seed": state.get("seed")}


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Train as ``cfg`` says, writing logs and checkpoints into ``out_dir``.

    A completed run of the same settings in ``out_dir`` is not trained again (its final metrics
    are returned); an unfinished one is resumed; one with other settings is refused. A null seed
    matches any seed here, takes the checkpoint's when resuming, and is drawn otherwise.
    """
    validate(cfg)
    requested = run_identity(cfg)  # null seeds: any matches
    with RunDir(out_dir) as run_dir:
        run_dir.refuse_unexplained()
        done = run_dir.completed(requested)
        if done is not None:
            acc = done.get("test_acc")
            acc = f"test accuracy {100 * acc:.2f}%, " if isinstance(acc, int | float) else ""
            log.warning(
                f"Skipped: {out_dir} holds this run, completed ({acc}result in "
                f"{out_dir / 'metrics.json'}); to train again, choose another hydra.run.dir"
            )
            return done
        path = cfg.checkpoint or run_dir.unfinished_checkpoint()
        state = resume_state(str(path), requested) if path else None
        cfg = resolve_seeds(cfg, saved_seeds(state))
        trainer = Trainer(cfg, out_dir, run_identity(cfg), (str(path), state) if state else None)
        final = trainer.fit()
    if "test_acc" in final:
        print(f"Test accuracy: {100 * final['test_acc']:.2f}%")
    return final
