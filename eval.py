"""Evaluate a saved model: python eval.py dataset=... model=... checkpoint=path/to/final_model.pt"""

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from phuber.app.cli import entry_point
from phuber.app.keys import check_group_choices


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> Any:
    return entry_point(_run)(cfg)


def _run(cfg: DictConfig, out_dir: Path) -> Any:
    from phuber.training import evaluation  # torch: once the config has passed its checks

    return evaluation.run(cfg, out_dir)


if __name__ == "__main__":
    check_group_choices(sys.argv[1:])
    main()
