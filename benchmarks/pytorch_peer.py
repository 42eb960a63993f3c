"""The plain-PyTorch peer: the `fast` net and its two-epoch recipe, the ordinary PyTorch way.

The recipe is the one issue 19 measured the `fast` preset against (2 epochs at batch 256,
one view); `fast` itself now trains one epoch at batch 128 and reads with 5 views.

No Keras and no mnist_cnn here: it runs in its own environment (`make .venv-torch`,
PyTorch's CPU build) so that the peer row of `time_to_accuracy.py` measures
PyTorch itself. The recipe is the one a PyTorch user would write for this net:
data as float tensors in memory, shuffled by index each epoch, batch 256, Adam
with betas 0.7/0.9, a one-cycle learning rate rising to 0.01 over the first 20%
of the steps and annealing to ~0. Test accuracy is measured after each epoch,
off the clock, for the report only.

Usage: python benchmarks/pytorch_peer.py MNIST.npz [--seeds 3] [--epochs 2]
Prints one JSON object: {"versions": ..., "runs": [...]} in the shape of
time_to_accuracy.py's runs.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

TARGETS = (0.99, 0.995)


def fast_net() -> nn.Module:
    # models._fast_layers in PyTorch: 215,194 parameters.
    return nn.Sequential(
        nn.Conv2d(1, 24, kernel_size=5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(24, 32, kernel_size=3),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(800, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(images), 1000):
        predicted = model(images[start : start + 1000]).argmax(dim=1)
        correct += int((predicted == labels[start : start + 1000]).sum())
    model.train()
    return correct / len(images)


def run_once(seed: int, epochs: int, batch_size: int, data: dict[str, torch.Tensor]) -> dict:
    torch.manual_seed(seed)
    model = fast_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.7, 0.9))
    steps_per_epoch = -(-len(data["train_images"]) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=0.01,
        total_steps=epochs * steps_per_epoch,
        pct_start=0.2,
        div_factor=10,  # starts at 0.001, as the Keras preset's warm-up does
        final_div_factor=1e4,
        cycle_momentum=False,  # keep Adam's betas fixed, as the preset does
    )
    loss_function = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    points: list[tuple[float, float]] = []
    training_seconds = 0.0
    for _ in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(len(data["train_images"]), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(model(data["train_images"][batch]), data["train_labels"][batch])
            loss.backward()
            optimizer.step()
            schedule.step()
        training_seconds += time.perf_counter() - started
        points.append((training_seconds, accuracy(model, data["test_images"], data["test_labels"])))
    return {
        "preset": "pytorch_peer",
        "seed": seed,
        "epochs": epochs,
        "train_seconds": training_seconds,
        "test_accuracy": points[-1][1],
        "test_accuracy_per_epoch": [value for _, value in points],
        "seconds_per_epoch_end": [seconds for seconds, _ in points],
        "seconds_to": {
            str(target): next((seconds for seconds, value in points if value >= target), None)
            for target in TARGETS
        },
    }


def load(path: str) -> dict[str, torch.Tensor]:
    with np.load(path) as arrays:

        def images(name: str) -> torch.Tensor:
            return torch.from_numpy(arrays[name].astype(np.float32) / 255.0).unsqueeze(1)

        return {
            "train_images": images("x_train"),
            "train_labels": torch.from_numpy(arrays["y_train"].astype(np.int64)),
            "test_images": images("x_test"),
            "test_labels": torch.from_numpy(arrays["y_test"].astype(np.int64)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a Keras-style MNIST .npz")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    arguments = parser.parse_args()
    data = load(arguments.data)
    runs = [
        run_once(seed, arguments.epochs, arguments.batch_size, data)
        for seed in range(arguments.seeds)
    ]
    versions = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    print(json.dumps({"versions": versions, "runs": runs}))


if __name__ == "__main__":
    main()
