"""The common training pipeline, for comparison: one epoch of LeNet on Fashion-MNIST + test.

torchvision data set of PIL images + PIL transforms + DataLoader with workers, fp32, loss.item()
every step, TensorBoard and a checkpoint at the end, as the earlier reproduction trains.
"""

import argparse
import tempfile
import time

import torch
import torchvision
import torchvision.transforms as T
import tqdm
from torch.utils.tensorboard import SummaryWriter

from phuber.losses.paper import PHuberCrossEntropy
from phuber.models import LeNet
from phuber.training.scheduler import ExponentialDecayLR


def train_step(model, optimizer, loss_fn, x, y, device) -> tuple[float, int]:
    """One step the common way: copy the batch, fp32 forward/backward, read loss and hits back."""
    x, y = x.to(device), y.to(device)
    optimizer.zero_grad()
    logits = model(x)
    loss = loss_fn(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).sum().item()  # host syncs every step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="data")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default="fashion_mnist")
    args = parser.parse_args()
    device = torch.device(args.device)
    transform = T.Compose([T.ToTensor(), T.Normalize((0.2860,), (0.3530,))])
    reader = {
        "mnist": torchvision.datasets.MNIST,
        "fashion_mnist": torchvision.datasets.FashionMNIST,
    }
    train = reader[args.dataset](args.root, train=True, transform=transform)
    test = reader[args.dataset](args.root, train=False, transform=transform)
    loader = torch.utils.data.DataLoader(train, 32, shuffle=True, num_workers=args.workers)
    test_loader = torch.utils.data.DataLoader(test, 32, num_workers=args.workers)
    model = LeNet().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    scheduler = ExponentialDecayLR(optimizer, decay_steps=10000, decay_rate=0.1)
    loss_fn = PHuberCrossEntropy(tau=10)
    out = tempfile.mkdtemp()
    writer = SummaryWriter(out)
    start = time.perf_counter()
    total, correct, loss_sum = 0, 0, 0.0
    model.train()
    for x, y in tqdm.tqdm(loader, disable=True):
        loss, hits = train_step(model, optimizer, loss_fn, x, y, device)
        scheduler.step()
        loss_sum += loss * len(y)
        correct += hits
        total += len(y)
    writer.add_scalar("train loss (epoch)", loss_sum / total, 0)
    torch.save({"epoch": 1, "model": model.state_dict()}, f"{out}/most_recent.pt")
    model.eval()
    test_correct = 0
    with torch.no_grad():
        for x, y in test_loader:
            test_correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    torch.save({"epoch": 1, "model": model.state_dict()}, f"{out}/final_model.pt")
    writer.close()
    print(f"train acc {correct / total:.4f} | test acc {test_correct / len(test):.4f}")
    print(f"epoch + test {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
