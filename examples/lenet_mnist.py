"""LeNet-5 on MNIST: the bundled 5,000-digit sample, trained with `striate.train.fit`.

The modern LeNet-5 (ReLU, max pooling, 28x28 input) reaches about 97% on the sample's test
part in a few epochs; `striate train lenet5_modern` is the command-line way to do the same.

    python examples/lenet_mnist.py [--epochs 5] [--save lenet.safetensors]
"""

import argparse

import numpy as np

import striate
from striate import models, optim
from striate.data import DataLoader, load_sample
from striate.data.transforms import Compose, Normalize, ToFloat
from striate.train import evaluate, fit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs (default 5)")
    parser.add_argument("--limit", type=int, default=None, help="train on N digits only")
    parser.add_argument("--quick", action="store_true", help="1 epoch on 500 digits")
    parser.add_argument("--save", default=None, help="write a checkpoint here")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    epochs, limit = (1, 500) if args.quick else (args.epochs, args.limit)

    striate.nn.init.set_seed(args.seed)
    (x, y), (tx, ty) = load_sample("train"), load_sample("test")
    x, y = x[:limit], y[:limit].astype(np.int64)
    pre = Compose([ToFloat(), Normalize(0.1307, 0.3081)])
    train = DataLoader(x, y, batch_size=64, shuffle=True, seed=args.seed, transform=pre)
    test = DataLoader(tx, ty.astype(np.int64), batch_size=500, transform=pre)

    model = models.create("lenet5_modern").build((28, 28, 1))
    print(f"LeNet-5 (modern): {model.num_parameters():,} parameters; {len(x)} training digits")
    fit(model, optim.Adam(model.parameters(), lr=2e-3), train, test, epochs=epochs,
        progress=False)
    result = evaluate(model, test)
    print(f"test accuracy after {epochs} epoch(s): {result['accuracy']:.2%} "
          f"(top-5 error {result['top5_error']:.2%})")
    if args.save:
        striate.train.save(model, args.save, input_shape=(28, 28, 1),
                           preprocessing=pre.config(), dataset={"name": "bundled"})
        print(f"wrote {args.save}")


if __name__ == "__main__":
    main()
