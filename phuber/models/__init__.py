"""The networks: LeNet-5 for 28×28 images and CIFAR ResNets, with the state-dict keys of the
earlier reproduction. The ResNets are torchvision's, imported only when one is built
(``phuber.models.resnet``): a LeNet run does not pay for importing torchvision."""

from typing import Any

from torch import nn

from phuber.models.lenet import LeNet

__all__ = ["LeNet", "resnet18", "resnet34", "resnet50"]


def resnet18(**kwargs: Any) -> nn.Module:
    """ResNet-18 (He et al., 2016) for CIFAR images."""
    from phuber.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(**kwargs: Any) -> nn.Module:
    """ResNet-34 (He et al., 2016) for CIFAR images."""
    from phuber.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(**kwargs: Any) -> nn.Module:
    """ResNet-50 (He et al., 2016) for CIFAR images."""
    from phuber.models.resnet import Bottleneck, ResNet

    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)
