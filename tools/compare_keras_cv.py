"""Core Keras against keras-cv 0.9 for the augmentations both have (not a dependency:
`pip install keras-cv==0.9.0` into a scratch environment to run it). Prints JSON:
keras-cv's import time and images per second of RandAugment (per image) and
MixUp (per batch of 128) in tf.data, 2048 random 32x32x3 images."""

import os, time, json
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np, tensorflow as tf, keras
t = time.time(); import keras_cv; t_import = time.time() - t
x = np.random.default_rng(0).integers(0, 256, (2048, 32, 32, 3)).astype("float32")
def bench(layer, per_image):
    ds = tf.data.Dataset.from_tensor_slices(x)
    ds = ds.map(layer, num_parallel_calls=2) if per_image else ds.batch(128).map(layer, num_parallel_calls=2)
    if per_image: ds = ds.batch(128)
    for _ in ds.take(2): pass
    best = 1e9
    for _ in range(3):
        s = time.perf_counter()
        for _ in ds: pass
        best = min(best, time.perf_counter() - s)
    return 2048 / best
out = {"keras_cv_import_s": round(t_import, 2)}
for name, core, kcv in [
    ("RandAugment", keras.layers.RandAugment(value_range=(0, 255), seed=0), keras_cv.layers.RandAugment(value_range=(0, 255), seed=0)),
]:
    out[name] = {"core_images_per_s": round(bench(lambda im: core(im), True)), "keras_cv_images_per_s": round(bench(lambda im: kcv(im), True))}
# MixUp on batches (both take dict of images/labels)
y = tf.one_hot(np.random.default_rng(1).integers(0, 10, 2048), 10)
for lib, layer in (("core", keras.layers.MixUp(seed=0)), ("keras_cv", keras_cv.layers.MixUp(seed=0))):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(128).map(lambda a, b: layer({"images": a, "labels": b}), num_parallel_calls=2)
    for _ in ds.take(1): pass
    s = time.perf_counter()
    for _ in ds: pass
    out.setdefault("MixUp", {})[f"{lib}_images_per_s"] = round(2048 / (time.perf_counter() - s))
print(json.dumps(out))
