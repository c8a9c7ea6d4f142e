"""Train a classifier under label noise: python train.py [dataset=...] [loss=...] [key=value ...]"""

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from phuber.app.cli import entry_point


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> Any:
    return entry_point(_run, check_first=True)(cfg)


def _run(cfg: DictConfig, out_dir: Path) -> Any:
    from phuber.training import run  # torch: imported once the config has passed its checks

    return run.run(cfg, out_dir)


if __name__ == "__main__":
    main()
