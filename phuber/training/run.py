"""``train.py``'s work as one library call: ``run(cfg, out_dir)`` trains as the config says, or
skips a run its folder holds completed, or resumes one it holds unfinished; ``run_identity``
derives the run's identity once."""

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from phuber.core.rundir import RunDir
from phuber.training.config import validate
from phuber.training.identify import run_identity, saved_seeds
from phuber.training.resume import resume_state
from phuber.training.runtime import resolve_seeds
from phuber.training.trainer import Trainer

log = logging.getLogger(__name__)


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
