"""Train a classifier under label noise: python train.py [dataset=...] [loss=...] [key=value ...]"""

import hydra
from omegaconf import DictConfig

from phuber import train
from phuber.cli import entry_point


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    entry_point(train.run)(cfg)


if __name__ == "__main__":
    main()
