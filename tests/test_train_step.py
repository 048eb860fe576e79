"""The public `train_step`: one step of Algorithm 1 that every execution path calls, so an override
changes training on every path."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from testing_utils import SHAPE
from testing_utils import random_data
from testing_utils import run_json_script
from testing_utils import tiny_pair

import keras_motivation as km
from keras_motivation import conditions


class ZeroedInputs(km.MotivatedModel):
    """Trains on all-zero images: an override a user could write (a custom augmentation, say). The step runs in
    cross-replica context, so the batch is transformed on each replica (`distribute_strategy.run`)."""

    def train_step(self, data):
        def zeroed(batch):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
            return keras.utils.pack_x_y_sample_weight(tf.zeros_like(x), y, sample_weight)

        return super().train_step(self.distribute_strategy.run(zeroed, args=(data,)))


def _run(cls, x, path, joint=False):
    keras.utils.set_random_seed(0)
    base, motivated = tiny_pair()
    # Private statistics: recalibrated ones would be recomputed from the real images, not the zeroed ones.
    model = cls(
        base, motivated, "resnet_depth", conditions.ConsecutiveDecrease(1), joint=joint, bn_statistics="private"
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy", **path)
    _, y = random_data(len(x))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    return model.counters(), [v.numpy() for v in model.base.weights + model.motivated.weights]


@pytest.mark.parametrize(
    "path, joint",
    [({}, False), ({"steps_per_execution": 3}, False), ({"jit_compile": True}, False), ({}, True)],
    ids=["one-step", "device-loop", "xla", "joint"],
)
def test_an_overridden_train_step_trains_on_every_path(path, joint, deterministic):
    """The override's run is the base class's run on the data it makes, and not the plain run."""
    x, _ = random_data(96)
    overridden = _run(ZeroedInputs, x, path, joint)
    on_zeros = _run(km.MotivatedModel, np.zeros_like(x), path, joint)
    plain = _run(km.MotivatedModel, x, path, joint)
    assert overridden[0] == on_zeros[0]
    for a, b in zip(overridden[1], on_zeros[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(overridden[1], plain[1]))


@pytest.mark.slow  # two runs on 2 logical CPU devices in subprocesses, about a minute
def test_an_overridden_train_step_trains_under_mirrored_strategy(tmp_path):
    weights = {}
    for override in ("", "1"):
        npz = str(tmp_path / f"w{override}.npz")
        run_json_script("mirrored_run.py", env={"MIRRORED_ONLY": "1", "WEIGHTS_NPZ": npz, "ZEROED": override})
        with np.load(npz) as f:
            weights[override] = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    assert any(not np.allclose(a, b) for a, b in zip(weights[""], weights["1"]))


class WithInputMean(km.MotivatedModel):
    """Adds a key to the logs: the mean of the step's images (one replica here)."""

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return {**super().train_step(data), "input_mean": tf.reduce_mean(x)}


class LastLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append((float(logs["input_mean"]), int(logs["motivated"])))


@pytest.mark.parametrize("steps_per_execution", [1, 3], ids=["one-step", "device-loop"])
def test_an_overrides_extra_log_key_and_growths_choice_reach_the_logs_on_every_path(steps_per_execution):
    """Growth chooses the rung before each step, inside train_step: the motivated model from the fifth of eight
    batches. Batch b's images are all b, so each logged mean names the step whose logs a call returned (the
    device loop's: each call's last)."""
    keras.utils.set_random_seed(0)
    base, motivated = tiny_pair()
    model = WithInputMean(base, motivated, "resnet_depth", conditions.Growth(epochs=0.5), bn_statistics="private")
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss="sparse_categorical_crossentropy",
        steps_per_execution=steps_per_execution,
    )
    x = np.repeat(np.arange(8, dtype="float32"), 4)[:, None, None, None] * np.ones((1, *SHAPE), "float32")
    _, y = random_data(32)
    recorder = LastLogs()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[recorder])
    last = list(range(8)) if steps_per_execution == 1 else [2, 5, 7]
    assert recorder.logs == [(float(b), int(b >= 4)) for b in last]
    assert model.counters()["motivated_steps"] == 4 and model.counters()["activations"] == 1
