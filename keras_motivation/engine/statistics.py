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
from keras_motivation import keras_internals

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

    def copies(self, lower, entries):
        """The weights-map entries a switch copies, of `entries` (the map from the model `lower` up)."""
        if self.copies_statistics:
            return list(entries)
        own = {id(v) for v in batch_norm.moving_statistics(lower)}
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


class StatisticsReads:
    """What reads the BatchNorm statistics, mixed into `MotivatedModel`: each recomputes them first
    (option "recalibrated") when training changed the weights since they were last recomputed."""

    @property
    def bn_statistics(self):
        """The BatchNorm statistics option's name: shared, private or recalibrated."""
        return self._statistics.name

    @property
    def recalibration_batches(self):
        """Training batches per recalibration (option "recalibrated")."""
        return self._statistics.recalibration_batches

    @property
    def statistics_stale(self):
        """True when training (or `load_weights`) changed the weights since the BatchNorm
        statistics were last recomputed (option "recalibrated": the next read recomputes them)."""
        return bool(self._statistics_state.stale)

    @property
    def last_recalibration_batches(self):
        """Batches per model of the last recomputation of the statistics in this process (0: none)."""
        return self._statistics_state.last_batches

    def evaluate(self, *args, **kwargs):
        if keras_internals.is_fit_validation(kwargs):
            # fit() validates before on_epoch_end: the epoch ends here.
            self.end_epoch()
        self.refresh_statistics()
        return super().evaluate(*args, **kwargs)

    def test_on_batch(self, *args, **kwargs):
        self.refresh_statistics()
        return super().test_on_batch(*args, **kwargs)

    def predict(self, *args, **kwargs):
        self.refresh_statistics()
        return super().predict(*args, **kwargs)

    def predict_on_batch(self, *args, **kwargs):
        self.refresh_statistics()
        return super().predict_on_batch(*args, **kwargs)

    def save(self, *args, **kwargs):
        """`keras.Model.save`, with BatchNorm statistics recomputed first when they are stale.

        `save_weights` is the training state (what Keras' `BackupAndRestore`
        and the trainer's backups write): it saves the statistics as they are.
        """
        self.refresh_statistics()
        return super().save(*args, **kwargs)

    def export(self, *args, **kwargs):
        """`keras.Model.export` of what `call` computes: the base model, with its statistics
        recomputed first when stale (export `model.motivated` for the bigger one). The base is
        exported on its own: the pair holds training state a SavedModel cannot serve."""
        self.refresh_statistics()
        return self.base.export(*args, **kwargs)

    def load_weights(self, *args, **kwargs):
        """`keras.Model.load_weights`; the file's BatchNorm statistics are recomputed at the next
        read when the model knows training batches (a `fit` before, or `end_epoch(data)`)."""
        result = super().load_weights(*args, **kwargs)
        if not self._statistics_state.stale:
            self._statistics_state.stale = LOADED
        return result

    def refresh_statistics(self):
        """Recomputes every model's BatchNorm statistics (option "recalibrated") if training changed
        the weights since they were last recomputed; what reads them calls it. Returns the batches
        recomputed per model (0: nothing to do)."""
        return self._statistics.refresh(self)

    def recalibrate_statistics(self, data=None) -> int:
        """Recomputes every model's BatchNorm statistics from training batches, now.

        Args:
            data (tf.data.Dataset | keras.utils.PyDataset | Iterable | None): batches
                of training images (anything `batch_norm.recalibrate` reads); by
                default the ones `fit` trained on (or its `recalibration_data`).

        Returns:
            The batches recomputed per model.
        """
        data = self._statistics_state.source if data is None else data
        if data is None:
            raise ValueError(
                "No training data to recompute BatchNorm statistics from: pass "
                "fit(..., recalibration_data=dataset) or recalibrate_statistics(dataset)."
            )
        self.switch_to_base()
        return self._recompute_statistics(data)

    def _recompute_statistics(self, data):
        """Every model's statistics from `data`, with the weights as they are (no switch: a read
        in the middle of an epoch leaves the training as it was); counted."""
        used = 0
        with self.distribute_strategy.scope():
            for model in self.rungs:
                used = batch_norm.recalibrate(model, data, self.recalibration_batches)
        self._recalibrated_batches.assign_add(used)
        state = self._statistics_state
        state.stale, state.last_batches = None, used
        return used


OPTIONS = {option.name: option for option in (SharedStatistics, PrivateStatistics, RecalibratedStatistics)}


def get(name, recalibration_batches=batch_norm.DEFAULT_RECALIBRATION_BATCHES):
    """The option object for `bn_statistics=name`; one-line ValueError for a bad one."""
    batch_norm.check_option(name, recalibration_batches)
    return OPTIONS[name](recalibration_batches)
