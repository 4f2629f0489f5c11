"""Residual learning: a plain deep stack against a residual one of the same depth (lecture 003).

He et al. 2016: adding more plain layers makes a network harder to optimise, while blocks that
learn a residual F(x) and output x + F(x) keep training easy. Both networks below have the same
number of 3x3 convolutions, each followed by batch normalisation as in the paper; the script
prints their training loss over the first steps on the bundled MNIST sample (at depth 20 the
residual stack's loss falls about twice as fast).

    python examples/residual_learning.py [--depth 20] [--steps 60]
"""

import argparse

import numpy as np

from striate import functional as F
from striate import nn, optim
from striate.data import DataLoader, load_sample
from striate.data.transforms import Compose, Normalize, ToFloat


def conv_bn(channels: int) -> list:
    """A 3x3 convolution followed by batch normalisation, as in every layer of He et al."""
    return [nn.Conv2D(channels, 3, padding="same", use_bias=False,
                      kernel_initializer="he_normal"), nn.BatchNorm()]


class ResidualBlock(nn.Module):
    """y = ReLU(x + BN(conv(ReLU(BN(conv(x)))))): two 3x3 convolutions, identity shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        self.residual = nn.Sequential(*conv_bn(channels), nn.ReLU(), *conv_bn(channels))

    def forward(self, x):
        return F.relu(x + self.residual(x))


def network(depth: int, residual: bool, channels: int = 16) -> nn.Sequential:
    """A stem convolution, `depth` 3x3 convolutions (plain, or in residual pairs), global
    average pooling and a dense classifier."""
    if residual:
        body = [ResidualBlock(channels) for _ in range(depth // 2)]
    else:
        body = [layer for _ in range(depth) for layer in (*conv_bn(channels), nn.ReLU())]
    return nn.Sequential(
        nn.Conv2D(channels, 3, strides=2, padding="same", activation="relu"), *body,
        nn.GlobalAveragePooling(), nn.Dense(10),
    )


def train_losses(model, loader, steps: int, lr: float) -> list[float]:
    sgd = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    while len(losses) < steps:
        for x, y in loader:
            sgd.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            sgd.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20, help="3x3 convolutions (default 20)")
    parser.add_argument("--steps", type=int, default=60, help="SGD steps (default 60)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05)")
    parser.add_argument("--quick", action="store_true", help="depth 6, 5 steps")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    depth, steps = (6, 5) if args.quick else (args.depth, args.steps)

    x, y = load_sample("train")
    loader = DataLoader(x, y.astype(np.int64), batch_size=32, shuffle=True, seed=args.seed,
                        transform=Compose([ToFloat(), Normalize(0.1307, 0.3081)]))
    results = {}
    for residual in (False, True):
        nn.init.set_seed(args.seed)
        model = network(depth, residual).build((28, 28, 1))
        results["residual" if residual else "plain"] = train_losses(model, loader, steps,
                                                                    args.lr)
    window = max(1, steps // 5)
    print(f"{depth} convolutions deep, {steps} SGD steps; mean training loss per "
          f"{window} steps:")
    for name, losses in results.items():
        means = [np.mean(losses[i:i + window]) for i in range(0, steps, window)]
        print(f"  {name:>8}: " + "  ".join(f"{m:.3f}" for m in means))


if __name__ == "__main__":
    main()
