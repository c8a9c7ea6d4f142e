"""Batched input pipeline on the training device: uint8 images in, normalised floats out."""

import torch
from torch.nn import functional as F


class BatchTransform:
    """Normalise a uint8 batch ``(N, C, H, W)`` with per-channel ``mean``/``std`` (on the [0, 1]
    scale, as torchvision's ``ToTensor`` + ``Normalize``), after an optional random crop with
    zero padding and a horizontal flip (torchvision's ``RandomCrop(size, padding)`` and
    ``RandomHorizontalFlip``), drawn for the whole batch at once from ``generator``."""

    def __init__(
        self,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        device: torch.device,
        augment: bool = False,
        padding: int = 4,
        generator: torch.Generator | None = None,
    ) -> None:
        std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -torch.tensor(mean, device=device).view(1, -1, 1, 1) / std_t
        self.augment = augment
        self.padding = padding
        self.generator = generator

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.augment:
            images = random_crop_flip(images, self.padding, self.generator)
        return torch.addcmul(self.shift, images.float(), self.scale)


def random_crop_flip(
    images: torch.Tensor, padding: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Crop each image at a random offset of its zero-padded copy and flip half of them
    horizontally: one gather for the whole batch."""
    n, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, n, 1), device=device, generator=generator)
    flip = torch.rand(n, 1, device=device, generator=generator) < 0.5
    rows = offsets[0] + torch.arange(h, device=device)
    cols = offsets[1] + torch.arange(w, device=device)
    cols = torch.where(flip, cols.flip(1), cols)
    batch = torch.arange(n, device=device).view(n, 1, 1, 1)
    chan = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[batch, chan, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
