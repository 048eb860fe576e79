"""Core Keras against keras-cv 0.9 for the augmentations both have (not a dependency:
`pip install keras-cv==0.9.0` into a scratch environment to run it). Prints JSON:
keras-cv's import time and images per second of RandAugment (per image) and
MixUp (per batch of 128) in tf.data, 2048 random 32x32x3 images."""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

IMAGES = np.random.default_rng(0).integers(0, 256, (2048, 32, 32, 3)).astype("float32")
LABELS = tf.one_hot(np.random.default_rng(1).integers(0, 10, 2048), 10)


def _drain(ds):
    for _ in ds:
        pass


def images_per_second(ds, repeats=3):
    """Best of `repeats` passes over `ds` (after a warm-up), in images per second."""
    _drain(ds.take(2))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        _drain(ds)
        best = min(best, time.perf_counter() - start)
    return len(IMAGES) / best


def per_image(layer):
    return tf.data.Dataset.from_tensor_slices(IMAGES).map(layer, num_parallel_calls=2).batch(128)


def mixup(layer):
    # Both libraries' MixUp take a dict of images and labels per batch.
    ds = tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(128)
    return ds.map(lambda a, b: layer({"images": a, "labels": b}), num_parallel_calls=2)


def main():
    start = time.time()
    import keras_cv

    out = {"keras_cv_import_s": round(time.time() - start, 2)}
    out["RandAugment"] = {
        "core_images_per_s": round(
            images_per_second(per_image(keras.layers.RandAugment(value_range=(0, 255), seed=0)))
        ),
        "keras_cv_images_per_s": round(
            images_per_second(per_image(keras_cv.layers.RandAugment(value_range=(0, 255), seed=0)))
        ),
    }
    out["MixUp"] = {
        "core_images_per_s": round(images_per_second(mixup(keras.layers.MixUp(seed=0)), repeats=1)),
        "keras_cv_images_per_s": round(images_per_second(mixup(keras_cv.layers.MixUp(seed=0)), repeats=1)),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
