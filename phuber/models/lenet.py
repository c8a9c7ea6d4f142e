"""LeNet-5, with the state-dict keys of the earlier reproduction."""

import torch
from torch import nn


class LeNet(nn.Module):
    """LeNet-5 (LeCun et al., 1998) for 28×28 images, as in the paper's MNIST experiments.

    conv 1→6 (5×5, pad 2) → avg-pool → conv 6→16 (5×5) → avg-pool → fc 400→120→84→K, ReLU.

    Weights are drawn from a normal with σ = 0.1 truncated at ±2σ, biases are zero. The earlier
    reproduction meant this initialisation, but its call drew nearly uniform values in ±0.2.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.relu = nn.ReLU()
        self.avgpool = nn.AvgPool2d(kernel_size=2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.1, a=-0.2, b=0.2)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.relu(self.conv1(x)))
        x = self.avgpool(self.relu(self.conv2(x)))
        x = torch.flatten(x, start_dim=1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)
