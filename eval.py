"""Evaluate a saved model: python eval.py dataset=... model=... checkpoint=path/to/final_model.pt"""

import hydra
from omegaconf import DictConfig

from phuber import evaluate
from phuber.cli import entry_point


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    entry_point(evaluate.run)(cfg)


if __name__ == "__main__":
    main()
