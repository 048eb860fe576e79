"""Callbacks: the engine's epoch boundary, and the trainer's that users may add too (per-batch logs,
per-mode timing, resumable backups)."""

import csv
import json
import os
import time

import keras

from keras_motivation import files
from keras_motivation import keras_internals
from keras_motivation.engine import switching


class EpochBoundary(keras.callbacks.Callback):
    """Ends every epoch on the base model, ends the `fit` with recomputed BatchNorm
    statistics (bn_statistics="recalibrated", when training changed the weights since
    a validation last recomputed them) and logs the epoch's motivation counts:
    `motivated_steps`, `switches`, `activations` (switches into the motivated
    model), `motivated_share` (motivated share of the steps) and
    `mean_activation_length` (motivated steps per activation).

    `MotivatedModel.fit` puts it first in the callback list, so the switch back
    happens (and `motivated_steps` / `switches` are in the logs) before any
    other callback sees the end of the epoch, and the statistics are recomputed
    before any other callback sees the end of the `fit`. When `fit` validates,
    the switch back and the recomputation already happened before validation
    (see `MotivatedModel.evaluate`). A callback that reads `model.base` or
    `model.motivated` directly between epochs without a validation (saving
    them, say) sees each model's own moving statistics; `model.save`,
    `evaluate` and `predict` recompute them first.

    `callbacks`: the other callbacks of the `fit`. Those that watch a
    motivated metric (EarlyStopping, ModelCheckpoint, ReduceLROnPlateau with
    `monitor="val_motivated_accuracy"`, ...) get that metric's direction from
    the base's (`val_accuracy`), as Keras would find it, before they first
    need it at the end of the first epoch.
    """

    def __init__(self, callbacks=()):
        super().__init__()
        self._others = list(getattr(callbacks, "callbacks", callbacks) or ())
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._start is None:
            # Later epochs start from the previous epoch's end: what the logs
            # count changes only in training steps (a host read saved per epoch).
            self._start = self.model.counters()
        self.model.begin_epoch(epoch, self.params.get("steps"))

    def on_epoch_end(self, epoch, logs=None):
        for callback in self._others:
            keras_internals.resolve_prefixed_monitor(callback, switching.MOTIVATED_PREFIX)
        self.model.end_epoch()
        end = self.model.counters()
        start, self._start = self._start, end
        if logs is not None:
            # Per-batch quantities: the last batch's value means nothing per epoch.
            logs.pop("batch_loss", None)
            logs.pop("motivated", None)
            epoch_counts = {k: end[k] - start[k] for k in end}
            logs["motivated_steps"] = epoch_counts["motivated_steps"]
            logs["switches"] = epoch_counts["switches"]
            logs["activations"] = epoch_counts["activations"]
            logs["motivated_share"] = switching.share_of_steps(epoch_counts)
            logs["mean_activation_length"] = (
                epoch_counts["motivated_steps"] / epoch_counts["activations"] if epoch_counts["activations"] else 0.0
            )

    def on_train_end(self, logs=None):
        self.model.end_fit()


class ResumableBackup(keras.callbacks.Callback):
    """Backs up the whole training state every `every` steps and at epoch ends.

    Keras' `BackupAndRestore` restarts an interrupted epoch from its first
    batch, which retrains batches the backup already contains. This backup
    keeps the global step (the model's own `steps` counter, saved inside the
    weights file, so weights and position can never disagree) and the trainer
    resumes from the next batch of the seeded data order. Files are written to
    a temporary name and renamed, so a kill never leaves a half-written backup.
    """

    def __init__(self, directory, steps_per_epoch, every=200, elapsed=None):
        super().__init__()
        self.directory = directory
        self.steps_per_epoch = steps_per_epoch
        self.every = every
        # Optional callable: {"wall_clock_s": ..., "cpu_time_s": ...} spent so
        # far, kept with the backup so that a resumed run adds to it.
        self.elapsed = elapsed
        self._since = 0

    @staticmethod
    def read_state(directory):
        """The last backup's state.json ({} when there is none)."""
        path = os.path.join(directory, "state.json")
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return json.load(f)

    def on_train_batch_end(self, batch, logs=None):
        self._since += 1
        if self._since >= self.every:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        self._save()

    def _save(self):
        self._since = 0
        os.makedirs(self.directory, exist_ok=True)
        with files.replacing(os.path.join(self.directory, "state.weights.h5"), suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp)
        steps = self.model.counters()["steps"]
        state = {"steps": steps, "epoch": steps // self.steps_per_epoch, "batch": steps % self.steps_per_epoch}
        if self.elapsed is not None:
            state.update(self.elapsed())
        files.atomic_write(os.path.join(self.directory, "state.json"), json.dumps(state))


class BatchLog(keras.callbacks.Callback):
    """Appends one CSV row per logged batch: step, epoch, batch_loss, motivated, learning rate.

    Rows are written as they come, so a killed run keeps them; a resumed run
    first drops the rows past its backup (`truncate_csv`).
    """

    FIELDS = ("step", "epoch", "batch_loss", "motivated", "learning_rate")

    def __init__(self, path):
        super().__init__()
        self.path = path
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        motivated = bool(logs["motivated"])
        opt = self.model.motivated_optimizer if motivated else self.model.optimizer
        row = (
            self.model.counters()["steps"],
            self._epoch,
            float(logs["batch_loss"]),
            int(motivated),
            float(opt.learning_rate),
        )
        new = not os.path.exists(self.path)
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(self.FIELDS)
            writer.writerow(row)


class ModeTimer(keras.callbacks.Callback):
    """Wall-clock seconds spent in base and in motivated steps (per logged batch)."""

    def __init__(self):
        super().__init__()
        self.seconds = {"base": 0.0, "motivated": 0.0}
        self.batches = {"base": 0, "motivated": 0}
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        mode = "motivated" if logs.get("motivated") else "base"
        self.seconds[mode] += time.perf_counter() - self._start
        self.batches[mode] += 1

    def per_mode(self):
        return {
            mode: {
                "seconds": self.seconds[mode],
                "batches": self.batches[mode],
                "seconds_per_batch": self.seconds[mode] / self.batches[mode] if self.batches[mode] else None,
            }
            for mode in self.seconds
        }
