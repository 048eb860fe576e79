"""The engine's epoch boundary: the callback `MotivatedModel.fit` puts first among the callbacks.

It lives beside the engine so that the engine imports nothing of the
trainer (callbacks.py holds the trainer's callbacks and its preemption).
"""

import keras

from keras_motivation import keras_internals
from keras_motivation.engine import switching
from keras_motivation.engine.statistics import TRAINED


class EpochBoundary(keras.callbacks.Callback):
    """Ends every epoch on the base model, ends the `fit` with recomputed BatchNorm
    statistics (bn_statistics="recalibrated", when training changed the weights since
    a validation last recomputed them) and logs the epoch's motivation counts:
    `motivated_steps`, `switches`, `activations` (switches up: into the
    motivated model, for a pair), `motivated_share` (motivated share of the
    steps), `mean_activation_length` (steps above the base per activation)
    and, in a ladder, each model between's `rung<i>_steps` and `rung<i>_share`.

    `MotivatedModel.fit` puts it first in the callback list, so the switch back
    happens (and `motivated_steps` / `switches` are in the logs) before any
    other callback sees the end of the epoch, and the statistics are recomputed
    before any other callback sees the end of the `fit`. When `fit` validates,
    the switch back and the recomputation already happened before validation
    (see `MotivatedModel.evaluate`). A callback that reads `model.base` or
    `model.motivated` directly between epochs without a validation (saving
    them, say) sees each model's own moving statistics; `model.save`,
    `evaluate` and `predict` recompute them first.

    `callbacks`: the other callbacks of the `fit`. Those that watch a bigger
    model's metric (EarlyStopping, ModelCheckpoint, ReduceLROnPlateau with
    `monitor="val_motivated_accuracy"`, or a ladder's `"val_rung1_accuracy"`,
    ...) get that metric's direction from the base's (`val_accuracy`), as
    Keras would find it, before they first need it at the end of the first
    epoch.
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
        rungs = len(self.model.rungs)
        for callback in self._others:
            for rung in range(1, rungs):
                keras_internals.resolve_prefixed_monitor(callback, switching.rung_prefix(rung, rungs))
        self.model.end_epoch()
        end = self.model.counters()
        start, self._start = self._start, end
        if logs is not None:
            # Per-batch quantities: the last batch's value means nothing per epoch.
            logs.pop("batch_loss", None)
            logs.pop("motivated", None)
            # (A ladder's `rung_steps` is a list: each rung's steps.)
            epoch_counts = {
                k: [a - b for a, b in zip(end[k], start[k])] if isinstance(end[k], list) else end[k] - start[k]
                for k in end
            }
            logs["motivated_steps"] = epoch_counts["motivated_steps"]
            logs["switches"] = epoch_counts["switches"]
            logs["activations"] = epoch_counts["activations"]
            logs["motivated_share"] = switching.share_of_steps(epoch_counts)
            logs["mean_activation_length"] = switching.mean_activation_length(epoch_counts)
            logs.update(switching.rung_counts(epoch_counts))

    def on_train_end(self, logs=None):
        self.model.end_fit()


class EpochHooks:
    """What `EpochBoundary` calls on the model, mixed into `MotivatedModel`."""

    def begin_epoch(self, epoch, steps_per_epoch=None):
        """The epoch start (`EpochBoundary` calls it): the condition learns the epoch."""
        self.condition.on_epoch_begin(epoch, steps_per_epoch)

    def end_epoch(self, recalibration_data=None):
        """The epoch boundary: back on the base model. The BatchNorm statistics are
        recomputed when something reads them next (before a validation, at the end of `fit`).

        Args:
            recalibration_data: replaces the training batches `fit` was given.
        """
        if recalibration_data is not None:
            self._statistics_state.source = recalibration_data
        if self.is_motivated:
            # The copy back changes the base's weights.
            self._statistics_state.stale = TRAINED
            self.switch_to_base()

    def end_fit(self):
        """The end of `fit` (`EpochBoundary` calls it): the statistics the models are left with are
        recomputed when training changed the weights since the last recomputation."""
        self.end_epoch()
        self.refresh_statistics()
