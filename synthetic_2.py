"""Fig. 2b of the paper: python synthetic_2.py [seed=0] [phuber_tau=1.1] [huber_tau=0.1] ..."""

from typing import Any

import hydra
from omegaconf import DictConfig

from phuber.app.cli import entry_point
from synthetic import experiments


@hydra.main(version_base="1.3", config_path="conf", config_name="synthetic/outliers")
def main(cfg: DictConfig) -> Any:
    return entry_point(experiments.outliers)(cfg)


if __name__ == "__main__":
    main()
