"""The `bn_statistics` option as objects that own their behaviour.

Whose BatchNorm moving statistics each model is evaluated, saved and
exported with (`keras_motivation.batch_norm` explains why it matters):
`SharedStatistics` (the paper's: copied with the weights at every switch),
`PrivateStatistics` (each model's own, updated by its own steps) and
`RecalibratedStatistics` (private, and recomputed from training batches
whenever they are read after training changed the weights: before a
validation, `evaluate`, `predict`, `save`, `export` and at the end of `fit`;
once per set of weights). Training is the same under all three.

`StatisticsState` is what the model knows about its statistics: whether
training (or a load) changed the weights since they were last recomputed,
and the training batches a recomputation draws from.
"""

import logging
import types

import keras
import tensorflow as tf

from keras_motivation import batch_norm

_log = logging.getLogger("keras_motivation")

# Why the statistics are stale: training steps changed the weights, or a
# weights file replaced them (whose statistics may or may not be recomputed).
TRAINED, LOADED = "trained", "loaded"


class StatisticsState:
    """The model's knowledge of its BatchNorm statistics (a plain object: the train
    function marks it at every call, and a Keras attribute write would cost more)."""

    def __init__(self):
        self.stale = None  # None (as recomputed, or as built/loaded), TRAINED or LOADED
        self.source = None  # the training batches a recomputation draws from
        self.unavailable = None  # why `fit` found none (a notice), or None
        self.last_batches = 0  # batches per model of the last recomputation in this process
        self.notified = False


class StatisticsOption:
    """What one `bn_statistics` option does at compile, at `fit` and when statistics are read."""

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

    def fit_source(self, x, batch_size, recalibration_data):
        """(the `x` that `fit` iterates, the training batches a recomputation draws from, None or a
        notice saying why there are none)."""
        return x, recalibration_data, None

    def refresh(self, model):
        """Called before anything reads the statistics; returns the batches recomputed per model."""
        return 0


class SharedStatistics(StatisticsOption):
    name = "shared"
    copies_statistics = True


class PrivateStatistics(StatisticsOption):
    name = "private"


class RecalibratedStatistics(StatisticsOption):
    name = "recalibrated"

    def fit_source(self, x, batch_size, recalibration_data):
        """Any input `fit` accepts: a `tf.data.Dataset` (also distributed) and a PyDataset are read
        again (a PyDataset by index); arrays are sliced into `batch_size` batches when read; a Python
        generator, which can be read once, is recorded as `fit` reads it (`batch_norm.RecentBatches`:
        the last `recalibration_batches` batches, within `RECENT_BATCHES_MAX_BYTES`); any other
        iterable (a torch DataLoader, a grain dataset) is iterated again."""
        if recalibration_data is not None:
            return x, recalibration_data, None
        if isinstance(x, (tf.data.Dataset, tf.distribute.DistributedDataset, keras.utils.PyDataset)):
            return x, x, None
        if isinstance(x, types.GeneratorType):
            recent = batch_norm.RecentBatches(self.recalibration_batches)
            return recent.record(x), recent, None
        if _is_arrays(x):
            return x, batch_norm.ArrayBatches(x, batch_size), None
        if hasattr(x, "__iter__") and not hasattr(x, "__next__"):
            return x, x, None
        return (
            x,
            None,
            f"bn_statistics='recalibrated' cannot draw training batches again from a {type(x).__name__}: "
            "each model keeps its own moving statistics (as with 'private'); pass "
            "fit(..., recalibration_data=batches of training images) to recompute them.",
        )

    def refresh(self, model):
        state = model._statistics_state
        if not state.stale:
            return 0
        if state.source is None:
            # Nothing to draw from: a loaded file's statistics stay as saved, silently;
            # trained weights keep their private statistics, with one notice.
            if state.stale == TRAINED and not state.notified:
                _log.warning(
                    state.unavailable
                    or "bn_statistics='recalibrated': no training batches to recompute BatchNorm statistics "
                    "from (trained without fit): each model keeps its own moving statistics; call "
                    "recalibrate_statistics(batches) to recompute them."
                )
                state.notified = True
            state.stale = None
            return 0
        used = model._recompute_statistics(state.source)
        source = state.source
        if isinstance(source, batch_norm.RecentBatches) and source.dropped_for_memory and used < source.max_batches:
            if not state.notified:
                _log.warning(
                    f"bn_statistics='recalibrated': BatchNorm statistics recomputed from the generator's last {used} "
                    f"batches ({source.max_batches} asked; at most {batch_norm.RECENT_BATCHES_MAX_BYTES >> 20} MiB "
                    "of them are kept): pass fit(..., recalibration_data=...) for more."
                )
                state.notified = True
        return used


def _is_arrays(x):
    """What `fit` slices into batches itself: an array or a structure (list, tuple, dict) of arrays."""
    if isinstance(x, (list, tuple)):
        return bool(x) and all(_is_arrays(v) for v in x)
    if isinstance(x, dict):
        return bool(x) and all(_is_arrays(v) for v in x.values())
    return isinstance(x, (tf.Tensor, keras.KerasTensor)) or hasattr(x, "__array__") or hasattr(x, "shape")


OPTIONS = {option.name: option for option in (SharedStatistics, PrivateStatistics, RecalibratedStatistics)}


def get(name, recalibration_batches=batch_norm.DEFAULT_RECALIBRATION_BATCHES):
    """The option object for `bn_statistics=name`; one-line ValueError for a bad one."""
    batch_norm.check_option(name, recalibration_batches)
    return OPTIONS[name](recalibration_batches)
