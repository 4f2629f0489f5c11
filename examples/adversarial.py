"""Fooling a network (lecture 000): adversarial examples and images grown from noise.

Trains LeNet-5 briefly on the bundled MNIST sample, then attacks it: the fast gradient sign
method (FGSM) and projected gradient descent (PGD) change each pixel by at most eps and the
accuracy collapses; gradient ascent from noise grows images the network calls a digit with
more than 99% confidence (Nguyen et al. 2015). Writes attack.png and fooling.png to --out.

    python examples/adversarial.py [--epochs 3] [--out adversarial]
"""

import argparse
from pathlib import Path

import numpy as np

from striate import models, nn, optim
from striate.data import DataLoader, load_sample
from striate.data.transforms import ToFloat
from striate.train import fit
from striate.viz import attack_report, fooling_images


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    parser.add_argument("--test", type=int, default=500, help="test digits attacked (default 500)")
    parser.add_argument("--out", default="adversarial", help="folder for the PNGs")
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch on 500 digits, 50 attacked, 3 fooling images")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    limit, epochs, count, classes, steps = ((500, 1, 50, 3, 100) if args.quick
                                            else (None, args.epochs, args.test, 10, 500))

    nn.init.set_seed(args.seed)
    (x, y), (tx, ty) = load_sample("train"), load_sample("test")
    # Pixels in [0, 1] straight into the model, so that eps is measured on real pixels.
    train = DataLoader(x[:limit], y[:limit].astype(np.int64), batch_size=64, shuffle=True,
                       seed=args.seed, transform=ToFloat())
    model = models.create("lenet5_modern").build((28, 28, 1))
    fit(model, optim.Adam(model.parameters(), lr=2e-3), train, epochs=epochs, progress=False)

    out = Path(args.out)
    images, labels = ToFloat()(tx[:count]), ty[:count].astype(np.int64)
    for eps in (0.05, 0.1, 0.2):
        print(attack_report(model, images, labels, eps))
    report = attack_report(model, images, labels, 0.1, method="pgd", steps=10,
                           path=out / "attack.png")
    print(report)
    fakes, confidence = fooling_images(model, range(classes), (28, 28, 1), steps=steps,
                                       seed=args.seed, path=out / "fooling.png")
    print("fooling images from noise, confidence per class: "
          + " ".join(f"{c}:{p:.1%}" for c, p in enumerate(confidence)))
    print(f"wrote {out / 'attack.png'} and {out / 'fooling.png'}")


if __name__ == "__main__":
    main()
