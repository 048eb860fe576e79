"""Chooses k by k-fold cross-validation on the training set (the paper's procedure).

    python tools/select_k.py --pair=resnet8:resnet14 --train_size=5000 --ks=2,3,4,5 \
        --folds=5 --epochs=2 --out=select_k.json

Reads real Fashion-MNIST from Debian's IDX files (or --data_dir); prints the
per-fold table as Markdown and the chosen k; writes JSON with --out.
"""

import argparse
import json

import numpy as np

from keras_motivation import data
from keras_motivation import k_selection
from keras_motivation import models


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", default="resnet8:resnet14")
    p.add_argument("--model_kwargs", default="width=8", help="key=value,... for the models")
    p.add_argument("--data_dir", default=None, help="Fashion-MNIST IDX directory")
    p.add_argument("--train_size", type=int, default=5000)
    p.add_argument("--ks", default="2,3,4,5")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from keras_motivation.config import parse_kwargs

    (x, y), _ = data.load_fashion_mnist_idx(args.data_dir)
    x = (x[: args.train_size] / 255.0).astype(np.float32)
    y = y[: args.train_size]
    kwargs = parse_kwargs(args.model_kwargs)
    best, rows = k_selection.select_k(
        lambda: models.get_pair(args.pair, num_classes=10, input_shape=x.shape[1:], **kwargs),
        x,
        y,
        ks=[int(k) for k in args.ks.split(",")],
        folds=args.folds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    print(k_selection.markdown(rows, best))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"best_k": best, "rows": rows, "args": vars(args)}, f, indent=2)
    return best, rows


if __name__ == "__main__":
    main()
