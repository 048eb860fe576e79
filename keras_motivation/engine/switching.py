"""Which model holds the live weights: the switch state, the copies, the counters.

`Switching` is a mixin of `MotivatedModel` (as Keras mixes its `Trainer`
into `Model`): the state lives in the model's own non-trainable variables,
so it is saved with the model, and the names and order of those variables
are the file format (`create_switch_state`).
"""

import time

import tensorflow as tf

from keras_motivation import keras_internals
from keras_motivation import state as state_lib
from keras_motivation import weights_map as weights_map_lib

# The motivated model's logs: motivated_loss, motivated_<metric>, val_motivated_...
MOTIVATED_PREFIX = "motivated_"

# The modes are Python bools while tracing: True trains the motivated model.
BASE, MOTIVATED = False, True
MODES = (BASE, MOTIVATED)


def share_of_steps(counters):
    """Motivated share of the training steps, from `counters()` totals or an epoch's differences."""
    return counters["motivated_steps"] / counters["steps"] if counters["steps"] else 0.0


def static_bool(value):
    """`value` as a Python bool when known when tracing, else None."""
    if isinstance(value, bool):
        return value
    static = tf.get_static_value(value)
    return None if static is None else bool(static)


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
    """The switch between the two models, mixed into `MotivatedModel`."""

    def create_switch_state(self):
        """The state variables, in the order saved files hold them."""

        def state(name, dtype):
            return state_lib.state_variable(self, name, dtype, False if dtype == "bool" else 0)

        # Pre-step state of the batch: True while the motivated model holds
        # the live weights of the mapped slices.
        self._motivated_active = state("motivated_active", "bool")
        self._total_steps = state("total_steps", "int32")
        self._motivated_steps = state("motivated_steps", "int32")
        self._switches = state("switches", "int32")
        self._activations = state("activations", "int32")
        # Batches each model's BatchNorm statistics were recomputed from
        # (forward passes that count as training compute).
        self._recalibrated_batches = state("recalibration_batches", "int32")
        self._copies = []
        self._switch_to_base_fn = None

    def set_copies(self, entries):
        """What a switch copies: weights-map entries (the mapped weights, the
        optimizer slots and step counter, BatchNorm statistics only when shared)."""
        self._copies = entries
        self._switch_to_base_fn = None

    def _copy_entries(self):
        return self._copies

    def _count_steps(self, mode, steps):
        """The step counters after `steps` steps of `mode`."""
        self._total_steps.assign_add(steps)
        if mode:
            self._motivated_steps.assign_add(steps)

    def _switch_ops(self, mode):
        """The switch into `mode`: copies, counters, the mode flag."""
        if mode:
            weights_map_lib.copy_to_motivated(self._copy_entries())
            self._activations.assign_add(1)
        else:
            weights_map_lib.copy_to_base(self._copy_entries())
        self._switches.assign_add(1)
        self._motivated_active.assign(mode)
        return tf.constant(True)

    def _switch_from(self, current, target):
        """Switches from the mode `current` to `target` when they differ.

        Either may be a Python bool; a verdict known when tracing costs no op.
        """
        static_current, static_target = static_bool(current), static_bool(target)
        if static_current is not None and static_target is not None:
            if static_current != static_target:
                self._switch_ops(static_target)
            return
        keep = lambda: tf.constant(False)  # noqa: E731
        if static_current is not None:
            # The switch check folded into the branch of the current mode.
            tf.cond(tf.equal(target, static_current), keep, lambda: self._switch_ops(not static_current))
            return
        if static_target is not None:
            tf.cond(tf.equal(current, static_target), keep, lambda: self._switch_ops(static_target))
            return
        tf.cond(
            tf.equal(target, current),
            keep,
            lambda: tf.cond(target, lambda: self._switch_ops(MOTIVATED), lambda: self._switch_ops(BASE)),
        )

    def switch_to_base(self):
        """Back on the base model: copies back if the motivated one is active."""
        if not self.is_motivated:
            return  # one flag read instead of a call of the copy function
        if self._switch_to_base_fn is None:
            self._switch_to_base_fn = tf.function(lambda: self._switch_ops(BASE))
        with self.distribute_strategy.scope():
            self._switch_to_base_fn()

    @property
    def is_motivated(self):
        """True while the motivated model holds the live weights (mid-epoch only)."""
        return bool(self._motivated_active.numpy())

    def counters(self):
        """Totals since training began: `steps`, `motivated_steps`, `switches`,
        `activations` (switches into the motivated model) and
        `recalibration_batches` (batches BatchNorm statistics were recomputed
        from, per model)."""
        return {
            "steps": int(self._total_steps.numpy()),
            "motivated_steps": int(self._motivated_steps.numpy()),
            "switches": int(self._switches.numpy()),
            "activations": int(self._activations.numpy()),
            "recalibration_batches": int(self._recalibrated_batches.numpy()),
        }

    def time_switch(self, repeats=10, clock=time.perf_counter):
        """Measured seconds of one switch, the mean of both directions.

        Times what this run's switches copy (`_copy_entries`: the mapped
        weights, optimizer slots and step counter, BatchNorm statistics only
        when shared): `repeats` round trips base -> motivated -> base in one
        compiled call, after an untimed call that traces it. Every variable
        the copies touch is restored afterwards, so training state is as
        before.

        Args:
            repeats: round trips timed.
            clock: `time.perf_counter` (wall-clock) or `time.process_time`
                (CPU time of this process, all threads).
        """
        if not isinstance(repeats, int) or repeats < 1:
            raise ValueError(f"time_switch needs repeats >= 1 (an int), got {repeats!r}.")
        if self.motivated_optimizer is None:
            raise ValueError("Call compile() on the MotivatedModel before time_switch().")
        entries = self._copy_entries()
        touched = list({id(v): v for e in entries for v in (e.base, e.motivated)}.values())
        saved = [v.numpy() for v in touched]

        def round_trip(i):
            weights_map_lib.copy_to_motivated(entries)
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
                return (clock() - start) / repeats / 2
            finally:
                for v, value in zip(touched, saved):
                    v.assign(value)
