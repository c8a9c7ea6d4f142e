"""The identity of the run a training config describes, derived once (``phuber.core.identity``),
with what stands in it for settings that name a file; and the seeds a checkpoint's run used."""

import hashlib
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from phuber.core.identity import RunIdentity, key
from phuber.datasets.labels import sha256
from phuber.training.estimate import source_settings


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
        by_content["dataset.train.label_file"] = (
            f"sha256:{sha256(label_file, 'dataset.train.label_file')}"
        )
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
