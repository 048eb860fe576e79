"""Keras callbacks on a MotivatedModel, and the trainer's: the learning rate reaches both optimizers, monitors of
either model, the epoch boundary."""

import keras
import numpy as np
import pytest
from testing_utils import Scripted
from testing_utils import random_data
from testing_utils import tiny_model

import keras_motivation as km
from keras_motivation import callbacks as callbacks_lib
from keras_motivation import files

# Every other batch motivated: both optimizers step in every epoch (4 batches of 16).
ALTERNATE = [i % 2 for i in range(64)]


def _lr(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


@pytest.fixture(scope="module")
def alternating():
    """One model for the rate tests below, traced once (most of a fit's time):
    each test fits it from rate 0.05 and the schedule's start."""
    return tiny_model(Scripted(ALTERNATE))


def _fit_with(model, callback, tmp_path, epochs=3):
    model.optimizer.learning_rate = 0.05
    model.condition.step.assign(0)
    x, y = random_data(64)
    log = str(tmp_path / "batches.csv")
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        validation_data=(x[:32], y[:32]),
        callbacks=[callback, callbacks_lib.BatchLog(log)],
    )
    return model, files.read_csv(log)


def _assert_both_follow(model, rows, expected_last_epoch_lr):
    assert _lr(model.optimizer) == pytest.approx(expected_last_epoch_lr)
    assert _lr(model.motivated_optimizer) == pytest.approx(expected_last_epoch_lr)
    last = [r for r in rows if int(r["epoch"]) == max(int(r["epoch"]) for r in rows)]
    # Both models' batches, each logged with its own optimizer's rate.
    assert {r["motivated"] for r in last} == {"0", "1"}
    for r in last:
        assert float(r["learning_rate"]) == pytest.approx(expected_last_epoch_lr), r


@pytest.mark.xdist_group("alternating")
def test_learning_rate_scheduler_reaches_the_motivated_optimizer(tmp_path, alternating):
    callback = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.05 * 0.1**epoch)
    model, rows = _fit_with(alternating, callback, tmp_path)
    _assert_both_follow(model, rows, 0.05 * 0.1**2)


@pytest.mark.xdist_group("alternating")
def test_reduce_lr_on_plateau_reaches_the_motivated_optimizer(tmp_path, alternating):
    # min_delta larger than any loss change: a plateau at every epoch after the first.
    callback = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=0, min_delta=100.0, min_lr=0.0
    )
    model, rows = _fit_with(alternating, callback, tmp_path)
    assert _lr(model.optimizer) == pytest.approx(0.05 * 0.5**2)
    assert _lr(model.motivated_optimizer) == _lr(model.optimizer)
    # Reduced at the end of epochs 1 and 2 (epoch 0 sets the first best value).
    for r in rows:
        assert float(r["learning_rate"]) == pytest.approx({0: 0.05, 1: 0.05, 2: 0.025}[int(r["epoch"])]), r


class _SetRate(keras.callbacks.Callback):
    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.model.optimizer.learning_rate = self.rate


@pytest.mark.xdist_group("alternating")
def test_user_code_setting_the_rate_reaches_the_motivated_optimizer(tmp_path, alternating):
    model, rows = _fit_with(alternating, _SetRate(0.004), tmp_path, epochs=2)
    _assert_both_follow(model, rows, 0.004)


def test_the_motivated_model_trains_at_the_shared_rate():
    # Rate 0 set on the base's optimizer: the motivated model, training every
    # batch with plain SGD, must not move either. Its differential layers
    # (no base counterpart, so never overwritten by a copy) show it.
    model = tiny_model(km.conditions.Always(), optimizer=keras.optimizers.SGD(0.05))
    mapped = {id(e.motivated) for e in model.weights_map.entries}
    differential = [w for w in model.motivated.trainable_weights if id(w) not in mapped]
    assert differential
    x, y = random_data(32)
    for rate, moves in ((0.0, False), (0.05, True)):
        model.optimizer.learning_rate = rate
        before = [w.numpy().copy() for w in differential]
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        changed = any(not np.array_equal(b, w.numpy()) for b, w in zip(before, differential))
        assert changed == moves, rate
    assert model.counters()["motivated_steps"] == 4


def test_a_motivated_optimizer_of_ones_own_keeps_its_rate():
    callback = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.05 * 0.1**epoch)
    model = tiny_model(Scripted(ALTERNATE))
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        motivated_optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x, y = random_data(64)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    assert _lr(model.optimizer) == pytest.approx(0.005)
    assert _lr(model.motivated_optimizer) == pytest.approx(0.01)


def test_mixed_precision_optimizers_share_the_rate():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_model(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(model.motivated_optimizer, keras.optimizers.LossScaleOptimizer)
    model.optimizer.learning_rate = 0.007
    assert _lr(model.motivated_optimizer) == pytest.approx(0.007)


# -- monitoring the motivated model ----------------------------------------------------


MONITORS = ["val_motivated_accuracy", "val_motivated_loss", "motivated_accuracy"]


@pytest.fixture(scope="module")
def monitored_fit(tmp_path_factory):
    """One fit watched by every monitoring callback the tests below check (a fit
    traces the train step, most of a test's time; none of them changes what the
    others watch)."""
    # Two motivated batches of four per epoch: both models train; a condition
    # that Keras can save (the checkpoint reloads it).
    model = tiny_model(km.conditions.MatchedRandom(2, seed=0))
    x, y = random_data(64)
    path = str(tmp_path_factory.mktemp("checkpoint") / "best.keras")
    watch = {
        "early_stopping": {
            m: keras.callbacks.EarlyStopping(monitor=m, patience=5, restore_best_weights=True) for m in MONITORS
        },
        "plateau": keras.callbacks.ReduceLROnPlateau(
            monitor="val_motivated_loss", factor=0.5, patience=0, min_delta=100.0
        ),
        "checkpoint": keras.callbacks.ModelCheckpoint(path, monitor="val_motivated_accuracy", save_best_only=True),
    }
    callbacks = [*watch["early_stopping"].values(), watch["plateau"], watch["checkpoint"]]
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_data=(x[:32], y[:32]), callbacks=callbacks)
    return model, (x[:32], y[:32]), path, watch


@pytest.mark.xdist_group("monitored_fit")
@pytest.mark.parametrize("monitor", MONITORS)
def test_early_stopping_on_a_motivated_metric_needs_no_mode(monitor, monitored_fit):
    callback = monitored_fit[3]["early_stopping"][monitor]
    assert callback.monitor_op.__name__ == ("less" if monitor.endswith("loss") else "greater")
    assert callback.best is not None and callback.monitor == monitor


@pytest.mark.xdist_group("monitored_fit")
def test_reduce_lr_on_plateau_watches_the_motivated_model(monitored_fit):
    model, callback = monitored_fit[0], monitored_fit[3]["plateau"]
    assert callback.monitor_op.__name__ == "less"
    assert _lr(model.motivated_optimizer) == pytest.approx(0.025)


@pytest.mark.xdist_group("monitored_fit")
def test_model_checkpoint_best_motivated_accuracy_reloads_as_a_motivated_model(monitored_fit):
    _, (x, y), path, watch = monitored_fit
    callback = watch["checkpoint"]
    assert callback.monitor_op.__name__ == "greater"
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, km.MotivatedModel)
    assert loaded.evaluate(x, y, verbose=0, return_dict=True)["motivated_accuracy"] == pytest.approx(callback.best)
