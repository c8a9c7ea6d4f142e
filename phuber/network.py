"""The networks under the names configs and checkpoints use (``phuber.network.LeNet``, the
earlier reproduction's too); they live in ``phuber.models``."""

from phuber.models import LeNet, resnet18, resnet34, resnet50

__all__ = ["LeNet", "resnet18", "resnet34", "resnet50"]
