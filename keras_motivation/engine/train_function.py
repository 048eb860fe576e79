"""The loops around the step: one train function per execution path.

Keras keeps `train_step` apart from the code that builds the loop around it
(`keras/src/backend/tensorflow/trainer.py`); so does this engine. The model
gives the steps (`MotivatedModel._algorithm_step`, `_known_mode_step`,
`_mode_step`); this module builds `train_function(iterator) -> logs`,
honouring `steps_per_execution`:

- Several steps per call (`device_loop`): an outer on-device loop whose
  every pass runs one `tf.while_loop` per mode (the base model's, then the
  motivated model's); each runs while its mode holds and stops after the
  step whose verdict changes it, and the copies run at its end. Inside a
  loop there is no branch on the mode, no switch check and no state write;
  the counters are written once per loop and the logs built once per call.
  No `tf.cond` picks the loop: lowered, it walks every op of the loop not
  taken. No step sits in a `tf.cond` inside a `tf.while_loop` either: a
  `strategy.run` there fails under MirroredStrategy (an unfed placeholder),
  while loops in loops work, so this layout runs on several replicas too.
- One step per call: the model's `_algorithm_step` (a `tf.cond` on the mode,
  the switch check folded into each branch), or, with several replicas, the
  host picks the current mode's function (`_known_mode_step`), so that no
  replica walks the other model's step as dead ops.
- Several workers (`host_loop`): one-step calls from the host, since the end
  of the data must be agreed on by all of them.
"""

import functools

import tensorflow as tf

from keras_motivation.engine.statistics import TRAINED
from keras_motivation.engine.switching import MODES
from keras_motivation.engine.switching import static_bool


def _equal(value, mode):
    """`value == mode` as a tensor, a constant when `value` is known when tracing."""
    static = static_bool(value)
    if static is not None:
        return tf.constant(static == mode)
    return tf.equal(value, mode)


def host_loop(iterator, steps, step):
    """Up to `steps` calls of `step` on the batches of a multi-worker iterator;
    the logs of the last. The end of the data is the one all workers agree on
    (get_next_as_optional): past it such an iterator can yield empty batches
    instead of raising."""
    logs = None
    for _ in range(steps):
        optional = iterator.get_next_as_optional()
        if not bool(optional.has_value()):
            break
        logs = step(optional.get_value())
    if logs is None:
        raise StopIteration
    return logs


def device_loop(model, iterator, steps, step_fns):
    """Up to `steps` steps of Algorithm 1 from `iterator`, on the device.

    Each pass of the outer loop runs each mode's loop in turn (`MODES`):
    each runs while its mode holds, and stops after the step whose verdict
    changes the mode (or, for conditions that select before the step, whose
    next selection would); the copies follow at its end. A loop whose mode
    does not hold runs no step. `step_fns[mode](batch) -> (loss, next mode)`.

    Returns (the number of steps run, the logs of the last step).
    """
    condition = model.condition
    selects = condition.selects_before_step

    def fetch():
        return iterator.get_next_as_optional()

    def mode_run(mode, done, active, ran, optional, loss):
        """The loop of `mode` from the state `active`."""
        if selects:
            selected = tf.convert_to_tensor(condition.select(active))
            model._switch_from(active, selected)
            active = selected

        def cond(i, go, optional, loss, verdict):
            return tf.logical_and(go, optional.has_value())

        def body(i, go, optional, loss, verdict):
            loss, verdict = step_fns[mode](optional.get_value())
            keep = _equal(verdict, mode)
            if selects:
                keep = tf.logical_and(keep, _equal(condition.select(verdict), mode))
            more = tf.less(i + 1, budget)
            # The next batch is fetched whenever the call has another step,
            # whichever model takes it, so the fetch does not wait for the
            # verdict (under XLA, the end of the whole step): a batch fetched
            # before a change of mode goes to the next loop.
            optional = tf.cond(more, fetch, lambda: optional)
            return i + 1, tf.logical_and(more, keep), optional, loss, verdict

        budget = steps - done
        start = tf.logical_and(_equal(active, mode), tf.less(done, steps))
        i, _, optional, loss, verdict = tf.while_loop(
            cond, body, (tf.constant(0), start, optional, loss, tf.constant(mode))
        )
        ran_any = tf.greater(i, 0)
        model._count_steps(mode, i)
        # A loop that ran no step leaves the mode as it was.
        model._switch_from(mode, tf.where(ran_any, verdict, mode))
        done = done + i
        active = tf.where(ran_any, verdict, active)
        ran = tf.where(ran_any, mode, ran)
        return done, active, ran, optional, loss

    def outer_cond(done, active, ran, optional, loss):
        return tf.logical_and(tf.less(done, steps), optional.has_value())

    def outer_body(done, active, ran, optional, loss):
        for mode in MODES:
            done, active, ran, optional, loss = mode_run(mode, done, active, ran, optional, loss)
        return done, active, ran, optional, loss

    active = tf.identity(model._motivated_active.value)
    if isinstance(iterator, tf.data.Iterator):
        # The first batch by get_next: at the end of the data the call
        # raises OutOfRangeError (Keras' end of the epoch), so the host
        # never reads a result to find it and calls stay asynchronous.
        first = tf.experimental.Optional.from_value(iterator.get_next())
    else:
        first = fetch()
    done, _, ran, _, loss = tf.while_loop(
        outer_cond, outer_body, (tf.constant(0), active, active, first, tf.constant(float("nan")))
    )
    return done, model._logs(loss, ran)


def _function(fn, jit_compile=False):
    return tf.function(fn, jit_compile=jit_compile, reduce_retracing=True, autograph=False)


def make_train_function(model):
    """`train_function(iterator) -> logs` of `model` for its strategy, `steps_per_execution` and XLA setting."""
    strategy = model.distribute_strategy
    jit = bool(model.jit_compile) and strategy.num_replicas_in_sync == 1
    steps = model.steps_per_execution
    compiled = not model.run_eagerly
    one_step = model._algorithm_step
    step_fns = {mode: functools.partial(model._mode_step, mode) for mode in MODES}
    if compiled:
        one_step = _function(one_step, jit_compile=jit)
        if jit:
            # The condition's update stays outside XLA: a verdict known when
            # tracing (Never, Always) then costs no op per step, and a bool
            # out of the compiled step cost more than the update.
            for mode in MODES:
                update = _function(functools.partial(model._mode_update, mode), jit_compile=True)
                step_fns[mode] = functools.partial(model._mode_step, mode, update=update)

    def one_step_on_iterator(iterator):
        # The end of the data raises OutOfRangeError, which Keras turns into
        # the end of the epoch.
        return one_step(iterator.get_next())

    def known_mode_step_on_iterator(mode):
        return lambda iterator: model._known_mode_step(mode, iterator.get_next())

    known_mode_steps = {mode: known_mode_step_on_iterator(mode) for mode in MODES}

    def execution(iterator):
        # A closure, not functools.partial: tf.function would canonicalize a
        # partial's bound arguments (the step functions) on every call.
        return device_loop(model, iterator, steps, step_fns)

    if compiled:
        one_step_on_iterator = _function(one_step_on_iterator)
        known_mode_steps = {mode: _function(f) for mode, f in known_mode_steps.items()}
        execution = _function(execution)
    # Several replicas, one step per call: the host picks the function of the
    # current mode (one flag read per call). A tf.cond over the modes' steps
    # is lowered to Switch/Merge, and the executor walks every op of the
    # branch not taken, across all replicas; keeping it an unlowered `If`
    # fails to place under MirroredStrategy ("a reference or resource edge
    # connects colocation groups with incompatible assigned devices").
    # Conditions that select before the step need that select on the device,
    # so they keep the branch.
    host_picks_mode = strategy.num_replicas_in_sync > 1 and not model.condition.selects_before_step
    loop_on_host = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    # Every call trains: the BatchNorm statistics are stale until the next read recomputes them.
    statistics_state = model._statistics_state

    def function(iterator):
        statistics_state.stale = TRAINED
        if not isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            logs = None
            for _, data in zip(range(steps), iterator):
                logs = one_step(data)
            if logs is None:
                raise StopIteration
            return logs
        if loop_on_host:
            return host_loop(iterator, steps, one_step)
        if steps == 1:
            if host_picks_mode:
                return known_mode_steps[model.is_motivated](iterator)
            return one_step_on_iterator(iterator)
        done, logs = execution(iterator)
        # A distributed iterator past its end can yield an empty optional
        # instead of raising: only there the host reads the step count.
        if not isinstance(iterator, tf.data.Iterator) and int(done) == 0:
            raise StopIteration
        return logs

    return function


def make_multi_worker_test_function(model):
    """`test_function(iterator) -> logs` under MultiWorkerMirroredStrategy.

    Keras 3.15 reduces the scalar metric results with axis=0 under this
    strategy and fails ("Invalid reduction dimension 0"); reduce here.
    """
    strategy = model.distribute_strategy

    def step(data):
        logs = strategy.run(model.test_step, args=(data,))
        return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

    step = tf.function(step, reduce_retracing=True)
    return lambda iterator: host_loop(iterator, model.steps_per_execution, step)
