"""MotivatedModel: the paper's dual-model training (Algorithm 1) as a keras.Model.

The class holds construction, compile, the steps, the test step, `fit`,
`evaluate` and the config; the package's other modules hold the switching
(`switching.py`), the loops around the step (`train_function.py`) and the
BatchNorm option (`statistics.py`). `keras_motivation.engine` says what a mode
is and where a new one plugs in.
"""

import keras
import tensorflow as tf

from keras_motivation import conditions as conditions_lib
from keras_motivation import keras_internals
from keras_motivation import weights_map as weights_map_lib
from keras_motivation.batch_norm import DEFAULT_BN_STATISTICS
from keras_motivation.batch_norm import DEFAULT_RECALIBRATION_BATCHES
from keras_motivation.batch_norm import recalibrate
from keras_motivation.engine import epoch as callbacks_lib
from keras_motivation.engine import joint as joint_lib
from keras_motivation.engine import statistics as statistics_lib
from keras_motivation.engine import switching
from keras_motivation.engine import train_function as train_function_lib
from keras_motivation.engine.switching import BASE
from keras_motivation.engine.switching import MOTIVATED


@keras.saving.register_keras_serializable(package="keras_motivation")
@keras_internals.replaces_symbolic_build
class MotivatedModel(switching.Switching, keras.Model):
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
            `recalibration_batches` training batches when they are read after
            training changed the weights: before a validation, `evaluate`,
            `predict`, `save`, `export` and at the end of `fit`, once per set
            of weights), `"private"` (each model's own, updated only by its
            own steps; free) or `"shared"` (the paper's: copied with the
            weights at every switch). Training is the same under all three.
        recalibration_batches: training batches per recalibration.
        joint: None (the paper's: the motivated mode trains the motivated
            model alone) or a `JointStep` (also True, or a dict of its
            arguments): the motivated mode trains both models on each of its
            batches, one optimizer update of the motivated model's variables
            (`keras_motivation.engine.joint`).

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
        bn_statistics=DEFAULT_BN_STATISTICS,
        recalibration_batches=DEFAULT_RECALIBRATION_BATCHES,
        joint=None,
        name="motivated_model",
        **kwargs,
    ):
        joint = joint_lib.get(joint)
        option = statistics_lib.get(bn_statistics, recalibration_batches)
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
        self.joint = joint
        self._joint_views = joint_lib.joint_views(self.weights_map) if joint is not None else None
        self._statistics = option
        self.create_switch_state()
        self.motivated_optimizer = None
        self._motivated_metrics = None
        self._slot_entries = []
        self._statistics_state = statistics_lib.StatisticsState()
        self.built = True

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
                metrics,
                weighted_metrics,
                prefix=switching.MOTIVATED_PREFIX,
                output_names=getattr(self, "output_names", None),
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
        self._slot_entries = switching.slot_entries(self.weights_map, self.optimizer, self.motivated_optimizer)
        self.set_copies(self._statistics.copies(self, self.weights_map.entries) + self._slot_entries)

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return keras_internals.serialized_compile_config(self)

    def load_own_variables(self, store):
        # Compiled, the copy lists are attributes, so `save` writes the mapped
        # weights they hold (trainable, first), then the state variables, then
        # the optimizers' slots (see `compile`). `load_model(..., compile=False)`
        # has no copy lists: take the state variables from their place.
        own = keras_internals.own_variable_count(self)
        if not self.compiled and len(store.keys()) > own:
            copied = {
                id(v) for e in self._statistics.copies(self, self.weights_map.entries) for v in (e.base, e.motivated)
            }
            first = sum(1 for v in self.weights if id(v) in copied and v.trainable)
            store = {str(i): store[str(first + i)] for i in range(own)}
        super().load_own_variables(store)

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

    # -- the steps -------------------------------------------------------------
    # A mode is BASE or MOTIVATED (Python bools while tracing, see
    # `keras_motivation.engine`): the model it trains and whose variables are live.

    def _model_of(self, mode):
        return (self.motivated, self.motivated_optimizer) if mode else (self.base, self.optimizer)

    def _loss(self, model, y, y_pred, sample_weight):
        """compute_loss for one of the two models: compiled loss + its own losses."""
        losses = [keras_internals.compiled_loss(self)(y, y_pred, sample_weight)]
        losses += [keras_internals.additional_loss(self, extra) for extra in model.losses]
        return losses[0] if len(losses) == 1 else keras.ops.sum(losses)

    def _metrics_of(self, model):
        if model is self.base:
            return keras_internals.loss_tracker(self), keras_internals.compiled_metrics(self)
        return self._motivated_metrics

    def _track(self, model, x, y, y_pred, loss, sample_weight):
        """Updates `model`'s loss tracker and metrics with one batch."""
        loss_tracker, metrics = self._metrics_of(model)
        loss_tracker.update_state(_unscale(loss), sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
        if metrics is not None:
            metrics.update_state(y, y_pred, sample_weight)

    def _replica_update(self, model, optimizer, data):
        """One optimizer step of `model` on one replica; returns (scaled loss, condition signals)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = self._loss(model, y, y_pred, sample_weight)
            scaled = optimizer.scale_loss(loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        signals = self.condition.replica_signals(model, keras_internals.compiled_loss(self), gradients)
        self._track(model, x, y, y_pred, loss, sample_weight)
        return loss, signals

    def _mode_update(self, mode, data):
        """The optimizer step of `mode` on every replica: (loss, signals), reduced."""
        strategy = self.distribute_strategy
        model, optimizer = self._model_of(mode)
        if mode and self.joint is not None:
            replica = lambda d: joint_lib.replica_update(self, self.joint, self._joint_views, d)  # noqa: E731
        else:
            replica = lambda d: self._replica_update(model, optimizer, d)  # noqa: E731
        loss, signals = strategy.run(replica, args=(data,))
        if strategy.num_replicas_in_sync > 1:
            # compute_loss divides by the replica count: the sum is the mean.
            loss = strategy.reduce("SUM", loss, axis=None)
            # Only what the condition asked for is reduced (often nothing).
            signals = {k: strategy.reduce("MEAN", v, axis=None) for k, v in signals.items()}
        return tf.cast(loss, "float32"), signals

    def _mode_step(self, mode, data, update=None):
        """The step of `mode` and the condition's verdict (cross-replica context).

        `update`: `_mode_update` compiled for that mode (XLA), else `_mode_update`.
        Returns the replica-averaged raw loss and the mode for the next batch.
        """
        loss, signals = update(data) if update is not None else self._mode_update(mode, data)
        return loss, tf.convert_to_tensor(self.condition.update(loss, tf.constant(mode), signals))

    def _counted_mode_step(self, mode, data):
        """The step of `mode`, its count and the switch its verdict asks for
        (the check folded into the mode's branch)."""
        loss, verdict = self._mode_step(mode, data)
        self._count_steps(mode, 1)
        self._switch_from(mode, verdict)
        return loss

    def _algorithm_step(self, data):
        """One step of Algorithm 1 on one batch, the mode read on the device
        (cross-replica context): one step per call, the multi-worker host
        loop and iterators that are not `tf.data` ones."""
        active = tf.identity(self._motivated_active.value)
        if self.condition.selects_before_step:
            selected = tf.convert_to_tensor(self.condition.select(active))
            self._switch_from(active, selected)
            active = selected
        loss = tf.cond(
            active, lambda: self._counted_mode_step(MOTIVATED, data), lambda: self._counted_mode_step(BASE, data)
        )
        return self._logs(loss, active)

    def _known_mode_step(self, mode, data):
        """One step of Algorithm 1 when the host knows the mode before the
        step: no branch on the mode in the graph."""
        return self._logs(self._counted_mode_step(mode, data), tf.constant(mode))

    def _logs(self, loss, active):
        logs = self.get_metrics_result()
        logs["batch_loss"] = loss
        logs["motivated"] = tf.cast(active, "float32")
        return logs

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        for model in (self.base, self.motivated):
            y_pred = model(x, training=False)
            self._track(model, x, y, y_pred, self._loss(model, y, y_pred, sample_weight), sample_weight)
        return self.get_metrics_result()

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
        boundary = callbacks_lib.EpochBoundary(callbacks)
        if isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks.callbacks.insert(0, boundary)
            boundary.set_model(self)
        else:
            callbacks = [boundary] + list(callbacks or [])
        return super().fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks, **kwargs)

    # -- what reads the BatchNorm statistics ---------------------------------------
    # Each recomputes them first (option "recalibrated") when training changed
    # the weights since they were last recomputed.

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
            self._statistics_state.stale = statistics_lib.LOADED
        return result

    def begin_epoch(self, epoch, steps_per_epoch=None):
        """The epoch start (`EpochBoundary` calls it): the condition learns the epoch."""
        self.condition.on_epoch_begin(epoch, steps_per_epoch)

    def end_epoch(self, recalibration_data=None):
        """The epoch boundary: back on the base model. The BatchNorm statistics are
        recomputed when something reads them next (before a validation, at the end of `fit`).

        Args:
            recalibration_data: replaces the training batches `fit` was given.
        """
        if recalibration_data is not None:
            self._statistics_state.source = recalibration_data
        if self.is_motivated:
            # The copy back changes the base's weights.
            self._statistics_state.stale = statistics_lib.TRAINED
            self.switch_to_base()

    def end_fit(self):
        """The end of `fit` (`EpochBoundary` calls it): the statistics the models are left with are
        recomputed when training changed the weights since the last recomputation."""
        self.end_epoch()
        self.refresh_statistics()

    def refresh_statistics(self):
        """Recomputes both models' BatchNorm statistics (option "recalibrated") if training changed
        the weights since they were last recomputed; what reads them calls it. Returns the batches
        recomputed per model (0: nothing to do)."""
        return self._statistics.refresh(self)

    def recalibrate_statistics(self, data=None):
        """Recomputes both models' BatchNorm statistics from training batches, now.

        Args:
            data: batches of training images (anything `batch_norm.recalibrate`
                reads); by default the ones `fit` trained on (or its
                `recalibration_data`).

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
        """Both models' statistics from `data`, with the weights as they are (no switch: a read
        in the middle of an epoch leaves the training as it was); counted."""
        used = 0
        with self.distribute_strategy.scope():
            for model in (self.base, self.motivated):
                used = recalibrate(model, data, self.recalibration_batches)
        self._recalibrated_batches.assign_add(used)
        state = self._statistics_state
        state.stale, state.last_batches = None, used
        return used

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
            "joint": None if self.joint is None else keras.saving.serialize_keras_object(self.joint),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        base = keras.saving.deserialize_keras_object(config.pop("base"), custom_objects=custom_objects)
        motivated = keras.saving.deserialize_keras_object(config.pop("motivated"), custom_objects=custom_objects)
        wmap = weights_map_lib.WeightsMap.from_config(config.pop("weights_map"), base, motivated)
        condition = keras.saving.deserialize_keras_object(config.pop("condition"), custom_objects=custom_objects)
        if config.get("joint") is not None:
            config["joint"] = keras.saving.deserialize_keras_object(config["joint"], custom_objects=custom_objects)
        return cls(base, motivated, weights_map=wmap, condition=condition, **config)


class _MotivatedMetrics:
    """The motivated model's loss tracker and compile metrics (not a container
    type, so that Keras' attribute tracking leaves it alone)."""

    def __init__(self, loss_tracker, compile_metrics):
        self.loss_tracker = loss_tracker
        self.compile_metrics = compile_metrics

    def __iter__(self):
        return iter((self.loss_tracker, self.compile_metrics))


def _unscale(loss):
    return loss * tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)
