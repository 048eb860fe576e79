"""The `bn_statistics` option as objects that own their behaviour.

Whose BatchNorm moving statistics each model is evaluated, saved and
exported with (`keras_motivation.batch_norm` explains why it matters):
`SharedStatistics` (the paper's: copied with the weights at every switch),
`PrivateStatistics` (each model's own, updated by its own steps) and
`RecalibratedStatistics` (private, and recomputed from training batches
where they are stale when something reads them: before a validation,
`evaluate`, `predict`, `save`, `export` and at the end of `fit`; see below).
Training is the same under all three.

`StatisticsState` is what the model knows about its statistics: whether
training (or a load) changed the weights since they were last recomputed,
and the training batches a recomputation draws from.

Only what is stale is recomputed. Moving statistics are an exponential
average: `new = momentum * old + (1 - momentum) * batch`. Where a rung's own
forward pass updated them on every step since its weights last changed
otherwise (a training step of another rung that did not update them, a
switch's copy, a load), what is older weighs `momentum ** steps` in them:
below `STALE_WEIGHT` they describe the weights they are read with as plain
Keras' statistics do, which evaluation reads as they are. After growth the
joint step updates every rung's statistics on every batch, so after one
recomputation nothing is stale. `stale_rungs` finds the rest from the step
counters (a rung's weight of the past is 1 after any interval with a step
that did not update it), and where the largest rung is stale, its family
(`evaluation.py`) recomputes every rung's statistics in one pass per batch,
the trunk's once.
"""

import logging
import time
import types

import keras
import tensorflow as tf

from keras_motivation import batch_norm
from keras_motivation import keras_internals
from keras_motivation.engine import evaluation as evaluation_lib

_log = logging.getLogger("keras_motivation")

# Why the statistics are stale: training steps changed the weights, or a
# weights file replaced them (whose statistics may or may not be recomputed).
TRAINED, LOADED = "trained", "loaded"
# The weight in a rung's moving statistics of values older than the last change of its weights that its own
# steps did not follow, above which they are recomputed when read (0.99 ** 690 with Keras' default momentum).
STALE_WEIGHT = 1e-3


class StatisticsState:
    """The model's knowledge of its BatchNorm statistics (a plain object: the train
    function marks it at every call, and a Keras attribute write would cost more)."""

    def __init__(self):
        self.stale = None  # None (as recomputed, or as built/loaded), TRAINED or LOADED
        self.source = None  # the training batches a recomputation draws from
        self.unavailable = None  # why `fit` found none (a notice), or None
        self.last_batches = 0  # batches per model of the last recomputation in this process
        self.notified = False
        self.seconds = (0.0, 0.0)  # wall-clock and CPU seconds of every recomputation in this process
        self.past_weights = None  # per rung, the weight of stale values in its statistics (None: 1 each)
        self.counted = None  # the step counters when `past_weights` was last brought up to date
        # (batches, the Keras models that ran: the stale rungs, or the largest and the smaller rungs' tails, the
        # training step it came after) of each recomputation in this process: what they cost (summary.json's FLOPs).
        self.passes = []


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
        rungs = stale_rungs(model)
        if not rungs:
            state.stale = None
            return 0
        used = model._recompute_statistics(state.source, rungs)
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


def _tails(model):
    """{smaller rung j: its tail's model} of the model's family (`evaluation.py`), {} without one."""
    family = evaluation_lib.family(model)
    return {} if family is None else {j: t.model for j, t in enumerate(family.plan.tails)}


def _momenta(model):
    """Per rung, the largest momentum of its BatchNorm layers (the slowest to forget; 0 without any)."""
    return [max((float(layer.momentum) for layer in batch_norm.batch_norm_layers(m)), default=0.0) for m in model.rungs]


def _mode_steps(counters, rungs):
    """Steps of each mode (rung) in `counters` (`MotivatedModel.counters()`)."""
    if "rung_steps" in counters:
        return list(counters["rung_steps"])
    return [counters["steps"] - counters["motivated_steps"], counters["motivated_steps"]][:rungs]


def stale_rungs(model):
    """The rungs whose moving statistics are stale now (module docstring), their weights of the past brought up to
    date from the step counters: a rung whose own pass ran on each step since (its steps, and with a joint step
    every bigger rung's) keeps `momentum ** steps` of it, any other 1 (where such a step fell is not known)."""
    state = model._statistics_state
    rungs = len(model.rungs)
    weights = list(state.past_weights or [1.0] * rungs)
    counters = model.counters()
    if state.stale == LOADED or state.counted is None:
        # A load, or statistics no step has counted: of weights unknown.
        weights, since = [1.0] * rungs, None
    else:
        since = [a - b for a, b in zip(_mode_steps(counters, rungs), _mode_steps(state.counted, rungs))]
    if since is not None:
        total = sum(since)
        for r, momentum in enumerate(_momenta(model)):
            updated = sum(since[r:]) if model.joint is not None else since[r]
            weights[r] = weights[r] * momentum**total if updated == total else 1.0
    state.past_weights, state.counted = weights, counters
    return [r for r, w in enumerate(weights) if w > STALE_WEIGHT]


def _is_arrays(x):
    """What `fit` slices into batches itself: an array or a structure (list, tuple, dict) of arrays."""
    if isinstance(x, (list, tuple)):
        return bool(x) and all(_is_arrays(v) for v in x)
    if isinstance(x, dict):
        return bool(x) and all(_is_arrays(v) for v in x.values())
    return isinstance(x, (tf.Tensor, keras.KerasTensor)) or hasattr(x, "__array__") or hasattr(x, "shape")


class StatisticsReads(evaluation_lib.OnePassReads):
    """What reads the BatchNorm statistics, mixed into `MotivatedModel`: each recomputes them first
    (option "recalibrated") where they are stale; evaluation and prediction then take one pass where they can
    (`evaluation.OnePassReads`)."""

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
        statistics were last read (option "recalibrated": the next read recomputes those that are stale)."""
        return bool(self._statistics_state.stale)

    @property
    def recalibration_seconds(self):
        """(wall-clock, CPU) seconds this process spent recomputing BatchNorm statistics (a run's breakdown)."""
        return self._statistics_state.seconds

    @property
    def recalibration_passes(self):
        """(batches, the Keras models that ran, the training step it came after) of each recomputation of
        BatchNorm statistics in this process: the stale rungs' models, or their family's one pass (the largest
        model and each smaller rung's tail, `evaluation.Family`). Its batches add up to what this process added
        to `counters()`'s."""
        return list(self._statistics_state.passes)

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
        # The counters are the file's: every rung's statistics count as stale.
        self._statistics_state.counted = None
        if not self._statistics_state.stale:
            self._statistics_state.stale = LOADED
        return result

    def statistics_record(self):
        """What the model knows of its statistics beyond the weights (option "recalibrated": whether training
        changed them since the last read, each rung's weight of the past in them and the counters it was
        brought up to date at, the recomputations so far), as JSON. A backup keeps it beside the weights, so that
        a resumed run recomputes what the uninterrupted run would (`restore_statistics_record`)."""
        state = self._statistics_state
        index = {id(m): r for r, m in enumerate(self.rungs)}
        index.update({id(m): f"tail{j}" for j, m in _tails(self).items()})
        return {
            "stale": state.stale,
            "past_weights": state.past_weights,
            "counted": state.counted,
            "passes": [[batches, [index[id(m)] for m in ran], step] for batches, ran, step in state.passes],
        }

    def restore_statistics_record(self, record):
        """Takes back a `statistics_record` after the weights it was kept with are loaded (None: nothing)."""
        if not record:
            return
        state = self._statistics_state
        models = {**dict(enumerate(self.rungs)), **{f"tail{j}": m for j, m in _tails(self).items()}}
        state.stale, state.past_weights, state.counted = record["stale"], record["past_weights"], record["counted"]
        state.passes = [(batches, tuple(models[r] for r in ran), step) for batches, ran, step in record["passes"]]

    def refresh_statistics(self):
        """Recomputes the BatchNorm statistics that are stale (option "recalibrated": the module docstring says
        which) if training changed the weights since the last read; what reads them calls it. Returns the
        batches recomputed per model (0: nothing to do)."""
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

    def _recompute_statistics(self, data, rungs=None):
        """The statistics of `rungs` (default: every rung) from `data`, with the weights as they are (no switch: a
        read in the middle of an epoch leaves the training as it was): where the largest rung is among them, every
        rung's in one pass of its family (`evaluation.recompute_family`) when its trunks hold the same weights;
        counted."""
        start = time.perf_counter(), time.process_time()
        state = self._statistics_state
        top = len(self.rungs) - 1
        rungs = list(range(top + 1)) if rungs is None else rungs
        stale_rungs(self)  # the others' weights of the past, up to date
        step = state.counted["steps"]
        used = 0
        with self.distribute_strategy.scope():
            family = evaluation_lib.recompute_family(self, data, self.recalibration_batches) if top in rungs else None
            if family is not None:
                (used, ran), rungs = family, range(top + 1)
            else:
                ran = tuple(self.rungs[r] for r in rungs)
                for model in ran:
                    used = batch_norm.recalibrate(model, data, self.recalibration_batches)
        state.passes.append((used, ran, step))
        self._recalibrated_batches.assign_add(used)
        for r in rungs:
            state.past_weights[r] = 0.0
        state.stale, state.last_batches = None, used
        state.seconds = tuple(
            s + now - t for s, now, t in zip(state.seconds, (time.perf_counter(), time.process_time()), start)
        )
        return used


OPTIONS = {option.name: option for option in (SharedStatistics, PrivateStatistics, RecalibratedStatistics)}


def get(name, recalibration_batches=batch_norm.DEFAULT_RECALIBRATION_BATCHES):
    """The option object for `bn_statistics=name`; one-line ValueError for a bad one."""
    batch_norm.check_option(name, recalibration_batches)
    return OPTIONS[name](recalibration_batches)
