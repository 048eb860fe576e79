"""The Keras-private touches of keras_internals.py, one test each: an upgrade that moves them fails here."""

import keras
import numpy as np
import pytest

from keras_motivation import keras_internals


def _built(optimizer):
    optimizer.build([keras.Variable(np.ones((3,), "float32"))])
    return optimizer


def test_share_learning_rate_makes_every_assignment_reach_both():
    base = keras.optimizers.SGD(0.1, momentum=0.9)
    other = keras.optimizers.SGD(0.1, momentum=0.9)
    paths_before = [v.path for v in other.variables]
    assert keras_internals.share_learning_rate(base, other)
    # The shared variable takes the place of the own one: same count and order.
    assert [v.path for v in other.variables] == [paths_before[0], base._learning_rate.path]
    base.learning_rate = 0.02
    assert float(other.learning_rate) == pytest.approx(0.02)
    other.learning_rate = 0.003
    assert float(base.learning_rate) == pytest.approx(0.003)
    _built(base), _built(other)
    assert len(other.variables) == len(base.variables) == 3


def test_share_learning_rate_through_loss_scale_optimizers():
    base = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
    other = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
    assert keras_internals.share_learning_rate(base, other)
    base.learning_rate = 5e-4
    assert float(other.learning_rate) == pytest.approx(5e-4)
    assert float(other.inner_optimizer.learning_rate) == pytest.approx(5e-4)


def test_share_learning_rate_leaves_schedules_alone():
    schedule = keras.optimizers.schedules.CosineDecay(0.1, 100)
    base, other = keras.optimizers.SGD(schedule), keras.optimizers.SGD(schedule)
    assert not keras_internals.share_learning_rate(base, other)
    assert not keras_internals.share_learning_rate(keras.optimizers.SGD(0.1), other)


@pytest.mark.parametrize(
    "monitor, expected", [("val_motivated_accuracy", "greater"), ("motivated_accuracy", "greater"),
                          ("val_motivated_loss", "less"), ("motivated_loss", "less")]
)
def test_resolve_prefixed_monitor_takes_the_base_metrics_direction(monitor, expected):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.evaluate(np.zeros((4, 2)), np.zeros((4,)), verbose=0)  # builds the metrics
    callback = keras.callbacks.EarlyStopping(monitor=monitor, min_delta=0.1)
    callback.set_model(model)
    with pytest.raises(ValueError, match="automatically determine"):
        callback._set_monitor_op()  # what Keras alone does
    callback.monitor_op = None
    keras_internals.resolve_prefixed_monitor(callback, "motivated_")
    assert callback.monitor_op.__name__ == expected
    assert callback.monitor == monitor
    assert callback.min_delta == (0.1 if expected == "greater" else -0.1)


def test_resolve_prefixed_monitor_leaves_other_metrics_and_explicit_modes_alone():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    for callback in (keras.callbacks.EarlyStopping(monitor="motivated_steps"),
                     keras.callbacks.EarlyStopping(monitor="val_accuracy"),
                     keras.callbacks.EarlyStopping(monitor="motivated_accuracy", mode="max")):
        callback.set_model(model)
        keras_internals.resolve_prefixed_monitor(callback, "motivated_")
        assert callback.monitor_op is None
