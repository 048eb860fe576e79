"""Callbacks that MotivatedModel.fit adds, and ones users may add."""

import keras


class EpochBoundary(keras.callbacks.Callback):
    """Ends every epoch on the base model and logs the epoch's motivation counts.

    `MotivatedModel.fit` puts it first in the callback list, so the switch back
    happens (and `motivated_steps` / `switches` are in the logs) before any
    other callback sees the end of the epoch. When `fit` validates, the switch
    back already happened before validation (see `MotivatedModel.evaluate`).
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self.model.counters()
        self.model.condition.on_epoch_begin(epoch, self.params.get("steps"))

    def on_epoch_end(self, epoch, logs=None):
        self.model.finish_epoch()
        end = self.model.counters()
        if logs is not None:
            # Per-batch quantities: the last batch's value means nothing per epoch.
            logs.pop("batch_loss", None)
            logs.pop("motivated", None)
            logs["motivated_steps"] = end["motivated_steps"] - self._start["motivated_steps"]
            logs["switches"] = end["switches"] - self._start["switches"]
