"""Train a classifier under label noise: python train.py [dataset=...] [loss=...] [key=value ...]"""

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from phuber.app.cli import entry_point
from phuber.app.keys import check_group_choices


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> Any:
    return entry_point(_run, check_first=True)(cfg)


def _run(cfg: DictConfig, out_dir: Path) -> Any:
    from phuber.training import run  # torch: imported once the config has passed its checks

    return run.run(cfg, out_dir)


if __name__ == "__main__":
    check_group_choices(sys.argv[1:])
    main()
