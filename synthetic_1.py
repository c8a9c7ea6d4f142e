"""Fig. 2a of the paper: python synthetic_1.py [n_repeat=100] [seed=0] [corrupt_prob=0.2] ..."""

from typing import Any

import hydra
from omegaconf import DictConfig

from phuber.app.cli import entry_point
from synthetic import experiments


@hydra.main(version_base="1.3", config_path="conf", config_name="synthetic/long_servedio")
def main(cfg: DictConfig) -> Any:
    return entry_point(experiments.long_servedio)(cfg)


if __name__ == "__main__":
    main()
