"""MotivatedModel: the paper's dual-model training (Algorithm 1) as a keras.Model.

The base model trains on every batch except while the motivation condition
holds; then the motivated model, which contains the base, trains instead.
On every switch the weights, BatchNorm statistics and optimizer slots of the
mapped slices are copied through the weights map, and every epoch ends on
the base model.

How the train function is built, and why:
- An optimizer step inside `tf.cond` in *replica* context fails under
  MirroredStrategy (`merge_call` inside control flow). So the mode is chosen
  in *cross-replica* context, each mode's step is a `strategy.run`, and the
  condition update and the copies follow there too, on the loss all-reduced
  across replicas, so every replica takes the same branch.
- Several steps per call (`_execution`): an outer on-device loop whose
  every pass runs the base model's `tf.while_loop`, then the motivated
  model's; each runs while its mode holds and stops after the step whose
  verdict changes it, and the copies run at its end. Inside a loop there is
  no branch on the mode, no switch check and no state write; the counters
  are written once per loop and the logs built once per call. No `tf.cond`
  picks the loop: lowered, it walks every op of the loop not taken. No step
  sits in a `tf.cond` inside a `tf.while_loop` either: a `strategy.run`
  there fails under MirroredStrategy (an unfed placeholder), while loops in
  loops work, so this layout runs on several replicas too; only several
  workers keep a host loop of one-step calls (the end of the data must be
  agreed on by all of them).
- One step per call: `_train_step` (a `tf.cond` on the mode, the switch
  check folded into each branch), or, with several replicas, the host picks
  the current mode's function (`_mode_step`), so that no replica walks the
  other model's step as dead ops.
- All state (the mode flag, the condition's streak, the counters) lives in
  non-trainable variables: it stays on the device, and it is saved by
  `save`, `save_weights` and `BackupAndRestore`.
"""

import functools
import time

import keras
import tensorflow as tf

from keras_motivation import batch_norm
from keras_motivation import conditions as conditions_lib
from keras_motivation import keras_internals
from keras_motivation import state as state_lib
from keras_motivation import summary as summary_lib
from keras_motivation import weights_map as weights_map_lib

# The motivated model's logs: motivated_loss, motivated_<metric>, val_motivated_...
MOTIVATED_PREFIX = "motivated_"


@keras.saving.register_keras_serializable(package="keras_motivation")
@keras_internals.replaces_symbolic_build
class MotivatedModel(keras.Model):
    """A base model and a motivated model that contains it, trained by one `fit`.

    Args:
        base: the small model X, a built `keras.Model`.
        motivated: the bigger model Y containing X, a built `keras.Model`.
        weights_map: a `WeightsMap`, the name of a rule in
            `keras_motivation.weights_map.RULES` (e.g. "resnet_depth"), or a
            callable `(base, motivated) -> WeightsMap`.
        condition: a `keras_motivation.conditions.Condition`; default
            `ConsecutiveDecrease(k=2)`.
        bn_statistics: whose BatchNorm moving statistics each model is
            evaluated, saved and exported with (`keras_motivation.batch_norm`):
            `"recalibrated"` (default: each model's own, recomputed from
            `recalibration_batches` training batches at every epoch end,
            before validation), `"private"` (each model's own, updated only by
            its own steps; free) or `"shared"` (the paper's: copied with the
            weights at every switch). Training is the same under all three.
        recalibration_batches: training batches per recalibration.

    `model(x)` and `predict` use the base model; `model.base` and
    `model.motivated` are the two deployable models. Training logs per batch
    `batch_loss` (the raw loss that drives the condition) and `motivated`
    (1.0 when that batch was trained by the motivated model); `loss` and the
    compiled metrics are the base model's over the batches it trained, and
    `motivated_loss`, `motivated_<metric>` the motivated model's over its
    batches. Per epoch, `motivated_steps` and `switches`. `evaluate` reports
    the compiled metrics of both models.
    """

    def __init__(
        self,
        base,
        motivated,
        weights_map="resnet_depth",
        condition=None,
        bn_statistics=batch_norm.DEFAULT_BN_STATISTICS,
        recalibration_batches=batch_norm.DEFAULT_RECALIBRATION_BATCHES,
        name="motivated_model",
        **kwargs,
    ):
        batch_norm.check_option(bn_statistics, recalibration_batches)
        super().__init__(name=name, **kwargs)
        for label, m in (("base", base), ("motivated", motivated)):
            if not isinstance(m, keras.Model) or not m.built:
                raise ValueError(f"MotivatedModel needs a built keras.Model as `{label}`, got {m!r}.")
        if base is motivated:
            raise ValueError("`base` and `motivated` must be two different models.")
        self.base = base
        self.motivated = motivated
        self.weights_map = weights_map_lib.get(weights_map, base, motivated)
        self.condition = conditions_lib.get(condition)
        self.bn_statistics = bn_statistics
        self.recalibration_batches = recalibration_batches
        # Pre-step state of the batch: True while the motivated model holds the
        # live weights of the mapped slices.
        self._motivated_active = self._state("motivated_active", "bool", False)
        self._total_steps = self._state("total_steps", "int32", 0)
        self._motivated_steps = self._state("motivated_steps", "int32", 0)
        self._switches = self._state("switches", "int32", 0)
        self._activations = self._state("activations", "int32", 0)
        # Batches each model's BatchNorm statistics were recomputed from
        # (forward passes that count as training compute).
        self._recalibration_batches_done = self._state("recalibration_batches", "int32", 0)
        self.motivated_optimizer = None
        self._motivated_metrics = None
        self._slot_entries = []
        self._copies = []
        self._finish_epoch_fn = None
        self._recalibration_data = None
        self._statistics_fresh = False
        self.built = True

    def _state(self, name, dtype, value):
        return state_lib.state_variable(self, name, dtype, value)

    def call(self, inputs, training=None):
        return self.base(inputs, training=training)

    # -- compile ---------------------------------------------------------------

    def compile(
        self, optimizer="rmsprop", loss=None, motivated_optimizer=None, metrics=None, weighted_metrics=None, **kwargs
    ):
        """Like `keras.Model.compile`, with a second optimizer for the motivated model.

        Args:
            motivated_optimizer: the motivated model's optimizer; by default a
                fresh optimizer from the same config as `optimizer` that shares
                its learning-rate variable: every change of
                `model.optimizer.learning_rate` (ReduceLROnPlateau,
                LearningRateScheduler, your code) applies to both models. An
                optimizer you pass keeps its own rate: set
                `model.motivated_optimizer.learning_rate` yourself (e.g. in a
                callback next to the one that sets the base's), or give both
                the same LearningRateSchedule.
        """
        if loss is None:
            raise ValueError("MotivatedModel.compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'.")
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, weighted_metrics=weighted_metrics, **kwargs)
        base_opt = keras_internals.inner_optimizer(self.optimizer)
        default_optimizer = motivated_optimizer is None
        if default_optimizer:
            motivated_optimizer = type(base_opt).from_config(base_opt.get_config())
            # One learning-rate variable for both: callbacks and user code set the base's.
            keras_internals.share_learning_rate(base_opt, motivated_optimizer)
        motivated_optimizer = keras.optimizers.get(motivated_optimizer)
        if motivated_optimizer is base_opt:
            raise ValueError("`motivated_optimizer` must be a different optimizer object from `optimizer`.")
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer) and not isinstance(
            motivated_optimizer, keras.optimizers.LossScaleOptimizer
        ):
            # compile() wrapped the first optimizer for mixed precision.
            motivated_optimizer = keras.optimizers.LossScaleOptimizer(
                motivated_optimizer, name="motivated_loss_scale_optimizer"
            )
        self.motivated_optimizer = motivated_optimizer
        # The default is rebuilt (sharing again) when a saved model is compiled.
        keras_internals.set_compile_argument(
            self, "motivated_optimizer", None if default_optimizer else motivated_optimizer
        )
        compile_metrics = None
        if metrics is not None or weighted_metrics is not None:
            compile_metrics = keras_internals.PrefixedCompileMetrics(
                metrics, weighted_metrics, prefix=MOTIVATED_PREFIX, output_names=getattr(self, "output_names", None)
            )
        # A plain holder, not attributes: Keras would track them in the
        # model's metrics list and keep stale ones across re-compiles.
        self._motivated_metrics = _MotivatedMetrics(keras.metrics.Mean(name="motivated_loss"), compile_metrics)
        # Build both optimizers up front: a Keras optimizer is bound to the
        # variables it was built with, and nothing is left for fit() to build
        # lazily from a (possibly distributed) data batch.
        with self.distribute_strategy.scope():
            self.optimizer.build(self.base.trainable_variables)
            self.motivated_optimizer.build(self.motivated.trainable_variables)
        # The copy lists below are attributes, so Keras counts the slots in
        # them among this model's own variables, which `save` writes. A
        # re-compile brings new optimizers: the old ones' slots leave that
        # list, or a load (which compiles once) finds variables it does not
        # expect. The order of what stays is the order a single compile makes.
        keras_internals.untrack(self, [v for e in self._slot_entries for v in (e.base, e.motivated)])
        self._slot_entries = _slot_entries(self.weights_map, self.optimizer, self.motivated_optimizer)
        entries = self.weights_map.entries
        if self.bn_statistics != "shared":
            own = {id(v) for v in batch_norm.moving_statistics(self.base)}
            entries = [e for e in entries if id(e.base) not in own]
        self._copies = entries + self._slot_entries
        self._finish_epoch_fn = None

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return keras_internals.serialized_compile_config(self)

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)

    @property
    def metrics(self):
        metrics = super().metrics
        if self.compiled and getattr(self, "_motivated_metrics", None) is not None:
            metrics += [m for m in self._motivated_metrics if m is not None]
        return metrics

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Keras' symbolic build calls this once to create the metric state:
        # create both models' metrics then.
        compile_metrics = keras_internals.compiled_metrics(self)
        if compile_metrics is not None:
            compile_metrics.update_state(y, y_pred, sample_weight)
        if self._motivated_metrics.compile_metrics is not None:
            self._motivated_metrics.compile_metrics.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    # -- the steps -----------------------------------------------------------

    def _loss(self, model, y, y_pred, sample_weight):
        """compute_loss for one of the two models: compiled loss + its own losses."""
        losses = [keras_internals.compiled_loss(self)(y, y_pred, sample_weight)]
        losses += [keras_internals.additional_loss(self, extra) for extra in model.losses]
        return losses[0] if len(losses) == 1 else keras.ops.sum(losses)

    def _metrics_of(self, model):
        if model is self.base:
            return keras_internals.loss_tracker(self), keras_internals.compiled_metrics(self)
        return self._motivated_metrics

    def _replica_train_step(self, model, optimizer, data):
        """One optimizer step of `model` (replica context); returns the scaled loss."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = self._loss(model, y, y_pred, sample_weight)
            scaled = optimizer.scale_loss(loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        signals = self.condition.replica_signals(model, keras_internals.compiled_loss(self), gradients)
        loss_tracker, metrics = self._metrics_of(model)
        loss_tracker.update_state(_unscale(loss), sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
        if metrics is not None:
            metrics.update_state(y, y_pred, sample_weight)
        return loss, signals

    def _step(self, motivated, data, run=None):
        """One step of the model `motivated` names (a Python bool) and the
        condition's verdict (cross-replica context).

        `run`: `_run_step` compiled for that mode (XLA), else `_run_step`.
        Returns the replica-averaged raw loss and the mode for the next batch.
        """
        loss, signals = run(data) if run is not None else self._run_step(motivated, data)
        return loss, tf.convert_to_tensor(self.condition.update(loss, tf.constant(motivated), signals))

    def _run_step(self, motivated, data):
        """The optimizer step of one mode on every replica: (loss, signals), reduced."""
        strategy = self.distribute_strategy
        model, optimizer = (self.motivated, self.motivated_optimizer) if motivated else (self.base, self.optimizer)
        loss, signals = strategy.run(lambda d: self._replica_train_step(model, optimizer, d), args=(data,))
        if strategy.num_replicas_in_sync > 1:
            # compute_loss divides by the replica count: the sum is the mean.
            loss = strategy.reduce("SUM", loss, axis=None)
            # Only what the condition asked for is reduced (often nothing).
            signals = {k: strategy.reduce("MEAN", v, axis=None) for k, v in signals.items()}
        return tf.cast(loss, "float32"), signals

    def _count_steps(self, motivated, steps):
        """The step counters after `steps` steps of the mode `motivated` (a Python bool)."""
        self._total_steps.assign_add(steps)
        if motivated:
            self._motivated_steps.assign_add(steps)

    def _train_step(self, data):
        """One step of Algorithm 1 on one batch (cross-replica context).

        The train function runs several steps per call through `_execution`;
        this form serves one step per call, the multi-worker host loop and
        iterators that are not `tf.data` ones.
        """
        active = tf.identity(self._motivated_active.value)
        if self.condition.selects_before_step:
            selected = tf.convert_to_tensor(self.condition.select(active))
            self._switch_from(active, selected)
            active = selected

        loss = tf.cond(active, lambda: self._one_mode_step(True, data), lambda: self._one_mode_step(False, data))
        return self._logs(loss, active)

    def _one_mode_step(self, motivated, data):
        """One step of the mode `motivated` (a Python bool), its count and the
        switch its verdict asks for (the check folded into the mode's branch)."""
        loss, verdict = self._step(motivated, data)
        self._count_steps(motivated, 1)
        self._switch_from(motivated, verdict)
        return loss

    def _mode_step(self, motivated, data):
        """One step of Algorithm 1 when the host knows the mode (a Python
        bool) before the step: no branch on the mode in the graph."""
        return self._logs(self._one_mode_step(motivated, data), tf.constant(motivated))

    def _logs(self, loss, active):
        logs = self.get_metrics_result()
        logs["batch_loss"] = loss
        logs["motivated"] = tf.cast(active, "float32")
        return logs

    def _execution(self, iterator, steps, step_fns):
        """Up to `steps` steps of Algorithm 1 from `iterator`, on the device.

        Each pass of the outer loop runs the base model's loop, then the
        motivated model's: each runs while its mode holds, and stops after
        the step whose verdict changes the mode (or, for conditions that
        select before the step, whose next selection would); the copies
        follow at its end. A loop whose mode does not hold runs no step. No
        `tf.cond` chooses between the two loops: a lowered one would walk
        every op of the loop not taken. Inside a loop there is no branch on
        the mode, no switch check and no state write: the step, the
        condition's update and the fetch of the next batch. The counters are
        written once per loop, the logs built once per call.

        Returns (the number of steps run, the logs of the last step).
        """
        condition = self.condition
        selects = condition.selects_before_step

        def fetch():
            return iterator.get_next_as_optional()

        def mode_run(motivated, done, active, ran, optional, loss):
            """The loop of the mode `motivated` (a Python bool) from the state `active`."""
            if selects:
                selected = tf.convert_to_tensor(condition.select(active))
                self._switch_from(active, selected)
                active = selected

            def cond(i, go, optional, loss, verdict):
                return tf.logical_and(go, optional.has_value())

            def body(i, go, optional, loss, verdict):
                loss, verdict = step_fns[motivated](optional.get_value())
                keep = _equal(verdict, motivated)
                if selects:
                    keep = tf.logical_and(keep, _equal(condition.select(verdict), motivated))
                more = tf.less(i + 1, budget)
                # The next batch is fetched whenever the call has another
                # step, whichever model takes it, so the fetch does not wait
                # for the verdict (under XLA, the end of the whole step): a
                # batch fetched before a change of mode goes to the next loop.
                optional = tf.cond(more, fetch, lambda: optional)
                return i + 1, tf.logical_and(more, keep), optional, loss, verdict

            budget = steps - done
            start = tf.logical_and(_equal(active, motivated), tf.less(done, steps))
            i, _, optional, loss, verdict = tf.while_loop(
                cond, body, (tf.constant(0), start, optional, loss, tf.constant(motivated))
            )
            ran_any = tf.greater(i, 0)
            self._count_steps(motivated, i)
            # A loop that ran no step leaves the mode as it was.
            self._switch_from(motivated, tf.where(ran_any, verdict, motivated))
            done = done + i
            active = tf.where(ran_any, verdict, active)
            ran = tf.where(ran_any, motivated, ran)
            return done, active, ran, optional, loss

        def outer_cond(done, active, ran, optional, loss):
            return tf.logical_and(tf.less(done, steps), optional.has_value())

        def outer_body(done, active, ran, optional, loss):
            for motivated in (False, True):
                done, active, ran, optional, loss = mode_run(motivated, done, active, ran, optional, loss)
            return done, active, ran, optional, loss

        active = tf.identity(self._motivated_active.value)
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
        return done, self._logs(loss, ran)

    def _copy_entries(self):
        """What a switch copies: the mapped weights, optimizer slots and step
        counter, and the BatchNorm moving statistics only when shared."""
        return self._copies

    def _switch_ops(self, motivated):
        """The switch to `motivated` (a Python bool): copies, counters, the mode flag."""
        if motivated:
            weights_map_lib.copy_to_motivated(self._copy_entries())
            self._activations.assign_add(1)
        else:
            weights_map_lib.copy_to_base(self._copy_entries())
        self._switches.assign_add(1)
        self._motivated_active.assign(motivated)
        return tf.constant(True)

    def _switch_from(self, current, motivated):
        """Switches from the mode `current` to `motivated` when they differ.

        Either may be a Python bool; a verdict known when tracing costs no op.
        """
        static_current, static_target = _static_bool(current), _static_bool(motivated)
        if static_current is not None and static_target is not None:
            if static_current != static_target:
                self._switch_ops(static_target)
            return
        keep = lambda: tf.constant(False)  # noqa: E731
        if static_current is not None:
            # The switch check folded into the branch of the current mode.
            tf.cond(tf.equal(motivated, static_current), keep, lambda: self._switch_ops(not static_current))
            return
        if static_target is not None:
            tf.cond(tf.equal(current, static_target), keep, lambda: self._switch_ops(static_target))
            return
        tf.cond(
            tf.equal(motivated, current),
            keep,
            lambda: tf.cond(motivated, lambda: self._switch_ops(True), lambda: self._switch_ops(False)),
        )

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        for model in (self.base, self.motivated):
            y_pred = model(x, training=False)
            loss = self._loss(model, y, y_pred, sample_weight)
            loss_tracker, metrics = self._metrics_of(model)
            loss_tracker.update_state(_unscale(loss), sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
            if metrics is not None:
                metrics.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    # -- the train function ------------------------------------------------------

    def make_train_function(self, force=False):
        """`train_function(iterator) -> logs`, honouring `steps_per_execution`."""
        if self.train_function is not None and not force:
            return self.train_function
        if self.motivated_optimizer is None:
            raise ValueError("Call compile() on the MotivatedModel before fit().")
        strategy = self.distribute_strategy
        jit = bool(self.jit_compile) and strategy.num_replicas_in_sync == 1
        steps = self.steps_per_execution
        compiled = not self.run_eagerly
        one_step = self._train_step
        step_fns = {m: functools.partial(self._step, m) for m in (False, True)}
        if compiled:
            one_step = tf.function(one_step, jit_compile=jit, reduce_retracing=True, autograph=False)
            if jit:
                # The condition's update stays outside XLA: a verdict known
                # when tracing (Never, Always) then costs no op per step, and
                # a bool out of the compiled step cost more than the update.
                for m in (False, True):
                    run = tf.function(
                        functools.partial(self._run_step, m), jit_compile=True, reduce_retracing=True, autograph=False
                    )
                    step_fns[m] = functools.partial(self._step, m, run=run)

        def one_step_on_iterator(iterator):
            # The end of the data raises OutOfRangeError, which Keras turns
            # into the end of the epoch.
            return one_step(iterator.get_next())

        def mode_step_on_iterator(motivated):
            return lambda iterator: self._mode_step(motivated, iterator.get_next())

        mode_steps = {m: mode_step_on_iterator(m) for m in (False, True)}

        def execution(iterator):
            # A closure, not functools.partial: tf.function would canonicalize
            # a partial's bound arguments (the step functions) on every call.
            return self._execution(iterator, steps, step_fns)

        if compiled:
            one_step_on_iterator = tf.function(one_step_on_iterator, reduce_retracing=True, autograph=False)
            mode_steps = {m: tf.function(f, reduce_retracing=True, autograph=False) for m, f in mode_steps.items()}
            execution = tf.function(execution, reduce_retracing=True, autograph=False)
        # Several replicas, one step per call: the host picks the function of
        # the current mode (one flag read per call). A tf.cond over the two
        # modes' steps is lowered to Switch/Merge, and the executor walks
        # every op of the branch not taken, across all replicas; keeping it
        # an unlowered `If` fails to place under MirroredStrategy ("a
        # reference or resource edge connects colocation groups with
        # incompatible assigned devices"). Conditions that select before the
        # step need that select on the device, so they keep the branch.
        host_picks_mode = strategy.num_replicas_in_sync > 1 and not self.condition.selects_before_step
        # Several workers: a host loop of single-step calls (`_host_loop`).
        loop_on_host = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)

        def function(iterator):
            if not isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
                logs = None
                for _, data in zip(range(steps), iterator):
                    logs = one_step(data)
                if logs is None:
                    raise StopIteration
                return logs
            if loop_on_host:
                return _host_loop(iterator, steps, one_step)
            if steps == 1:
                if host_picks_mode:
                    return mode_steps[self.is_motivated](iterator)
                return one_step_on_iterator(iterator)
            done, logs = execution(iterator)
            # A distributed iterator past its end can yield an empty optional
            # instead of raising: only there the host reads the step count.
            if not isinstance(iterator, tf.data.Iterator) and int(done) == 0:
                raise StopIteration
            return logs

        self.train_function = function
        return function

    def make_test_function(self, force=False):
        strategy = self.distribute_strategy
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return super().make_test_function(force)
        if self.test_function is not None and not force:
            return self.test_function

        # Keras 3.15 reduces the scalar metric results with axis=0 under this
        # strategy and fails ("Invalid reduction dimension 0"); reduce here.
        def step(data):
            logs = strategy.run(self.test_step, args=(data,))
            return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

        step = tf.function(step, reduce_retracing=True)

        self.test_function = lambda iterator: _host_loop(iterator, self.steps_per_execution, step)
        return self.test_function

    # -- epoch boundary and fit ------------------------------------------------

    def finish_epoch(self):
        """Ends the epoch on the base model: copies back if the motivated one is active."""
        if not self.is_motivated:
            return  # one flag read instead of a call of the copy function
        if self._finish_epoch_fn is None:
            self._finish_epoch_fn = tf.function(lambda: self._switch_ops(False))
        with self.distribute_strategy.scope():
            self._finish_epoch_fn()

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        recalibration_data=None,
        **kwargs,
    ):
        """`keras.Model.fit`, plus `recalibration_data`: the batched training
        images that option "recalibrated" recomputes BatchNorm statistics from
        (default: `x` when it is a `tf.data.Dataset`, else `x` batched by
        `batch_size`)."""
        if not self.compiled or self.motivated_optimizer is None:
            raise ValueError("Call compile() on the MotivatedModel before fit().")
        self._recalibration_data = self._recalibration_source(x, batch_size, recalibration_data)
        self._statistics_fresh = False
        boundary = EpochBoundary(callbacks)
        if isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks.callbacks.insert(0, boundary)
            boundary.set_model(self)
        else:
            callbacks = [boundary] + list(callbacks or [])
        return super().fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks, **kwargs)

    def _recalibration_source(self, x, batch_size, recalibration_data):
        if recalibration_data is not None or self.bn_statistics != "recalibrated":
            return recalibration_data
        if isinstance(x, tf.data.Dataset):
            return x
        if isinstance(x, (tf.Tensor, keras.KerasTensor)) or hasattr(x, "shape"):
            return tf.data.Dataset.from_tensor_slices(x).batch(batch_size or 32)
        raise ValueError(
            f"bn_statistics='recalibrated' cannot draw training batches from a {type(x).__name__}: "
            "pass fit(..., recalibration_data=a batched tf.data.Dataset of training images)."
        )

    def evaluate(self, *args, **kwargs):
        if keras_internals.is_fit_validation(kwargs):
            # fit() validates before on_epoch_end: the epoch ends here.
            self.close_epoch()
        return super().evaluate(*args, **kwargs)

    def open_epoch(self, epoch, steps_per_epoch=None):
        """The epoch start (`EpochBoundary` calls it): BatchNorm statistics
        are stale again, and the condition learns the epoch."""
        self._statistics_fresh = False
        self.condition.on_epoch_begin(epoch, steps_per_epoch)

    def close_epoch(self, recalibration_data=None):
        """The epoch boundary: back on the base model, and (option
        "recalibrated") both models' BatchNorm statistics recomputed, once.

        Args:
            recalibration_data: replaces the training batches `fit` was given.
        """
        if recalibration_data is not None:
            self._recalibration_data = recalibration_data
        self.finish_epoch()
        if self.bn_statistics == "recalibrated" and not self._statistics_fresh:
            self.recalibrate_statistics()

    def recalibrate_statistics(self, data=None):
        """Recomputes both models' BatchNorm statistics from training batches.

        Args:
            data: a batched dataset; by default the one `fit` trained on (or
                its `recalibration_data`).
        """
        data = self._recalibration_data if data is None else data
        if data is None:
            raise ValueError(
                "No training data to recompute BatchNorm statistics from: pass "
                "fit(..., recalibration_data=dataset) or recalibrate_statistics(dataset)."
            )
        self.finish_epoch()
        used = 0
        with self.distribute_strategy.scope():
            for model in (self.base, self.motivated):
                used = batch_norm.recalibrate(model, data, self.recalibration_batches)
        self._recalibration_batches_done.assign_add(used)
        self._statistics_fresh = True

    # -- state for users, callbacks and tools ---------------------------------------

    @property
    def is_motivated(self):
        """True while the motivated model holds the live weights (mid-epoch only)."""
        return bool(self._motivated_active.numpy())

    def counters(self):
        """Totals since training began: steps, motivated_steps, switches, activations."""
        return {
            "steps": int(self._total_steps.numpy()),
            "motivated_steps": int(self._motivated_steps.numpy()),
            "switches": int(self._switches.numpy()),
            "activations": int(self._activations.numpy()),
            "recalibration_batches": int(self._recalibration_batches_done.numpy()),
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

    # -- serialization -----------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "base": keras.saving.serialize_keras_object(self.base),
            "motivated": keras.saving.serialize_keras_object(self.motivated),
            "weights_map": self.weights_map.get_config(),
            "condition": keras.saving.serialize_keras_object(self.condition),
            "bn_statistics": self.bn_statistics,
            "recalibration_batches": self.recalibration_batches,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        base = keras.saving.deserialize_keras_object(config.pop("base"), custom_objects=custom_objects)
        motivated = keras.saving.deserialize_keras_object(config.pop("motivated"), custom_objects=custom_objects)
        wmap = weights_map_lib.WeightsMap.from_config(config.pop("weights_map"), base, motivated)
        condition = keras.saving.deserialize_keras_object(config.pop("condition"), custom_objects=custom_objects)
        return cls(base, motivated, weights_map=wmap, condition=condition, **config)


class EpochBoundary(keras.callbacks.Callback):
    """Ends every epoch on the base model (with recomputed BatchNorm
    statistics under bn_statistics="recalibrated") and logs the epoch's motivation counts:
    `motivated_steps`, `switches`, `activations` (switches into the motivated
    model), `motivated_share` (motivated share of the steps) and
    `mean_activation_length` (motivated steps per activation).

    `MotivatedModel.fit` puts it first in the callback list, so the switch back
    happens (and `motivated_steps` / `switches` are in the logs) before any
    other callback sees the end of the epoch. When `fit` validates, the switch
    back already happened before validation (see `MotivatedModel.evaluate`).

    `callbacks`: the other callbacks of the `fit`. Those that watch a
    motivated metric (EarlyStopping, ModelCheckpoint, ReduceLROnPlateau with
    `monitor="val_motivated_accuracy"`, ...) get that metric's direction from
    the base's (`val_accuracy`), as Keras would find it, before they first
    need it at the end of the first epoch.
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
        self.model.open_epoch(epoch, self.params.get("steps"))

    def on_epoch_end(self, epoch, logs=None):
        for callback in self._others:
            keras_internals.resolve_prefixed_monitor(callback, MOTIVATED_PREFIX)
        self.model.close_epoch()
        end = self.model.counters()
        start, self._start = self._start, end
        if logs is not None:
            # Per-batch quantities: the last batch's value means nothing per epoch.
            logs.pop("batch_loss", None)
            logs.pop("motivated", None)
            epoch_counts = {k: end[k] - start[k] for k in end}
            logs["motivated_steps"] = epoch_counts["motivated_steps"]
            logs["switches"] = epoch_counts["switches"]
            logs["activations"] = epoch_counts["activations"]
            logs["motivated_share"] = summary_lib.share_of_steps(epoch_counts)
            logs["mean_activation_length"] = (
                epoch_counts["motivated_steps"] / epoch_counts["activations"] if epoch_counts["activations"] else 0.0
            )


class _MotivatedMetrics:
    """The motivated model's loss tracker and compile metrics (not a container
    type, so that Keras' attribute tracking leaves it alone)."""

    def __init__(self, loss_tracker, compile_metrics):
        self.loss_tracker = loss_tracker
        self.compile_metrics = compile_metrics

    def __iter__(self):
        return iter((self.loss_tracker, self.compile_metrics))


def _static_bool(value):
    """`value` as a Python bool when known when tracing, else None."""
    if isinstance(value, bool):
        return value
    static = tf.get_static_value(value)
    return None if static is None else bool(static)


def _equal(value, python_bool):
    """`value == python_bool` as a tensor, a constant when `value` is known when tracing."""
    static = _static_bool(value)
    if static is not None:
        return tf.constant(static == python_bool)
    return tf.equal(value, python_bool)


def _host_loop(iterator, steps, step):
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


def _unscale(loss):
    return loss * tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)


def _slot_entries(weights_map, base_optimizer, motivated_optimizer):
    """Weights-map entries for every optimizer slot of the mapped trainable variables."""
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
