"""The `bn_statistics` option as objects that own their behaviour.

Whose BatchNorm moving statistics each model is evaluated, saved and
exported with (`keras_motivation.batch_norm` explains why it matters):
`SharedStatistics` (the paper's: copied with the weights at every switch),
`PrivateStatistics` (each model's own, updated by its own steps) and
`RecalibratedStatistics` (private, and recomputed from training batches at
every epoch end, before validation). Training is the same under all three.
"""

import keras
import tensorflow as tf

from keras_motivation import batch_norm


class StatisticsOption:
    """What one `bn_statistics` option does at compile, at `fit` and at each epoch end."""

    name = None
    copies_statistics = False  # switches copy the moving statistics with the weights

    def __init__(self, recalibration_batches=batch_norm.DEFAULT_RECALIBRATION_BATCHES):
        batch_norm.check_option(self.name, recalibration_batches)
        self.recalibration_batches = recalibration_batches

    def copies(self, model, entries):
        """The weights-map entries a switch copies, of `entries` (the map's)."""
        if self.copies_statistics:
            return list(entries)
        own = {id(v) for v in batch_norm.moving_statistics(model.base)}
        return [e for e in entries if id(e.base) not in own]

    def recalibration_source(self, x, batch_size, recalibration_data):
        """The training batches an epoch end recomputes statistics from (None: none needed)."""
        return recalibration_data

    def end_epoch(self, model):
        """Called once the epoch is back on the base model."""


class SharedStatistics(StatisticsOption):
    name = "shared"
    copies_statistics = True


class PrivateStatistics(StatisticsOption):
    name = "private"


class RecalibratedStatistics(StatisticsOption):
    name = "recalibrated"

    def recalibration_source(self, x, batch_size, recalibration_data):
        if recalibration_data is not None:
            return recalibration_data
        if isinstance(x, tf.data.Dataset):
            return x
        if isinstance(x, (tf.Tensor, keras.KerasTensor)) or hasattr(x, "shape"):
            return tf.data.Dataset.from_tensor_slices(x).batch(batch_size or 32)
        raise ValueError(
            f"bn_statistics='recalibrated' cannot draw training batches from a {type(x).__name__}: "
            "pass fit(..., recalibration_data=a batched tf.data.Dataset of training images)."
        )

    def end_epoch(self, model):
        if not model._statistics_fresh:
            model.recalibrate_statistics()


OPTIONS = {option.name: option for option in (SharedStatistics, PrivateStatistics, RecalibratedStatistics)}


def get(name, recalibration_batches=batch_norm.DEFAULT_RECALIBRATION_BATCHES):
    """The option object for `bn_statistics=name`; one-line ValueError for a bad one."""
    batch_norm.check_option(name, recalibration_batches)
    return OPTIONS[name](recalibration_batches)
