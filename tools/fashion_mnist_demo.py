"""Trains ResNet-8 with motivated ResNet-14 on real Fashion-MNIST (offline).

    python tools/fashion_mnist_demo.py --epochs=3 --train_size=10000

Reads Debian's IDX files (apt-get install dataset-fashion-mnist), trains one
MotivatedModel with plain `fit`, and prints both models' test accuracy and the
motivated share of the steps (and its noise level 1/(k+1)!) as JSON.
"""

import argparse
import json
import time

import keras

import keras_motivation as km
from keras_motivation import data
from keras_motivation import summary
from keras_motivation.engine import switching


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data_dir", default=None, help="IDX directory (default: $FASHION_MNIST_DIR, Debian's, the Keras cache)."
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train_size", type=int, default=10000)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    keras.utils.set_random_seed(args.seed)
    try:
        (x, y), (xt, yt) = data.load_fashion_mnist_idx(args.data_dir)
    except FileNotFoundError as err:
        raise SystemExit(f"error: {err}") from None
    x, y, xt = x[: args.train_size] / 255.0, y[: args.train_size], xt / 255.0

    base = km.models.resnet_cifar(8, input_shape=(28, 28, 1), width=16)
    motivated = km.models.resnet_cifar(14, input_shape=(28, 28, 1), width=16)
    model = km.MotivatedModel(base, motivated, "resnet_depth", km.conditions.ConsecutiveDecrease(args.k))
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    start = time.time()
    hist = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=2, validation_data=(xt, yt))
    result = {
        "epochs": args.epochs,
        "train_size": len(x),
        "k": args.k,
        "base_test_accuracy": hist.history["val_accuracy"][-1],
        "motivated_test_accuracy": hist.history["val_motivated_accuracy"][-1],
        "motivated_share": switching.share_of_steps(model.counters()),
        "noise_motivated_share": summary.noise_motivated_share(args.k),
        "wall_clock_s": round(time.time() - start, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
