"""Which model holds the live weights: the switch state, the copies, the counters.

`Switching` is a mixin of `MotivatedModel` (as Keras mixes its `Trainer`
into `Model`): the state lives in the model's own non-trainable variables,
so it is saved with the model, and the names and order of those variables
are the file format (`create_switch_state`).
"""

import time

import numpy as np
import tensorflow as tf

from keras_motivation import keras_internals
from keras_motivation import state as state_lib
from keras_motivation import weights_map as weights_map_lib

# The motivated model's logs: motivated_loss, motivated_<metric>, val_motivated_...
MOTIVATED_PREFIX = "motivated_"


def rung_prefix(rung, rungs):
    """The log prefix of a rung's loss and metrics: none for the base, `motivated_` for the largest
    model, `rung<i>_` for the models between (a ladder of more than two)."""
    if rung == 0:
        return ""
    return MOTIVATED_PREFIX if rung == rungs - 1 else f"rung{rung}_"


def share_of_steps(counters):
    """Motivated share of the training steps, from `counters()` totals or an epoch's differences."""
    return counters["motivated_steps"] / counters["steps"] if counters["steps"] else 0.0


def mean_activation_length(counters):
    """Steps above the base per activation (a switch up), from `counters()` totals or an epoch's differences:
    a pair's motivated steps per activation; a ladder's steps of every bigger rung per switch up."""
    above = counters["steps"] - counters["rung_steps"][0] if "rung_steps" in counters else counters["motivated_steps"]
    return above / counters["activations"] if counters["activations"] else 0.0


def rung_counts(counters):
    """A ladder's per-rung epoch logs from `counters()` totals or an epoch's differences: `rung<i>_steps` and
    `rung<i>_share` of each model between the base and the largest (whose are `motivated_steps` and
    `motivated_share`); nothing for a pair."""
    steps = counters.get("rung_steps", [])[1:-1]
    out = {}
    for i, n in enumerate(steps, start=1):
        out[f"rung{i}_steps"] = n
        out[f"rung{i}_share"] = n / counters["steps"] if counters["steps"] else 0.0
    return out


def static_mode(value):
    """`value` (a mode) as a Python int when known when tracing, else None."""
    if isinstance(value, (bool, int)):
        return int(value)
    static = tf.get_static_value(value)
    return None if static is None else int(static)


def slot_entries(weights_map, base_optimizer, motivated_optimizer):
    """Weights-map entries for every optimizer slot of the mapped trainable variables, and the step counter."""
    base_slots = keras_internals.optimizer_slots(base_optimizer)
    mot_slots = keras_internals.optimizer_slots(motivated_optimizer)
    if sorted(base_slots) != sorted(mot_slots):
        raise ValueError(
            "The two optimizers keep different state "
            f"({sorted(base_slots)} vs {sorted(mot_slots)}): use the same optimizer class for both."
        )
    entries = []
    for e in weights_map.entries:
        if not e.base.trainable:
            continue
        bi = keras_internals.slot_index(base_optimizer, e.base)
        mi = keras_internals.slot_index(motivated_optimizer, e.motivated)
        for name in sorted(base_slots):
            b, m = base_slots[name][bi], mot_slots[name][mi]
            if b is not None and m is not None:
                entries.append(weights_map_lib.Entry(b, m, e.start))
    # The step counter: learning-rate schedules and Adam's bias correction see
    # the global step in both states.
    b_opt = keras_internals.inner_optimizer(base_optimizer)
    m_opt = keras_internals.inner_optimizer(motivated_optimizer)
    entries.append(weights_map_lib.Entry(b_opt.iterations, m_opt.iterations, ()))
    return entries


class Switching:
    """The switch between the rungs, mixed into `MotivatedModel`.

    `self._copy_entries(i)` is what a switch across the neighbouring rungs i and
    i + 1 copies; a switch that skips rungs composes the copies through the
    ones between (up: i -> i + 1 -> ...; down: the reverse), so every rung
    on the way holds the live slices too.
    """

    def create_switch_state(self, rungs=2):
        """The state variables, in the order saved files hold them (a ladder's extra counters last)."""

        def state(name, dtype):
            return state_lib.state_variable(self, name, dtype, 0)

        # Pre-step state of the batch: the rung that holds the live weights of the mapped slices. Its
        # name is the saved files' (a bool before ladders: `load_own_variables` reads one as 0 or 1).
        self._mode = state("motivated_active", "int32")
        self._total_steps = state("total_steps", "int32")
        # Steps of the largest model (a pair's motivated steps).
        self._motivated_steps = state("motivated_steps", "int32")
        self._switches = state("switches", "int32")
        # Switches up the ladder (into the motivated model, for a pair).
        self._activations = state("activations", "int32")
        # Batches each model's BatchNorm statistics were recomputed from
        # (forward passes that count as training compute).
        self._recalibrated_batches = state("recalibration_batches", "int32")
        middle = [state(f"rung{i}_steps", "int32") for i in range(1, rungs - 1)]
        self._rung_steps = [None, *middle, self._motivated_steps]
        self._copies = []
        self._neighbour_copies = _NeighbourCopies([[] for _ in range(rungs - 1)])
        self._switch_fns = {}

    @property
    def modes(self):
        """The modes the train function traces, in the order the device loop runs them: the rung indices the
        condition can choose (`Condition.reachable_modes`: every rung, or a growth's base and largest rung)."""
        return tuple(self.condition.reachable_modes())

    def set_copies(self, copies):
        """What a switch copies, per neighbouring pair of rungs: weights-map entries (the mapped
        weights, the optimizer slots and step counter, BatchNorm statistics only when shared)."""
        # The flat list is an attribute, so Keras counts the slots in it among the model's own
        # variables, which `save` writes (`MotivatedModel.compile`); the lists per pair are not.
        self._copies = [e for c in copies for e in c]
        self._neighbour_copies = _NeighbourCopies(copies)
        self._switch_fns = {}

    def _copy_entries(self, i=0):
        return self._neighbour_copies.lists[i]

    def _count_steps(self, mode, steps):
        """The step counters after `steps` steps of `mode`."""
        self._total_steps.assign_add(steps)
        if mode:
            self._rung_steps[mode].assign_add(steps)

    def _switch_ops(self, current, target):
        """The switch from rung `current` to `target` (Python ints): copies, counters, the mode."""
        if target > current:
            for i in range(current, target):
                weights_map_lib.copy_to_motivated(self._copy_entries(i))
            self._activations.assign_add(1)
        else:
            for i in reversed(range(target, current)):
                weights_map_lib.copy_to_base(self._copy_entries(i))
        self._switches.assign_add(1)
        self._mode.assign(target)
        return tf.constant(True)

    def _branch(self, mode, fn):
        """`fn(m)` for the rung `mode` holds: a `tf.cond` for a pair, else a `tf.switch_case` (no branch
        for a mode known when tracing)."""
        static = static_mode(mode)
        if static is not None:
            return fn(static)
        modes = self.modes
        if len(modes) == 1:
            return fn(modes[0])
        if len(modes) == 2:
            return tf.cond(tf.equal(mode, modes[1]), lambda: fn(modes[1]), lambda: fn(modes[0]))
        # More than two modes are every rung (`reachable_modes`): the mode is the branch's index.
        return tf.switch_case(mode, [lambda m=m: fn(m) for m in modes])

    def _switch_from(self, current, target):
        """Switches from the mode `current` to `target` when they differ.

        Either may be a Python int; a verdict known when tracing costs no op.
        """
        static_current, static_target = static_mode(current), static_mode(target)
        if static_current is None:
            self._branch(current, lambda c: self._switch_from(c, target))
            return
        if static_target is not None:
            if static_current != static_target:
                self._switch_ops(static_current, static_target)
            return

        def to(t):
            return tf.constant(False) if t == static_current else self._switch_ops(static_current, t)

        # The switch check folded into the branch of the current mode.
        self._branch(target, to)

    def switch_to_base(self):
        """Back on the base model: copies back down if a bigger rung is active."""
        current = self.mode
        if not current:
            return  # one flag read instead of a call of the copy function
        if current not in self._switch_fns:
            self._switch_fns[current] = tf.function(lambda: self._switch_ops(current, 0))
        with self.distribute_strategy.scope():
            self._switch_fns[current]()

    @property
    def mode(self):
        """The rung that holds the live weights (0, the base, at every epoch boundary)."""
        return int(self._mode.numpy())

    @property
    def is_motivated(self):
        """True while a bigger model than the base holds the live weights (mid-epoch only)."""
        return bool(self.mode)

    def counters(self):
        """Totals since training began: `steps`, `motivated_steps` (the largest
        model's), `switches`, `activations` (switches up: into the motivated
        model, for a pair) and `recalibration_batches` (batches BatchNorm
        statistics were recomputed from, per model); a ladder adds `rung_steps`,
        the steps of each rung."""
        out = {
            "steps": int(self._total_steps.numpy()),
            "motivated_steps": int(self._motivated_steps.numpy()),
            "switches": int(self._switches.numpy()),
            "activations": int(self._activations.numpy()),
            "recalibration_batches": int(self._recalibrated_batches.numpy()),
        }
        if len(self._rung_steps) > 2:
            upper = [int(v.numpy()) for v in self._rung_steps[1:]]
            out["rung_steps"] = [out["steps"] - sum(upper), *upper]
        return out

    def time_switch(self, repeats=10, clock=time.perf_counter):
        """Measured seconds of one switch, the mean of both directions.

        Times what this run's switches copy (`_copies`: the mapped weights,
        optimizer slots and step counter, BatchNorm statistics only when
        shared): `repeats` round trips from the base to the largest model and
        back in one compiled call, after an untimed call that traces it. Every
        variable the copies touch is restored afterwards, so training state is
        as before.

        Args:
            repeats: round trips timed.
            clock: `time.perf_counter` (wall-clock) or `time.process_time`
                (CPU time of this process, all threads).
        """
        if not isinstance(repeats, int) or repeats < 1:
            raise ValueError(f"time_switch needs repeats >= 1 (an int), got {repeats!r}.")
        if self.motivated_optimizer is None:
            raise ValueError("Call compile() on the MotivatedModel before time_switch().")
        copies = self._neighbour_copies.lists
        touched = list({id(v): v for c in copies for e in c for v in (e.base, e.motivated)}.values())
        saved = [v.numpy() for v in touched]

        def round_trip(i):
            for entries in copies:
                weights_map_lib.copy_to_motivated(entries)
            for entries in reversed(copies):
                weights_map_lib.copy_to_base(entries)
            return (i + 1,)

        @tf.function(autograph=False)  # as the train function: no source reading, an explicit loop
        def round_trips(n):
            tf.while_loop(lambda i: i < n, round_trip, (tf.constant(0),))

        n = tf.constant(repeats)
        with self.distribute_strategy.scope():
            try:
                round_trips(n)  # trace, untimed
                start = clock()
                round_trips(n)
                return (clock() - start) / repeats / 2 / len(copies)
            finally:
                for v, value in zip(touched, saved):
                    v.assign(value)


class ModeAsInt:
    """A variable store whose entry `index` (the mode) reads as int32: older files hold a bool."""

    def __init__(self, store, index):
        self._store, self._index = store, str(index)

    def keys(self):
        return self._store.keys()

    def __getitem__(self, key):
        value = self._store[key]
        if key == self._index:
            return np.asarray(value).astype("int32")
        return value


class _NeighbourCopies:
    """The copies of each neighbouring pair of rungs (a plain object: Keras leaves it untracked)."""

    def __init__(self, lists):
        self.lists = lists
