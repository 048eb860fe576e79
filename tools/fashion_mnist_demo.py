"""Trains ResNet-8 with motivated ResNet-14 on real Fashion-MNIST (offline).

    python tools/fashion_mnist_demo.py --epochs=3 --train_size=10000

Reads Debian's IDX files (apt-get install dataset-fashion-mnist), trains one
MotivatedModel with plain `fit`, and prints both models' test accuracy and the
motivated share of steps as JSON.
"""

import argparse
import gzip
import json
import os
import time

import keras
import numpy as np

import keras_motivation as km


def load(directory, name, offset):
    with gzip.open(os.path.join(directory, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train_size", type=int, default=10000)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not os.path.isdir(args.data_dir):
        raise SystemExit(f"No Fashion-MNIST files in {args.data_dir}: apt-get install dataset-fashion-mnist, or pass --data_dir.")
    keras.utils.set_random_seed(args.seed)
    x = load(args.data_dir, "train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)[: args.train_size] / 255.0
    y = load(args.data_dir, "train-labels-idx1-ubyte.gz", 8).astype("int64")[: args.train_size]
    xt = load(args.data_dir, "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1) / 255.0
    yt = load(args.data_dir, "t10k-labels-idx1-ubyte.gz", 8).astype("int64")

    base = km.models.resnet_cifar(8, input_shape=(28, 28, 1), width=16)
    motivated = km.models.resnet_cifar(14, input_shape=(28, 28, 1), width=16)
    model = km.MotivatedModel(base, motivated, "resnet_depth", km.conditions.ConsecutiveDecrease(args.k))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.time()
    hist = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=2, validation_data=(xt, yt))
    result = {
        "epochs": args.epochs,
        "train_size": len(x),
        "k": args.k,
        "base_test_accuracy": hist.history["val_accuracy"][-1],
        "motivated_test_accuracy": hist.history["val_motivated_accuracy"][-1],
        "motivated_share_of_steps": model.counters()["motivated_steps"] / model.counters()["steps"],
        "noise_rate_1_over_k_plus_1_factorial": 1 / float(np.prod(range(1, args.k + 2))),
        "wall_clock_s": round(time.time() - start, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
