"""Keras callbacks on a MotivatedModel, and the trainer's: the learning rate reaches both optimizers, monitors of
either model, the epoch boundary."""

import errno
import os
import types

import keras
import numpy as np
import pytest
from testing_utils import Scripted
from testing_utils import random_data
from testing_utils import tiny_model

import keras_motivation as km
from keras_motivation import callbacks as callbacks_lib
from keras_motivation import files
from keras_motivation import preemption

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


# -- ResumableBackup: when it writes, a signal's stop, a backup that cannot be written or read ----------


class _Recorded(callbacks_lib.ResumableBackup):
    """Records the step of every backup written."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.written = []

    def write(self, step):
        self.written.append(step)
        return super().write(step)


def _fit_backed_up(model, backup, epochs=2, callbacks=()):
    """`epochs` epochs of 4 batches of 16, validated, `backup` last."""
    x, y = random_data(64)
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        validation_data=(x[:16], y[:16]),
        callbacks=[*callbacks, backup],
    )


def test_backups_every_n_steps_count_from_the_start_of_the_run(tmp_path):
    model = tiny_model()
    backup = _Recorded(str(tmp_path / "steps"), 4, every=3)
    _fit_backed_up(model, backup, epochs=3)
    # Every 3 steps of the run (3, 6, 9, 12) and at the epoch ends (4, 8, 12): the count does not restart
    # at an epoch end (which gave 3, 4, 7, 8, 11, 12), and a step that ends an epoch is backed up once.
    assert backup.written == [3, 4, 6, 8, 9, 12]
    assert callbacks_lib.ResumableBackup.read_state(str(tmp_path / "steps"))["steps"] == 12
    assert sorted(os.listdir(tmp_path / "steps")) == ["state.json", "state.weights.h5"]

    # Every 3 s (a clock that advances 1 s per step): at step 3, the epoch end (4), step 7, the epoch end.
    now = [0.0]
    tick = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: now.__setitem__(0, now[0] + 1))
    timed = _Recorded(str(tmp_path / "seconds"), 4, every=1000, every_s=3, clock=lambda: now[0])
    _fit_backed_up(tiny_model(), timed, callbacks=[tick])
    assert timed.written == [3, 4, 7, 8]


def test_a_stop_request_saves_at_the_next_step_or_at_the_end_of_an_epoch_it_ends(tmp_path):
    stop = types.SimpleNamespace(requested=None)

    def request_at(step):
        def maybe(batch, logs):
            if model.counters()["steps"] == step:
                stop.requested = "SIGTERM"

        return keras.callbacks.LambdaCallback(on_train_batch_end=maybe)

    model = tiny_model()
    backup = _Recorded(str(tmp_path / "backup"), 4, every=1000, stop=stop)
    with pytest.raises(preemption.Preempted) as err:
        _fit_backed_up(model, backup, callbacks=[request_at(6)])
    assert (err.value.step, err.value.epoch, err.value.signal) == (6, 2, "SIGTERM")
    assert backup.written == [4, 6] and model.counters()["steps"] == 6
    assert callbacks_lib.ResumableBackup.read_state(str(tmp_path / "backup"))["steps"] == 6

    # At an epoch's last step the stop waits for the epoch end (validation, switch back to the base,
    # its backup): the backup holds a whole epoch.
    model, stop.requested = tiny_model(), None
    history = keras.callbacks.History()
    backup = _Recorded(str(tmp_path / "epoch_end"), 4, every=1000, stop=stop)
    with pytest.raises(preemption.Preempted) as err:
        _fit_backed_up(model, backup, callbacks=[request_at(4), history])
    assert (err.value.step, err.value.epoch) == (4, 1)
    assert backup.written == [4] and not model.is_motivated
    assert "val_loss" in history.history


def test_a_backup_that_cannot_be_written_keeps_the_previous_one(tmp_path, monkeypatch):
    model = tiny_model()
    directory = tmp_path / "backup"
    save_weights = model.save_weights

    def full_disk(path, *args, **kwargs):
        if model.counters()["steps"] < 4:
            return save_weights(path, *args, **kwargs)
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n half a file")
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(model, "save_weights", full_disk)
    with pytest.raises(preemption.BackupError) as err:
        _fit_backed_up(model, callbacks_lib.ResumableBackup(str(directory), 4, every=2))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write the backup {directory / 'state.weights.h5'}: OSError: ")
    assert "No space left on device" in message and message.endswith("the previous backup is kept")
    # The backup of step 2, whole: no temporary left, and it loads.
    assert sorted(os.listdir(directory)) == ["state.json", "state.weights.h5"]
    assert callbacks_lib.ResumableBackup.read_state(str(directory))["steps"] == 2
    callbacks_lib.ResumableBackup.check(str(directory))
    restored = tiny_model()
    restored.load_weights(str(directory / "state.weights.h5"))
    assert restored.counters()["steps"] == 2


def test_a_backup_that_cannot_be_read_is_named_in_one_line(tmp_path):
    check = callbacks_lib.ResumableBackup.check
    check(str(tmp_path / "none"))  # no backup: nothing to refuse
    directory = tmp_path / "backup"
    directory.mkdir()
    (directory / "state.json").write_text('{"steps": 3}')
    with pytest.raises(preemption.BackupError, match="has state.json but no weights file"):
        check(str(directory))
    model = tiny_model()
    model.save_weights(str(directory / "state.weights.h5"))
    check(str(directory))
    whole = (directory / "state.weights.h5").read_bytes()
    for broken in (whole[: len(whole) // 2], b""):
        (directory / "state.weights.h5").write_bytes(broken)
        with pytest.raises(preemption.BackupError) as err:
            check(str(directory))
        assert str(err.value).startswith(f"the backup {directory / 'state.weights.h5'} cannot be read (")
        assert "\n" not in str(err.value)
    (directory / "state.weights.h5").write_bytes(whole)
    (directory / "state.json").write_text('{"steps": ')
    with pytest.raises(preemption.BackupError, match="state.json cannot be read"):
        check(str(directory))


def _batch_scalars(directory):
    """{(tag, step)} of the batch scalars TensorBoard wrote under `directory`."""
    import tensorflow as tf

    found = set()
    for root, _, names in os.walk(directory):
        for name in names:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                found |= {(v.tag, event.step) for v in event.summary.value if v.tag.startswith("batch_")}
    return found


def test_the_trainers_tensorboard_writes_what_keras_writes(tmp_path):
    x, y = random_data(48)
    written = []
    for callback in (keras.callbacks.TensorBoard, callbacks_lib.TensorBoard):
        model = tiny_model(Scripted([i % 3 == 0 for i in range(64)]))
        directory = str(tmp_path / callback.__module__)
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[callback(directory, update_freq=10)])
        written.append(_batch_scalars(directory))
    assert written[0] == written[1]
    assert {step for _, step in written[0]} == {10, 20}
    assert {"batch_batch_loss", "batch_motivated", "batch_loss"} <= {tag for tag, _ in written[0]}
