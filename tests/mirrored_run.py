"""Runs one tiny motivated training on 2 logical CPU devices and on one device.

Executed in a subprocess by test_mirrored_strategy.py: the logical devices must
be configured before TensorFlow initialises. Prints one JSON line.
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
from testing_utils import BatchRecorder  # noqa: E402
from testing_utils import random_data  # noqa: E402
from testing_utils import tiny_pair  # noqa: E402

import keras_motivation as km  # noqa: E402

EPOCHS, BATCH, LR = 2, 32, 0.005
STEPS_PER_EXECUTION = int(os.environ.get("STEPS_PER_EXECUTION", "1"))
# JOINT=1: the motivated mode's batches are joint steps (both models on one batch).
JOINT = bool(os.environ.get("JOINT"))
# SHARED_FORWARD=0: the joint step runs two forward passes even where the pair shares one.
if JOINT and os.environ.get("SHARED_FORWARD") == "0":
    JOINT = {"shared_forward": False}
# STAGES=3: the three-stage pair instead of the tests' one-stage one.
STAGES = int(os.environ.get("STAGES", "1"))
# FLOATX=float64: models and data in float64, where rounding (which the dual runs of the
# tiny pair amplify in float32, see test_mirrored_strategy.py) is ~1e-15.
FLOATX = os.environ.get("FLOATX", "float32")
# ZEROED=1: a MotivatedModel subclass whose train_step zeroes the images (the override reaches the replicas).
ZEROED = bool(os.environ.get("ZEROED"))
# LADDER=1: a ladder of three one-stage ResNets (8, 14, 20) under the paper's rule with k = 1.
LADDER = bool(os.environ.get("LADDER"))
# LADDER_GROWTH=1: the ladder grows after half an epoch instead (one join point: the train function holds the steps
# of the base and the largest rung only, `Condition.reachable_modes`).
LADDER_GROWTH = bool(os.environ.get("LADDER_GROWTH"))
keras.config.set_floatx(FLOATX)


class Zeroed(km.MotivatedModel):
    def train_step(self, data):
        # Cross-replica context: the batch is transformed on each replica.
        return super().train_step(self.distribute_strategy.run(lambda x, y: (tf.zeros_like(x), y), args=data))


class RungLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rungs = []

    def on_train_batch_end(self, batch, logs=None):
        self.rungs.append(int(round(float(logs["motivated"]))))


def dataset(x, y):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH, drop_remainder=True)


def motivated_run(strategy, x, y):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        base, motivated = tiny_pair(sync_bn=True, stages=STAGES)
        if LADDER:
            largest = tiny_pair(motivated_depth=20, sync_bn=True, stages=STAGES)[1]
            models = [base, motivated, largest]
            condition = km.conditions.Growth(0.5) if LADDER_GROWTH else km.conditions.ConsecutiveDecrease(1)
            model = km.MotivatedModel(models=models, condition=condition, joint=JOINT)
        else:
            cls = Zeroed if ZEROED else km.MotivatedModel
            model = cls(base, motivated, "resnet_depth", km.conditions.ConsecutiveDecrease(1), joint=JOINT)
        model.compile(
            optimizer=keras.optimizers.SGD(LR, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=STEPS_PER_EXECUTION,
        )
    rec = BatchRecorder()
    rungs = RungLog()
    model.fit(dataset(x, y), epochs=EPOCHS, verbose=0, callbacks=[rec, rungs])
    if LADDER:
        rec.flags = rungs.rungs
    return rec, [w.numpy() for w in model.base.weights + model.motivated.weights], model.counters()


def plain_run(strategy, x, y):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        base, _ = tiny_pair(sync_bn=True, stages=STAGES)
        base.compile(optimizer=keras.optimizers.SGD(LR, momentum=0.9), loss="sparse_categorical_crossentropy")
    base.fit(dataset(x, y), epochs=EPOCHS, verbose=0)
    return [w.numpy() for w in base.weights]


def rel_drift(a, b):
    return max(float(np.max(np.abs(u - v)) / (np.max(np.abs(u)) + 1e-12)) for u, v in zip(a, b))


x, y = random_data(256)
x = x.astype(FLOATX)
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
single = tf.distribute.OneDeviceStrategy("/cpu:0")
rec2, w2, c2 = motivated_run(mirrored, x, y)
if os.environ.get("MIRRORED_ONLY"):
    # Compared by the test against a reference run of this script.
    np.savez(os.environ["WEIGHTS_NPZ"], *w2)
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "counters_mirrored": c2}))
    sys.exit(0)
rec1, w1, c1 = motivated_run(single, x, y)
if os.environ.get("WEIGHTS_NPZ"):
    np.savez(os.environ["WEIGHTS_NPZ"], *w2)
print(
    json.dumps(
        {
            "replicas": mirrored.num_replicas_in_sync,
            "flags_mirrored": rec2.flags,
            "flags_single": rec1.flags,
            "losses_mirrored": rec2.losses,
            "losses_single": rec1.losses,
            "counters_mirrored": c2,
            "counters_single": c1,
            "drift_motivated": rel_drift(w1, w2),
            "drift_plain_keras": rel_drift(plain_run(single, x, y), plain_run(mirrored, x, y)),
        }
    )
)
