"""The loops around the step: one train function per execution path.

Keras keeps `train_step` apart from the code that builds the loop around it
(`keras/src/backend/tensorflow/trainer.py`); so does this engine. Every path
calls the model's one public `MotivatedModel.train_step`; this module builds
`train_function(iterator) -> logs`, honouring `steps_per_execution`:

- Several steps per call (`device_loop`): an outer on-device loop whose
  every pass runs one `tf.while_loop` per mode (the base's, then each bigger
  model's); each runs while its mode holds and stops after the step whose
  verdict changes it. The loop traces `train_step` with its mode known, so
  there is no branch on the mode inside a loop. No `tf.cond` picks the loop:
  lowered, it walks every op of the loop not taken. No step sits in a
  `tf.cond` inside a `tf.while_loop` either: a `strategy.run` there fails
  under MirroredStrategy (an unfed placeholder), while loops in loops work,
  so this layout runs on several replicas too.
- One step per call: `train_step` reads the mode on the device (a `tf.cond`
  for a pair, a `tf.switch_case` for a ladder, the switch check folded into
  each branch), or, with several replicas, the host picks the current mode's
  function, so that no replica walks another model's step as dead ops.
- Several workers (`host_loop`): one-step calls from the host, since the end
  of the data must be agreed on by all of them.
"""

import tensorflow as tf

from keras_motivation.engine.statistics import TRAINED


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


def device_loop(model, iterator, steps):
    """Up to `steps` steps of Algorithm 1 from `iterator`, on the device.

    Each pass of the outer loop runs each mode's loop in turn (`model.modes`):
    each runs while its mode is the one chosen for the next batch (the live
    rung, or the condition's choice before the step where it makes one:
    `MotivatedModel._chosen_mode`), and stops after the step whose verdict
    changes it. A loop whose mode is not chosen runs no step. `train_step`
    makes the switch into the chosen rung, as on every path.

    Returns (the number of steps run, the logs of the last step: every key `train_step` returned).
    """

    def fetch():
        return iterator.get_next_as_optional()

    def chosen():
        return model._chosen_mode(tf.identity(model._mode.value))

    def mode_run(mode, done, optional, logs):
        """The loop of `mode` from the current state."""

        def cond(i, go, optional, logs):
            return tf.logical_and(go, optional.has_value())

        def body(i, go, optional, logs):
            logs = model._train_step_in_mode(mode, optional.get_value())
            more = tf.less(i + 1, budget)
            # The next batch is fetched whenever the call has another step,
            # whichever model takes it, so the fetch does not wait for the
            # verdict (under XLA, the end of the whole step): a batch fetched
            # before a change of mode goes to the next loop.
            optional = tf.cond(more, fetch, lambda: optional)
            return i + 1, tf.logical_and(more, tf.equal(chosen(), mode)), optional, logs

        budget = steps - done
        start = tf.logical_and(tf.equal(chosen(), mode), tf.less(done, steps))
        i, _, optional, logs = tf.while_loop(cond, body, (tf.constant(0), start, optional, logs))
        return done + i, optional, logs

    def outer_cond(done, optional, logs):
        return tf.logical_and(tf.less(done, steps), optional.has_value())

    def outer_body(done, optional, logs):
        for mode in model.modes:
            done, optional, logs = mode_run(mode, done, optional, logs)
        return done, optional, logs

    if isinstance(iterator, tf.data.Iterator):
        # The first batch by get_next: at the end of the data the call
        # raises OutOfRangeError (Keras' end of the epoch), so the host
        # never reads a result to find it and calls stay asynchronous.
        first = tf.experimental.Optional.from_value(iterator.get_next())
    else:
        first = fetch()
    done, _, logs = tf.while_loop(outer_cond, outer_body, (tf.constant(0), first, _empty_logs(model, first)))
    return done, logs


def _empty_logs(model, optional):
    """Logs shaped like those `train_step` returns, which the loops carry (zeros; a loss of NaN): the
    engine's own, or, where a subclass overrides `train_step`, read from a trace of it."""
    if model._train_step_is_the_engines:
        return model._logs(tf.constant(float("nan")), tf.identity(model._mode.value))
    traced = tf.function(lambda data: model._train_step_in_mode(model.modes[0], data), autograph=False)
    outputs = traced.get_concrete_function(optional.element_spec).structured_outputs
    return tf.nest.map_structure(lambda t: tf.zeros(t.shape, t.dtype), outputs)


def _function(fn, jit_compile=False):
    return tf.function(fn, jit_compile=jit_compile, reduce_retracing=True, autograph=False)


def make_train_function(model):
    """`train_function(iterator) -> logs` of `model` for its strategy, `steps_per_execution` and XLA setting."""
    strategy = model.distribute_strategy
    jit = bool(model.jit_compile) and strategy.num_replicas_in_sync == 1
    steps = model.steps_per_execution
    compiled = not model.run_eagerly

    def one_step(data):
        return model.train_step(data)

    model._ladder.compiled_updates = {}
    if compiled:
        one_step = _function(one_step, jit_compile=jit)
        if jit and steps > 1:
            # In the device loop the condition's update stays outside XLA: a
            # verdict known when tracing (Never, Always) then costs no op per
            # step, and a bool out of the compiled step cost more than the update.
            update = _function(model._mode_update, jit_compile=True)
            model._ladder.compiled_updates = {mode: update for mode in model.modes}

    def one_step_on_iterator(iterator):
        # The end of the data raises OutOfRangeError, which Keras turns into
        # the end of the epoch.
        return one_step(iterator.get_next())

    def known_mode_step_on_iterator(mode):
        return lambda iterator: model._train_step_in_mode(mode, iterator.get_next())

    known_mode_steps = {mode: known_mode_step_on_iterator(mode) for mode in model.modes}

    def execution(iterator):
        return device_loop(model, iterator, steps)

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
        if statistics_state.counted is None:
            # From here on each rung's weight of the past in its statistics follows the steps (statistics.py).
            statistics_state.counted, statistics_state.past_weights = model.counters(), None
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
                return known_mode_steps[model.mode](iterator)
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
