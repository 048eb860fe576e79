"""The trainer's callbacks, which users may add too: per-batch logs, per-mode timing, resumable backups.
(The engine's epoch boundary, which `fit` adds itself, is `engine.epoch.EpochBoundary`.)"""

import csv
import json
import os
import time

import keras

from keras_motivation import files
from keras_motivation import keras_internals
from keras_motivation import preemption
from keras_motivation import strategies


class ResumableBackup(keras.callbacks.Callback):
    """Backs up the whole training state at a fixed interval and at epoch ends, and stops the run on a signal.

    Keras' `BackupAndRestore` restarts an interrupted epoch from its first
    batch, which retrains batches the backup already contains. This backup
    keeps the global step (the model's own `steps` counter, saved inside the
    weights file, so weights and position can never disagree) and the trainer
    resumes from the next batch of the seeded data order.

    When: at the end of every call (a step, or `steps_per_execution` steps)
    where the run's step count passes a multiple of `every` (counted from the
    start of the run, over all epochs and resumes: 200, 400, ...), where
    `every_s` seconds (optional) have passed since the last backup, and at
    every epoch end (after validation: the backup holds the finished epoch;
    an interval backup that falls on an epoch's last step is that one).

    `stop`: a `preemption.StopRequest` (anything with `requested`, None or a
    signal's name). Once it is set, at the end of the call in flight the
    backup is written and `preemption.Preempted` raised; at an epoch's last
    step, at the epoch end instead (validation, then its backup), so that
    the backup never holds an epoch without its end. Under
    MultiWorkerMirroredStrategy every worker takes each of these decisions
    together (the flags all-reduced across workers, as the engine's verdict
    is): all stop at the same step, and all write their backup at the same
    steps (the trainer points the other workers at temporary directories).

    The two files are written to temporary names, synced to disk and renamed,
    so a kill never leaves a half-written backup. A backup that cannot be
    written (a full disk, no permission) leaves the previous one as it was
    and raises `preemption.BackupError`, one line naming the path and the
    error (under several workers, on every worker).
    """

    WEIGHTS = "state.weights.h5"
    STATE = "state.json"

    def __init__(
        self, directory, steps_per_epoch, every=200, elapsed=None, every_s=None, stop=None, clock=None, kept=None
    ):
        super().__init__()
        self.directory = directory
        self.steps_per_epoch = steps_per_epoch
        self.every = every
        self.every_s = every_s or None
        # Optional callable: {"wall_clock_s": ..., "cpu_time_s": ...} spent so
        # far, kept with the backup so that a resumed run adds to it.
        self.elapsed = elapsed
        # Optional callable: more of the run's state that its weights do not hold, for state.json (the model's
        # `statistics_record`).
        self.kept = kept
        self.stop = stop
        self.clock = clock or time.monotonic
        self.saved_step = None  # the step of the last backup (or of the one this run resumed from)
        self.saved_time = None
        self.epoch = 0
        self.stop_at_epoch_end = None  # the signal whose stop waits for the epoch end
        self.agree = None

    @staticmethod
    def read_state(directory):
        """The last backup's state.json ({} when there is none)."""
        path = os.path.join(directory, ResumableBackup.STATE)
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return json.load(f)

    @staticmethod
    def check(directory):
        """Raises `preemption.BackupError` (one line) when the backup in `directory` cannot be read: a
        weights file that is not a whole HDF5 file (empty, truncated, overwritten), a state.json that is not
        JSON, or a state.json without its weights file. No backup at all is fine."""
        import h5py

        weights = os.path.join(directory, ResumableBackup.WEIGHTS)
        state = os.path.join(directory, ResumableBackup.STATE)
        if not os.path.exists(weights):
            if os.path.exists(state):
                raise preemption.BackupError(f"the backup {directory} has {ResumableBackup.STATE} but no weights file")
            return
        try:
            with h5py.File(weights, "r") as f:
                list(f.keys())
        except Exception as err:
            raise preemption.BackupError(f"the backup {weights} cannot be read ({preemption.one_line(err)})") from None
        try:
            ResumableBackup.read_state(directory)
        except (OSError, ValueError) as err:
            raise preemption.BackupError(f"the backup {state} cannot be read ({preemption.one_line(err)})") from None

    def on_train_begin(self, logs=None):
        self.saved_step = self.model.counters()["steps"]
        self.saved_time = self.clock()
        self.stop_at_epoch_end = None
        # Decisions a worker cannot take alone (a signal, the clock) are summed over the workers.
        if self.agree is None and (self.stop is not None or self.every_s):
            self.agree = strategies.agreement(self.model.distribute_strategy)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.model.counters()["steps"]
        epoch_steps = self.params.get("steps") if self.params else None
        last_of_epoch = batch + 1 >= epoch_steps if epoch_steps else step % self.steps_per_epoch == 0
        timed = bool(self.every_s) and self.clock() - self.saved_time >= self.every_s
        timed, signal = self.decide(timed)
        if signal is not None:
            if last_of_epoch:
                self.stop_at_epoch_end = signal
                return
            self.save(step)
            raise preemption.Preempted(step, self.epoch + 1, signal)
        if not last_of_epoch and (timed or step // self.every > self.saved_step // self.every):
            self.save(step)

    def on_epoch_end(self, epoch, logs=None):
        step = self.model.counters()["steps"]
        self.save(step)
        _, signal = self.decide(False)
        signal = self.stop_at_epoch_end or signal
        if signal is not None:
            raise preemption.Preempted(step, epoch + 1, signal)

    def decide(self, timed):
        """(whether a timed backup is due, the stop signal's name or None), the same on every worker."""
        requested = self.stop.requested if self.stop is not None else None
        if self.agree is None:
            return timed, requested
        flags = self.agree([float(timed)] + [float(requested == s.name) for s in preemption.SIGNALS])
        signals = [s.name for s, n in zip(preemption.SIGNALS, flags[1:]) if n > 0]
        # This worker's own signal, else the one another worker got.
        return flags[0] > 0, requested or (signals[0] if signals else None)

    def save(self, step):
        """Writes the backup of `step` (once per step); `preemption.BackupError` when it cannot be written."""
        # The same test on every worker (their files differ): the steps.
        if step == self.saved_step:
            return
        error = self.write(step)
        if self.agree is not None:
            # Every worker stops when one cannot write: the others would wait for it at the next step.
            failed = self.agree([float(error is not None)])[0] > 0
            if failed and error is None:
                error = "another worker could not write its backup (see its output); the run stopped"
        if error is not None:
            raise preemption.BackupError(error)
        self.saved_step, self.saved_time = step, self.clock()

    def write(self, step):
        """Writes both files atomically; None, or the one line saying what could not be written."""
        weights = os.path.join(self.directory, self.WEIGHTS)
        state = {"steps": step, "epoch": step // self.steps_per_epoch, "batch": step % self.steps_per_epoch}
        for more in (self.elapsed, self.kept):
            if more is not None:
                state.update(more())
        kept = "the previous backup is kept" if os.path.exists(weights) else "there is no earlier backup"
        target = self.directory
        try:
            os.makedirs(self.directory, exist_ok=True)
            paths = [weights, os.path.join(self.directory, self.STATE)]
            with files.replacing_all(paths, [".weights.h5", ".json"], durable=True) as (weights_tmp, state_tmp):
                target = weights
                self.model.save_weights(weights_tmp)
                target = paths[1]
                with open(state_tmp, "w") as f:
                    f.write(json.dumps(state))
                target = self.directory
        except Exception as err:
            return f"cannot write the backup {target}: {preemption.one_line(err)}; {kept}"
        return None


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
        # The rung that trained the batch (a pair: 0 or 1).
        motivated = int(round(float(logs["motivated"])))
        opt = self.model.optimizers[motivated]
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


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard, whose batch hook runs only on the batches it writes (every `update_freq`).

    Keras' calls a recording-conditioned `summary.scalar` for every logged value at every batch, to write
    one batch in `update_freq`: 1.4 ms of CPU a batch against 0.5 measured (2026-12-07), on steps that plain
    `fit` takes without it. What is written is the same.
    """

    def on_train_batch_end(self, batch, logs=None):
        if isinstance(self.update_freq, int) and keras_internals.tensorboard_train_batch(self) % self.update_freq:
            return
        super().on_train_batch_end(batch, logs)


class LastValidation(keras.callbacks.Callback):
    """The last epoch's validation logs, and the counters they were taken at: what an evaluation of the same
    data gives again while nothing changed since (no step, no switch, no statistics recomputed)."""

    def __init__(self):
        super().__init__()
        self.logs, self.counters = None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = {k[len("val_") :]: float(v) for k, v in (logs or {}).items() if k.startswith("val_")}
        self.logs, self.counters = (logs, self.model.counters()) if logs else (None, None)

    def unchanged(self, model):
        """The last validation's logs (as `evaluate(..., return_dict=True)` gives them) while the model is as it
        was then; else None."""
        if self.logs is None or model.statistics_stale or model.counters() != self.counters:
            return None
        return dict(self.logs)


class ModeTimer(keras.callbacks.Callback):
    """Wall-clock seconds spent in base and in motivated steps (a ladder's: each rung's; per logged batch)."""

    def __init__(self):
        super().__init__()
        self.seconds = {"base": 0.0, "motivated": 0.0}
        self.batches = {"base": 0, "motivated": 0}
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        rung, rungs = int(round(float(logs.get("motivated", 0)))), len(self.model.rungs)
        mode = "base" if rung == 0 else "motivated" if rung == rungs - 1 else f"rung{rung}"
        self.seconds[mode] = self.seconds.get(mode, 0.0) + time.perf_counter() - self._start
        self.batches[mode] = self.batches.get(mode, 0) + 1

    def per_mode(self):
        return {
            mode: {
                "seconds": self.seconds[mode],
                "batches": self.batches[mode],
                "seconds_per_batch": self.seconds[mode] / self.batches[mode] if self.batches[mode] else None,
            }
            for mode in self.seconds
        }
