import pytest
import torch

from phuber.models import LeNet, resnet18, resnet34, resnet50


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_lenet_shape_keys_and_size():
    model = LeNet(num_classes=10)
    assert n_params(model) == 61706
    assert list(model.state_dict()) == [
        f"{layer}.{kind}"
        for layer in ("conv1", "conv2", "fc1", "fc2", "fc3")
        for kind in ("weight", "bias")
    ]
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_lenet_init_is_truncated_normal_sigma_0_1():
    torch.manual_seed(0)
    weights = torch.cat([LeNet().fc1.weight.flatten(), LeNet().fc2.weight.flatten()]).detach()
    assert weights.abs().max() <= 0.2
    # N(0, 0.1²) truncated at ±2σ has std 0.088; a uniform on ±0.2 would have 0.115.
    assert weights.std().item() == pytest.approx(0.088, abs=0.003)
    assert all((m.bias == 0).all() for m in (LeNet().conv1, LeNet().fc3))


@pytest.mark.parametrize(
    "make,params", [(resnet50, 23_520_842), (resnet18, 11_173_962), (resnet34, 21_282_122)]
)
def test_cifar_resnets(make, params):
    model = make(num_classes=10)
    assert n_params(model) == params
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert "layer4.1.conv2.weight" in model.state_dict() and "fc.weight" in model.state_dict()
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_num_classes_and_channels():
    model = resnet18(num_classes=100, in_channels=1).eval()
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 100)
