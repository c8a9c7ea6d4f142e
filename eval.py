"""Evaluate a saved model: python eval.py dataset=... model=... checkpoint=path/to/final_model.pt"""

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from phuber.app.cli import entry_point


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> Any:
    return entry_point(_run)(cfg)


def _run(cfg: DictConfig, out_dir: Path) -> Any:
    from phuber.training import evaluation  # torch: once the config has passed its checks

    return evaluation.run(cfg, out_dir)


if __name__ == "__main__":
    main()
