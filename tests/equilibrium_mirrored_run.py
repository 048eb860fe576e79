"""Joint steps with gradient equilibrium on 2 logical CPU devices, against the hand computation.

Executed in a subprocess by test_joint.py (the logical devices must be configured before TensorFlow
initialises). Float64, synchronized BatchNorm: the two replicas' step is the one-device step up to rounding.
Prints one JSON line: the largest difference from the hand computation for each case.
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
from testing_utils import SHAPE  # noqa: E402
from testing_utils import joint_ladder_reference  # noqa: E402
from testing_utils import random_data  # noqa: E402

import keras_motivation as km  # noqa: E402
from keras_motivation.models.resnet_cifar import resnet_cifar  # noqa: E402

keras.config.set_floatx("float64")
LR = 0.1
# One strategy for every run: a second MirroredStrategy in the process takes collective keys the first one's
# replicas then disagree on.
MIRRORED = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def build(strategy, depths, weights, shared_forward):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        models = [resnet_cifar(d, num_classes=10, input_shape=SHAPE, width=4, stages=1, sync_bn=True) for d in depths]
        model = km.MotivatedModel(
            models=models,
            weights_map="first",
            condition=km.conditions.Always(),
            bn_statistics="private",
            joint=km.JointStep(weights=weights, equilibrium=True, shared_forward=shared_forward),
        )
        model.compile(optimizer=keras.optimizers.SGD(LR), loss="sparse_categorical_crossentropy")
    for wmap in model.weights_maps:
        wmap.copy_to_motivated()
    return model


def run(depths, weights, shared_forward):
    x, y = random_data(32)
    x = x.astype("float64")
    model = build(MIRRORED, depths, weights, shared_forward)
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=1, verbose=0)
    assert model.counters()["motivated_steps"] == 2
    # The hand computation on a one-device copy (same seed, same weights).
    reference = build(tf.distribute.get_strategy(), depths, weights, shared_forward)
    expected = joint_ladder_reference(reference, [(x[:16], y[:16]), (x[16:], y[16:])], LR, weights, equilibrium=True)
    return max(float(np.max(np.abs(v.numpy() - w))) for v, w in zip(model.motivated.trainable_variables, expected))


print(
    json.dumps(
        {
            "replicas": 2,
            "pair_shared": run((8, 14), [2.0, 1.0], True),
            "pair_separate": run((8, 14), [2.0, 1.0], False),
            "ladder_shared": run((8, 14, 20), [2.0, 0.5, 1.0], True),
            "ladder_separate": run((8, 14, 20), [2.0, 0.5, 1.0], False),
        }
    )
)
