"""MotivatedModel: the paper's dual-model training (Algorithm 1) as a keras.Model, for a pair or a ladder.

The class holds construction, compile, `train_step`, the test step and `fit`;
the package's other modules hold the switching (`switching.py`), the loops
around the step (`train_function.py`), the BatchNorm option and what reads
the statistics (`statistics.py`), the joint step (`joint.py`) and what Keras
asks of any model: summary, weights, metrics, config, saving (`keras_habits.py`).
`keras_motivation.engine` says what a mode is and where a new one plugs in.
"""

from collections.abc import Callable
from collections.abc import Sequence

import keras
import tensorflow as tf

from keras_motivation import conditions as conditions_lib
from keras_motivation import keras_internals
from keras_motivation import weights_map as weights_map_lib
from keras_motivation.batch_norm import DEFAULT_BN_STATISTICS
from keras_motivation.batch_norm import DEFAULT_RECALIBRATION_BATCHES
from keras_motivation.engine import epoch as epoch_lib
from keras_motivation.engine import evaluation as evaluation_lib
from keras_motivation.engine import joint as joint_lib
from keras_motivation.engine import keras_habits
from keras_motivation.engine import ladder as ladder_lib
from keras_motivation.engine import shared_forward as shared_forward_lib
from keras_motivation.engine import statistics as statistics_lib
from keras_motivation.engine import switching
from keras_motivation.engine import train_function as train_function_lib


@keras.saving.register_keras_serializable(package="keras_motivation")
@keras_internals.replaces_symbolic_build
class MotivatedModel(
    switching.Switching, statistics_lib.StatisticsReads, epoch_lib.EpochHooks, keras_habits.KerasHabits, keras.Model
):
    """A base model and bigger models that contain it, trained by one `fit`.

    A pair: `MotivatedModel(base, motivated, weights_map, condition)`. A
    ladder of nested models m0 ⊂ m1 ⊂ ... (deploy several sizes from one
    run): `MotivatedModel(models=[m0, m1, m2], weights_map="resnet_depth")`;
    a pair is the ladder of two, `base` is m0 and `motivated` the largest.

    Args:
        base: the small model X, a built `keras.Model`.
        motivated: the bigger model Y containing X, a built `keras.Model`.
        weights_map: a `WeightsMap` (a pair), the name of a rule in
            `keras_motivation.weights_map.RULES` (e.g. "resnet_depth") or a
            callable `(smaller, bigger) -> WeightsMap`, applied to each
            neighbouring pair of rungs, or a list of those, one per pair.
        condition: a `keras_motivation.conditions.Condition`; default
            `ConsecutiveDecrease(k=2)`. Its verdict is the rung that trains
            the next batch (for a pair, True: the motivated model).
        bn_statistics: whose BatchNorm moving statistics each model is
            evaluated, saved and exported with (`keras_motivation.batch_norm`):
            "recalibrated" (the default: each model's own, recomputed from
            training batches when read where stale: `statistics.py`),
            "private" (each model's own, free) or "shared" (the paper's).
        recalibration_batches: training batches per recalibration.
        joint: None (the paper's: a rung's mode trains that model alone) or a
            `JointStep` (also True, or a dict of its arguments): a mode above
            the base trains its model and every smaller rung on each of its
            batches, one optimizer update of its variables
            (`keras_motivation.engine.joint`).
        models: the ladder's models, smallest first (instead of `base` and
            `motivated`).
        policy (Policy | None): a policy object (`keras_motivation.policy.get("paper")`,
            `policy.DEFAULT`: anything with `model_arguments()`): the
            condition, joint step and statistics option that `condition`,
            `joint` and `bn_statistics` leave unset (the start and the
            re-warm-up are the trainer's: `identity_start`, `recipes.Rewarmed`).

    `model(x)` and `predict` use the base model, `predict_every_rung` every
    model; `model.base`, `model.motivated` (and `model.rungs`, smallest
    first) are the deployable models; `summary()`, `get_weights()` and
    `set_weights()` are theirs, smallest first
    (`keras_motivation.engine.keras_habits`). Training logs per batch
    `batch_loss` (the raw loss that drives the condition) and `motivated`
    (the rung that trained the batch: 1.0 for the motivated model of a
    pair); `loss` and the compiled metrics are the base model's over the
    batches it trained, `motivated_loss`, `motivated_<metric>` the largest
    model's over its batches and, in a ladder, `rung<i>_loss`,
    `rung<i>_<metric>` those of the models between. Per epoch, the counts
    of `EpochBoundary` (`motivated_steps`, `switches`, ...; in a ladder
    `rung<i>_steps` too). `evaluate` reports the compiled metrics of every
    model (in one pass where it can: `evaluation.py`).
    """

    def __init__(
        self,
        base: keras.Model | None = None,
        motivated: keras.Model | None = None,
        weights_map: weights_map_lib.WeightsMap | str | Callable | Sequence = "resnet_depth",
        condition: conditions_lib.Condition | str | None = None,
        bn_statistics: str | None = None,
        recalibration_batches: int = DEFAULT_RECALIBRATION_BATCHES,
        joint: joint_lib.JointStep | bool | dict | None = None,
        models: Sequence[keras.Model] | None = None,
        policy=None,
        name: str = "motivated_model",
        **kwargs,
    ):
        if policy is not None:
            if not callable(getattr(policy, "model_arguments", None)):
                raise ValueError(
                    "MotivatedModel(policy=...) takes a policy object, e.g. keras_motivation.policy.get('paper') or "
                    f"keras_motivation.policy.DEFAULT, got {policy!r}."
                )
            arguments = policy.model_arguments()
            condition = arguments["condition"] if condition is None else condition
            joint = arguments["joint"] if joint is None else joint
            bn_statistics = arguments["bn_statistics"] if bn_statistics is None else bn_statistics
        bn_statistics = DEFAULT_BN_STATISTICS if bn_statistics is None else bn_statistics
        models = ladder_lib.rung_models(base, motivated, models)
        joint = joint_lib.get(joint)
        if joint is not None:
            joint.check_models(len(models))
        option = statistics_lib.get(bn_statistics, recalibration_batches)
        super().__init__(name=name, **kwargs)
        # Each model is an attribute (what `save` writes: base, motivated, rung1, ...); the list is a
        # plain tuple in a holder, or Keras would save every model a second time under the list's name.
        self.base, self.motivated = models[0], models[-1]
        for i, model in enumerate(models[1:-1], start=1):
            setattr(self, f"rung{i}", model)
        maps = ladder_lib.neighbour_maps(models, weights_map)
        self._ladder = ladder_lib.Ladder(tuple(models))
        # The weights map of each neighbouring pair of rungs, smallest first; a pair's one map.
        self.weights_maps = tuple(maps)
        self.weights_map = maps[0]
        self.condition = conditions_lib.get(condition)
        self.condition.set_rungs(len(models))
        self.joint = joint
        self.shared_forward, self.shared_forward_unavailable = None, None
        if joint is not None:
            self._ladder.views = joint_lib.ladder_views(maps)
            if joint.shared_forward:
                # Each rung's joint step's shared forward pass (None: separate passes; `shared_forward_unavailable`
                # says why for the biggest model's); `shared_forward` is the biggest model's.
                for r in range(1, len(models)):
                    plan, why = shared_forward_lib.find([weights_map_lib.compose(maps[j:r]) for j in range(r)])
                    self._ladder.plans[r] = plan
                self.shared_forward, self.shared_forward_unavailable = plan, why
        self._statistics = option
        self.create_switch_state(len(models))
        self.motivated_optimizer = None
        self._slot_entries = []
        self._statistics_state = statistics_lib.StatisticsState()
        self._trace = ladder_lib.Trace()
        self.built = True

    @property
    def shared_forward_plans(self):
        """{rung r: the `SharedForward` of its joint step} for the rungs that have one."""
        return {r: plan for r, plan in self._ladder.plans.items() if plan is not None}

    @property
    def rungs(self):
        """The models, smallest first: the base, ..., the motivated model."""
        return self._ladder.models

    def call(self, inputs, training=None):
        return self.base(inputs, training=training)

    # -- compile ---------------------------------------------------------------

    def compile(
        self, optimizer="rmsprop", loss=None, motivated_optimizer=None, metrics=None, weighted_metrics=None, **kwargs
    ):
        """Like `keras.Model.compile`, with an optimizer for each bigger model.

        Args:
            motivated_optimizer (keras.optimizers.Optimizer | str | None): the
                motivated model's optimizer; by default a fresh optimizer from
                the same config as `optimizer` that shares its learning-rate
                variable: every change of
                `model.optimizer.learning_rate` (ReduceLROnPlateau,
                LearningRateScheduler, your code) applies to every model. An
                optimizer you pass keeps its own rate: set
                `model.motivated_optimizer.learning_rate` yourself (e.g. in a
                callback next to the one that sets the base's), or give both
                the same LearningRateSchedule. A ladder's models between take
                fresh optimizers like the default.
        """
        if loss is None:
            raise ValueError("MotivatedModel.compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'.")
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, weighted_metrics=weighted_metrics, **kwargs)
        base_opt = keras_internals.inner_optimizer(self.optimizer)
        default_optimizer = motivated_optimizer is None
        if default_optimizer:
            motivated_optimizer = ladder_lib.fresh_optimizer(base_opt)
        motivated_optimizer = keras.optimizers.get(motivated_optimizer)
        if motivated_optimizer is base_opt:
            raise ValueError("`motivated_optimizer` must be a different optimizer object from `optimizer`.")
        self.motivated_optimizer = ladder_lib.scaled_like(self.optimizer, motivated_optimizer, "motivated")
        for i in range(1, len(self.rungs) - 1):
            fresh = ladder_lib.fresh_optimizer(base_opt)
            setattr(self, f"rung{i}_optimizer", ladder_lib.scaled_like(self.optimizer, fresh, f"rung{i}"))
        # The default is rebuilt (sharing again) when a saved model is compiled.
        keras_internals.set_compile_argument(
            self, "motivated_optimizer", None if default_optimizer else self.motivated_optimizer
        )
        self._ladder.metrics = [None] + [
            ladder_lib.RungMetrics(i, len(self.rungs), metrics, weighted_metrics, getattr(self, "output_names", None))
            for i in range(1, len(self.rungs))
        ]
        # Build every optimizer up front: a Keras optimizer is bound to the
        # variables it was built with, and nothing is left for fit() to build
        # lazily from a (possibly distributed) data batch.
        with self.distribute_strategy.scope():
            for model, opt in zip(self.rungs, self.optimizers):
                opt.build(model.trainable_variables)
        # The copy lists below are attributes, so Keras counts the slots in
        # them among this model's own variables, which `save` writes. A
        # re-compile brings new optimizers: the old ones' slots leave that
        # list, or a load (which compiles once) finds variables it does not
        # expect. The order of what stays is the order a single compile makes.
        keras_internals.untrack(self, [v for e in self._slot_entries for v in (e.base, e.motivated)])
        slots = [
            switching.slot_entries(m, lower, upper)
            for m, lower, upper in zip(self.weights_maps, self.optimizers, self.optimizers[1:])
        ]
        self._slot_entries = [e for s in slots for e in s]
        self.set_copies([self._statistics.copies(m.base, m.entries) + s for m, s in zip(self.weights_maps, slots)])

    @property
    def optimizers(self):
        """Each rung's optimizer, smallest first (after `compile`)."""
        middle = [getattr(self, f"rung{i}_optimizer") for i in range(1, len(self.rungs) - 1)]
        return (self.optimizer, *middle, self.motivated_optimizer)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Keras' symbolic build calls this once to create the metric state:
        # create every model's metrics then.
        for rung in range(len(self.rungs)):
            metrics = self._metrics_of(rung)[1]
            if metrics is not None:
                metrics.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    # -- the step ----------------------------------------------------------------
    # A mode is a rung index (a Python int while tracing, see `keras_motivation.engine`):
    # the model it trains and whose variables are live.

    def train_step(self, data):
        """One step of Algorithm 1 on one batch: the mode, its update, the condition, the switch.

        Every execution path calls it (one step per call, the on-device loop
        of `steps_per_execution`, XLA, several replicas, several workers), so a
        subclass that overrides it changes training on every path. Unlike
        Keras' `train_step`, which runs on each replica (inside
        `strategy.run`), this one runs in cross-replica context: an optimizer
        step inside a `tf.cond` fails under MirroredStrategy, so the mode is
        chosen here and each mode's update is a `strategy.run`; the loss that
        drives the condition is all-reduced, so every replica takes the same
        branch. Where the path knows the mode when tracing (the device loop
        runs one loop per mode; with several replicas the host picks the
        mode's function), the step has no branch on it. With several replicas
        `data` is the distributed batch: an override transforms it per replica
        with `self.distribute_strategy.run(fn, args=(data,))`. Returns the logs;
        the device loop keeps those of a call's last step, every key, built once.
        """
        mode, live = self._trace.mode, tf.identity(self._mode.value)
        # The rung that trains this batch: where the path knows it when tracing (the device loop runs each
        # rung's steps while `_chosen_mode` names it), the same choice.
        chosen = self._chosen_mode(live) if mode is None else mode
        if self.condition.selects_before_step:
            # After a device loop's first step the live rung is already the chosen one: a branch not taken, about
            # 25 µs of CPU a step for ResNet-8 in ResNet-14's 59 copies (2000 in a loop, median of 5, 2026-12-07).
            self._switch_from(live, chosen)
        loss = self._branch(chosen, lambda m: self._counted_mode_step(m, data))
        return self._logs(loss, chosen)

    def _chosen_mode(self, live):
        """The rung that trains the next batch, `live` the one that holds the live weights: the condition's
        choice before the step where it makes one (`selects_before_step`: Growth, Always, the random
        controls), else `live` (the previous step's verdict)."""
        if not self.condition.selects_before_step:
            return live
        return self._verdict(self.condition.select(live))

    @property
    def _train_step_is_the_engines(self):
        """Whether `train_step` is this class's (a subclass may override it)."""
        return type(self).train_step is MotivatedModel.train_step

    def _train_step_in_mode(self, mode, data):
        """`train_step` while the path knows the mode when tracing."""
        previous, self._trace.mode = self._trace.mode, mode
        try:
            return self.train_step(data)
        finally:
            self._trace.mode = previous

    def _verdict(self, verdict):
        """A condition's answer as a mode: a Python int when known when tracing, else an int32 tensor (a
        bool from a condition of a pair written before ladders reads as 0 or 1)."""
        static = switching.static_mode(verdict)
        return static if static is not None else tf.cast(verdict, "int32")

    def _loss(self, model, y, y_pred, sample_weight):
        """compute_loss for one of the models: compiled loss + its own losses."""
        losses = [keras_internals.compiled_loss(self)(y, y_pred, sample_weight)]
        losses += [keras_internals.additional_loss(self, extra) for extra in model.losses]
        return losses[0] if len(losses) == 1 else keras.ops.sum(losses)

    def _metrics_of(self, rung):
        if rung == 0:
            return keras_internals.loss_tracker(self), keras_internals.compiled_metrics(self)
        return tuple(self._ladder.metrics[rung])

    def _track(self, rung, x, y, y_pred, loss, sample_weight):
        """Updates the loss tracker and metrics of model `rung` with one batch."""
        loss_tracker, metrics = self._metrics_of(rung)
        loss_tracker.update_state(_unscale(loss), sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
        if metrics is not None:
            metrics.update_state(y, y_pred, sample_weight)

    def _replica_update(self, mode, data):
        """One optimizer step of model `mode` on one replica; returns (scaled loss, condition signals)."""
        model, optimizer = self.rungs[mode], self.optimizers[mode]
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = self._loss(model, y, y_pred, sample_weight)
            scaled = optimizer.scale_loss(loss)
        signals = self._apply_gradients(model, optimizer, tape, scaled)
        self._track(mode, x, y, y_pred, loss, sample_weight)
        return loss, signals

    def _apply_gradients(self, model, optimizer, tape, scaled, scales=None):
        """One update of `model`'s variables from `tape`'s `scaled` loss, each gradient times its `scales`
        entry where one is given (not None); returns the condition's signals."""
        variables = model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        if scales is not None:
            gradients = [g if s is None else tf.convert_to_tensor(g) * s for g, s in zip(gradients, scales)]
        optimizer.apply_gradients(zip(gradients, variables))
        return self.condition.replica_signals(model, keras_internals.compiled_loss(self), gradients)

    def _mode_update(self, mode, data):
        """The optimizer step of `mode` on every replica: (loss, signals), reduced."""
        strategy = self.distribute_strategy
        if mode and self.joint is not None:
            replica = lambda d: joint_lib.replica_update(self, mode, d)  # noqa: E731
        else:
            replica = lambda d: self._replica_update(mode, d)  # noqa: E731
        loss, signals = strategy.run(replica, args=(data,))
        if strategy.num_replicas_in_sync > 1:
            # compute_loss divides by the replica count: the sum is the mean.
            loss = strategy.reduce("SUM", loss, axis=None)
            # Only what the condition asked for is reduced (often nothing).
            signals = {k: strategy.reduce("MEAN", v, axis=None) for k, v in signals.items()}
        return tf.cast(loss, "float32"), signals

    def _counted_mode_step(self, mode, data):
        """The step of `mode`, the condition's verdict, the step's count and the switch the verdict
        asks for (the check folded into the mode's branch); returns the replica-averaged raw loss."""
        update = self._ladder.compiled_updates.get(mode, self._mode_update)
        loss, signals = update(mode, data)
        verdict = self._verdict(self.condition.update(loss, mode, signals))
        self._count_steps(mode, 1)
        self._switch_from(mode, verdict)
        return loss

    def _logs(self, loss, active):
        """The logs of a step: the metrics, the raw loss that drove the condition, the rung that trained."""
        logs = self.get_metrics_result()
        logs["batch_loss"] = loss
        logs["motivated"] = tf.cast(active, "float32")
        return logs

    # -- the train and test functions ----------------------------------------------

    def make_train_function(self, force=False):
        """`train_function(iterator) -> logs`, honouring `steps_per_execution` (`train_function.py`)."""
        if self.train_function is not None and not force:
            return self.train_function
        if self.motivated_optimizer is None:
            raise ValueError("Call compile() on the MotivatedModel before fit().")
        self.train_function = train_function_lib.make_train_function(self)
        return self.train_function

    def make_test_function(self, force=False):
        force = evaluation_lib.test_sharing_changed(self) or force
        if not isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return super().make_test_function(force)
        if self.test_function is None or force:
            self.test_function = train_function_lib.make_multi_worker_test_function(self)
        return self.test_function

    # -- fit and the epoch boundary ----------------------------------------------

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
        (default: drawn from `x`, whatever `fit` accepts: a `tf.data.Dataset`
        or a PyDataset read again, arrays batched by `batch_size`, a Python
        generator's last batches as `fit` read them)."""
        if not self.compiled or self.motivated_optimizer is None:
            raise ValueError("Call compile() on the MotivatedModel before fit().")
        state = self._statistics_state
        x, state.source, state.unavailable = self._statistics.fit_source(x, batch_size, recalibration_data)
        state.notified = False
        boundary = epoch_lib.EpochBoundary(callbacks)
        if isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks.callbacks.insert(0, boundary)
            boundary.set_model(self)
        else:
            callbacks = [boundary] + list(callbacks or [])
        return super().fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks, **kwargs)


def _unscale(loss):
    return loss * tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)
