"""torchvision's ResNets adapted to 32×32 images (imported only when a ResNet is built)."""

from typing import Any

import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]


class ResNet(torchvision.models.ResNet):
    """torchvision's ResNet for 32×32 images: a 3×3 stride-1 first convolution and no max-pool,
    so the feature maps are not shrunk 4× before the first block (as in the CIFAR literature)."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: list[int],
        num_classes: int = 10,
        in_channels: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(block, layers, num_classes=num_classes, **kwargs)
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.maxpool = nn.Identity()
