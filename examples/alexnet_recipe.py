"""AlexNet's training recipe on a small data set (lecture 003).

Krizhevsky et al. 2012: SGD with momentum 0.9, learning rate 1e-2, weight decay 5e-4, the
learning rate divided by 10 when the validation accuracy stops improving, dropout 0.5 in the
dense layers, data augmentation (here random shifts of up to 2 pixels), ReLU and local response
normalisation. Applied to a tiny AlexNet-style network on a slice of the bundled MNIST sample.

    python examples/alexnet_recipe.py [--epochs 8] [--limit 2000]
"""

import argparse

import numpy as np

from striate import nn, optim
from striate.data import DataLoader, load_sample
from striate.data.transforms import Compose, Normalize, RandomShift, ToFloat
from striate.train import fit


def tiny_alexnet(num_classes: int = 10) -> nn.Sequential:
    """AlexNet's shape in miniature: conv-ReLU-LRN-pool twice, a third conv, two dense layers
    with dropout."""
    return nn.Sequential(
        nn.Conv2D(16, 5, padding="same", activation="relu"), nn.LocalResponseNorm(5),
        nn.MaxPool2D(3, strides=2),  # overlapping pooling, as in AlexNet
        nn.Conv2D(32, 3, padding="same", activation="relu"), nn.LocalResponseNorm(5),
        nn.MaxPool2D(3, strides=2),
        nn.Conv2D(32, 3, padding="same", activation="relu"),
        nn.Flatten(), nn.Dropout(0.5), nn.Dense(64, activation="relu"), nn.Dropout(0.5),
        nn.Dense(num_classes),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs (default 8)")
    parser.add_argument("--limit", type=int, default=2000, help="training digits (default 2000)")
    parser.add_argument("--quick", action="store_true", help="1 epoch on 300 digits")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    epochs, limit = (1, 300) if args.quick else (args.epochs, args.limit)

    nn.init.set_seed(args.seed)
    (x, y), (tx, ty) = load_sample("train"), load_sample("test")
    normalize = [ToFloat(), Normalize(0.1307, 0.3081)]
    augment = Compose([RandomShift(2), *normalize])  # a new shift every epoch
    train = DataLoader(x[:limit], y[:limit].astype(np.int64), batch_size=64, shuffle=True,
                       seed=args.seed, transform=augment)
    val = DataLoader(tx, ty.astype(np.int64), batch_size=500, transform=Compose(normalize))

    model = tiny_alexnet().build((28, 28, 1))
    sgd = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4)
    plateau = optim.ReduceLROnPlateau(sgd, mode="max", factor=0.1, patience=1)
    history = fit(model, sgd, train, val, epochs=epochs, scheduler=plateau, progress=False)
    print(f"tiny AlexNet: {model.num_parameters():,} parameters, {limit} training digits")
    for e in range(epochs):
        print(f"epoch {e + 1}: lr {history['lr'][e]:.0e}  train loss "
              f"{history['train/loss'][e]:.3f}  val accuracy {history['val/accuracy'][e]:.2%}")


if __name__ == "__main__":
    main()
