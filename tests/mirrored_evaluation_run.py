"""One-pass evaluation and the family's recomputation of BatchNorm statistics under MirroredStrategy on 2 logical
CPU devices, against a pass per rung.

Executed in a subprocess by test_evaluation.py: the logical devices must be configured before TensorFlow
initialises. Prints one JSON line.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from testing_utils import random_data  # noqa: E402
from testing_utils import tiny_pair  # noqa: E402

import keras_motivation as km  # noqa: E402
from keras_motivation import batch_norm  # noqa: E402
from keras_motivation.engine import evaluation  # noqa: E402


def statistics(model):
    return np.concatenate([v.numpy().ravel() for m in model.rungs for v in batch_norm.moving_statistics(m)]).tolist()


def main():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x, y = random_data(128)
    batches = tf.data.Dataset.from_tensor_slices(x).batch(16)
    with strategy.scope():
        base, motivated = tiny_pair()
        model = km.MotivatedModel(base, motivated, "resnet_depth", km.conditions.Growth(epochs=0.5), joint=True)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    model.recalibrate_statistics(batches)
    family = statistics(model)
    with strategy.scope():
        for m in model.rungs:
            batch_norm.recalibrate(m, batches, model.recalibration_batches)
    per_rung = statistics(model)
    model.recalibrate_statistics(batches)
    sharing = sorted(evaluation.sharing_rungs(model))
    one = model.evaluate(x[:64], y[:64], batch_size=16, verbose=0, return_dict=True)
    evaluation.sharing_rungs = lambda model: frozenset()
    apart = model.evaluate(x[:64], y[:64], batch_size=16, verbose=0, return_dict=True)
    print(
        json.dumps(
            {
                "replicas": strategy.num_replicas_in_sync,
                "sharing": sharing,
                "one_pass": {k: float(v) for k, v in one.items()},
                "apart": {k: float(v) for k, v in apart.items()},
                "family_statistics": family,
                "per_rung_statistics": per_rung,
            }
        )
    )


if __name__ == "__main__":
    main()
