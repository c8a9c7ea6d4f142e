"""A toy loss, data set reader and model, added the way README.md's "Extending phuber" says."""

from pathlib import Path

import torch
from torch import nn

from phuber.losses import TargetProbLoss


class SquaredLoss(TargetProbLoss):
    """ℓ(p) = scale · (1 − p)²: a bounded loss with one parameter."""

    name = "squared"

    def __init__(self, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.scale = scale

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        return self.scale * (1 - log_p.exp()) ** 2


def read_toy(
    root: Path, train: bool, download: bool, num_classes: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of 28×28 images: dark (0) and bright (1), 200 train or 100 test images."""
    g = torch.Generator().manual_seed(int(train))
    labels = torch.randint(0, 2, (200 if train else 100,), generator=g)
    base = torch.where(labels[:, None, None, None] == 1, 180, 60)
    noise = torch.randint(0, 60, (len(labels), 1, 28, 28), generator=g)
    return (base + noise).to(torch.uint8), labels


class TinyNet(nn.Module):
    """A one-layer network on flattened pixels."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels * 28 * 28, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))
