"""Every Keras- and TensorFlow-private name this package touches, in one place.

Keras 3 exposes optimizer slots (momentum, Adam moments, RMS accumulators)
only through private attributes; the compiled loss, loss tracker, metrics
and compile config a second model shares with `compile()`, the build hook
`fit` calls before the first step and the flag `fit` passes to its
validation `evaluate` only as private model attributes; the per-output
metric container and the monitor-direction lookup of EarlyStopping & co.
only through `keras.src`; the graph freezing that FLOPs are counted on only
through `tensorflow.python`. Each touch is one named function here, whose
docstring says what it relies on. A Keras or TensorFlow upgrade that moves
one breaks this file, loudly, and `tests/test_keras_internals.py` names the
part (it also fails if any other module of the package or tools/ touches a
private name).
"""

import keras
from keras.src.callbacks import monitor_callback
from keras.src.trainers import compile_utils
from tensorflow.python.framework import convert_to_constants


class PrefixedCompileMetrics(compile_utils.CompileMetrics):
    """`compile(metrics=...)` for a second model: results named `prefix + name`.

    Private: `keras.src.trainers.compile_utils.CompileMetrics` (what
    `compile` builds from `metrics=`), its constructor and `result()`.
    """

    def __init__(self, metrics, weighted_metrics, prefix, output_names=None):
        super().__init__(metrics, weighted_metrics, name=f"{prefix}compile_metrics", output_names=output_names)
        self._prefix = prefix

    def result(self):
        return {self._prefix + k: v for k, v in super().result().items()}


def inner_optimizer(optimizer):
    """The optimizer that owns the slots (unwraps LossScaleOptimizer)."""
    while isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer


def optimizer_slots(optimizer):
    """Slot lists of a built optimizer: {attribute name: [variable or None, ...]}.

    Slots are discovered as the optimizer's list attributes that hold one
    variable per trainable variable, of the same shape (what
    `add_optimizer_variables` creates): `momentums` (SGD), `_momentums` and
    `_velocities` (Adam, AdamW, Lamb, Nadam), `_velocities`, `_momentums` and
    `_average_gradients` (RMSprop), ... Any other per-variable state would not
    be copied, so it is an error.

    Private: the optimizer's slot lists (found among its attributes, so a
    renamed list is still found), `_trainable_variables` and
    `_learning_rate`; a new kind of per-variable state raises here.
    """
    opt = inner_optimizer(optimizer)
    if not opt.built:
        raise ValueError(f"Optimizer {opt.name} is not built yet.")
    trainable = opt._trainable_variables
    shapes = [tuple(v.shape) for v in trainable]
    slots = {}
    for name, value in sorted(vars(opt).items()):
        if name == "_trainable_variables" or not isinstance(value, list) or len(value) != len(trainable):
            continue
        if not value or not all(v is None or isinstance(v, keras.Variable) for v in value):
            continue
        if all(v is None or tuple(v.shape) == s for v, s in zip(value, shapes)):
            slots[name] = value
    slot_ids = {id(v) for vs in slots.values() for v in vs if v is not None}
    known = {id(opt.iterations)} | slot_ids
    if isinstance(opt._learning_rate, keras.Variable):
        known.add(id(opt._learning_rate))
    unknown = [v.path for v in opt.variables if id(v) not in known and len(v.shape) > 0]
    if unknown:
        raise NotImplementedError(
            f"{type(opt).__name__} keeps state this package cannot map ({unknown[:3]}...): "
            "use SGD, Adam, AdamW, RMSprop, Lamb, Nadam, Adamax, Adagrad, Lion or Ftrl."
        )
    return slots


def slot_index(optimizer, variable):
    """Position of `variable` in the optimizer's slot lists.

    Private: `Optimizer._get_variable_index`.
    """
    return inner_optimizer(optimizer)._get_variable_index(variable)


def symbolic_build(model, iterator=None, data_batch=None):
    """Builds metrics, loss and optimizer state from the data's spec, up front.

    Replaces Keras' `_maybe_symbolic_build`, which (a) builds nothing without
    a strategy, leaving variables to be created while the train function is
    traced, (b) under MultiWorkerMirroredStrategy reduces a distributed batch
    eagerly and fails (keras-team/keras#20585), and (c) draws a batch from the
    data, which starts one more pass of a reshuffling dataset and changes the
    order of the batches that training then sees. Only shapes and dtypes
    matter here: they come from the dataset's element spec.

    Private: `Trainer._symbolic_build(data_batch=)` and the epoch iterator's
    `data_adapter.get_tf_dataset()`.
    """
    import tensorflow as tf

    if data_batch is None and iterator is not None:
        data_batch = iterator.data_adapter.get_tf_dataset().element_spec
    data_batch = tf.nest.map_structure(
        lambda v: (
            model.distribute_strategy.experimental_local_results(v)[0]
            if isinstance(v, tf.distribute.DistributedValues)
            else v
        ),
        data_batch,
    )
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=data_batch)


def share_learning_rate(source, target):
    """Makes `target` read its learning rate from `source`'s variable; True if it did.

    Every learning-rate change made on `source` (`optimizer.learning_rate =
    ...` from ReduceLROnPlateau, LearningRateScheduler or user code: an
    assign to the variable) then reaches `target` too. Only when both hold a
    plain variable (not a LearningRateSchedule or a callable, which already
    agree as functions of the step counter). Private: `_learning_rate` and
    the optimizer's variable list `_variables`; the shared variable takes
    the place of `target`'s own in that list, so `target.variables` keeps
    its length and order and saved optimizers load either way. Breaks (the
    test in tests/test_keras_internals.py fails) if Keras renames
    `_learning_rate` or stops reading it in `learning_rate`.
    """
    src, tgt = inner_optimizer(source), inner_optimizer(target)
    shared, own = getattr(src, "_learning_rate", None), getattr(tgt, "_learning_rate", None)
    if not isinstance(shared, keras.Variable) or not isinstance(own, keras.Variable):
        return False
    if shared is own:
        return True
    tgt._learning_rate = shared  # Keras' attribute tracking appends it to `_variables`
    variables = tgt._variables  # the tracker's own list, not a copy
    index = next(i for i, v in enumerate(variables) if v is own)
    while variables[-1] is shared:
        variables.pop()
    variables[index] = shared
    return True


def resolve_prefixed_monitor(callback, prefix):
    """Gives a Keras MonitorCallback watching `[val_]<prefix><metric>` the direction of `[val_]<metric>`.

    EarlyStopping, ModelCheckpoint and ReduceLROnPlateau (`mode="auto"`) find
    a metric's direction by searching `model.metrics` for its name, and the
    motivated model's metrics are named without the prefix inside
    PrefixedCompileMetrics (its loss tracker is not "loss"), so Keras raises
    "isn't able to automatically determine ...". Here Keras' own
    `_set_monitor_op` runs on the base metric's name instead, so the
    direction is exactly the one Keras gives the base's metric. Private:
    `MonitorCallback`, its `monitor_op` and `_set_monitor_op` (keras.src);
    on an upgrade that moves them, tests/test_keras_internals.py fails.
    """
    if not isinstance(callback, monitor_callback.MonitorCallback):
        return
    if callback.monitor_op is not None or callback.mode in ("min", "max"):
        return
    original = callback.monitor
    split = "val_" if original.startswith("val_") else ""
    name = original[len(split) :]
    if not name.startswith(prefix) or name == prefix:
        return
    callback.monitor = split + name[len(prefix) :]
    try:
        callback._set_monitor_op()
    except ValueError:
        callback.monitor_op = None  # not the base's either: Keras raises with the real name
    finally:
        callback.monitor = original


# -- what compile() leaves on a model (keras.src.trainers.trainer.Trainer) ----
# Private attributes set by `Trainer.compile`; renamed attributes raise
# AttributeError here and in tests/test_keras_internals.py.


def compiled_loss(model):
    """The `loss` of `model.compile`, as Keras wraps it: `(y, y_pred, sample_weight) -> loss`.

    Private: `Trainer._compile_loss` (a `CompileLoss`).
    """
    return model._compile_loss


def additional_loss(model, loss):
    """`loss` from `add_loss` or a regularizer, summed and cast as Keras' own `compute_loss` does.

    Private: `Trainer._aggregate_additional_loss`.
    """
    return model._aggregate_additional_loss(loss)


def loss_tracker(model):
    """The mean-of-the-loss metric Keras logs as `loss`.

    Private: `Trainer._loss_tracker`.
    """
    return model._loss_tracker


def compiled_metrics(model):
    """The metrics of `model.compile` (a `CompileMetrics`), or None without any.

    Private: `Trainer._compile_metrics`.
    """
    return model._compile_metrics


def set_compile_argument(model, name, value):
    """Makes `model.get_compile_config()` (what `save` writes) hold `value` for compile argument `name`.

    Private: `Trainer._compile_config` (a `SerializableDict` of the compile
    arguments) and its `config` dict.
    """
    model._compile_config.config[name] = value


def untrack(layer, values):
    """Stops `layer` counting `values` among its own variables (what `save` writes for it).

    Private: `Layer._tracker` (its `untrack`).
    """
    for value in values:
        layer._tracker.untrack(value)


def sublayers(layer):
    """The layers `layer` holds directly (a model's `layers`; a layer's tracked sublayers).

    Private: `Layer._flatten_layers(include_self=False, recursive=False)`,
    what `Model.layers` returns for a model; a plain layer has no public list.
    """
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def own_variables(layer):
    """The variables `layer` itself saves, in the order `save_own_variables` writes them.

    Private: `Layer._trainable_variables` / `_non_trainable_variables`.
    """
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def own_variable_count(layer):
    """How many variables `layer` itself saves (its own, not its sublayers').

    Private: `Layer._trainable_variables` / `_non_trainable_variables`.
    """
    return len(layer._trainable_variables) + len(layer._non_trainable_variables)


def serialized_compile_config(model):
    """What Keras' own `get_compile_config` returns: the compile arguments, serialized.

    Private: `Trainer._compile_config.serialize()`.
    """
    return model._compile_config.serialize()


def replaces_symbolic_build(cls):
    """Class decorator: `fit` and `evaluate` build `cls` with `symbolic_build` (see there).

    Private: the hook `Trainer._maybe_symbolic_build(iterator=, data_batch=)`
    that Keras' TensorFlow trainer calls before the first step. If Keras
    renames it, the override is silently ignored: the test in
    tests/test_keras_internals.py checks that Keras still calls it.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        symbolic_build(self, iterator=iterator, data_batch=data_batch)

    cls._maybe_symbolic_build = _maybe_symbolic_build
    return cls


def tensorboard_train_batch(callback):
    """The global training batch count of a `keras.callbacks.TensorBoard` (the step its batch scalars are
    written at).

    Private: its `_global_train_batch` attribute, counted in `on_train_batch_begin`.
    """
    return callback._global_train_batch


def is_fit_validation(evaluate_kwargs):
    """True when `evaluate` was called by `fit` to validate at an epoch end.

    Private: the keyword `_use_cached_eval_dataset=True` that Keras' `fit`
    passes to `evaluate` (and only `fit` does).
    """
    return bool(evaluate_kwargs.get("_use_cached_eval_dataset"))


def functional_graph(model):
    """`model`'s layer graph, each nested functional model's layers in its place, or None where it has none.

    A functional `keras.Model` on `model`'s input that calls the same layers
    (the same weights) in the same order: where `model` calls a functional
    model (keras-hub's backbone inside its classifier), the graph calls that
    model's layers instead. `model` itself where nothing is nested; a nested
    model whose class overrides `call` stays one layer. The layers are called
    again on new tensors, which gives them another node (`graph_nodes` reads
    each graph's own).

    Private: `keras.src.models.functional.Functional` (what a graph model is)
    and its `_run_through_graph(inputs, operation_fn)` (what its `call` runs).
    """
    from keras.src.models.functional import Functional

    def inlined(operation):
        if isinstance(operation, Functional) and type(operation).call is Functional.call:
            return lambda *args, **kwargs: operation._run_through_graph(args[0], operation_fn=inlined)
        return operation

    if not isinstance(model, Functional) or type(model).call is not Functional.call:
        return None
    if not any(inlined(op) is not op for op in model.operations):
        return model
    outputs = model._run_through_graph(model.inputs, operation_fn=inlined)
    return keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, outputs, name=model.name)


def graph_nodes(operation, model):
    """The calls of `operation` in `model`'s graph (a functional model built later on some of its tensors
    calls its layers again, in its own graph).

    Private: `Operation._inbound_nodes`, a functional model's `_nodes` and their keys (Keras has no
    public view of a functional model's edges).
    """
    from keras.src.ops.function import make_node_key

    keys = getattr(model, "_nodes", set())
    return [n for i, n in enumerate(getattr(operation, "_inbound_nodes", [])) if make_node_key(operation, i) in keys]


class TensorRead:
    """A tensor in a node's call arguments (`node_reads`): the operation that made it and its output index."""

    def __init__(self, operation, index):
        self.operation, self.index = operation, index

    def __eq__(self, other):
        return isinstance(other, TensorRead) and (self.operation, self.index) == (other.operation, other.index)

    def __hash__(self):
        return hash((self.operation, self.index))

    def __repr__(self):
        return f"{self.operation}[{self.index}]"


def node_reads(node):
    """(the call's arguments `(args, kwargs)` with each tensor a `TensorRead`, the names of the operations
    whose outputs it reads, its output tensors) of a graph node (`graph_nodes`).

    Private: `Node.arguments` (its `args` and `kwargs`), `Node.outputs` and a KerasTensor's
    `_keras_history`.
    """

    def read(value):
        if isinstance(value, keras.KerasTensor):
            history = value._keras_history
            return TensorRead(history.operation.name, history.tensor_index)
        return value

    arguments = keras.tree.map_structure(read, (list(node.arguments.args), dict(node.arguments.kwargs)))
    reads = [t._keras_history.operation.name for t in node.input_tensors]
    return arguments, reads, list(node.outputs)


# -- TensorFlow --------------------------------------------------------------


def frozen_graph(concrete_function):
    """The graph of `concrete_function` with its variables folded into constants.

    Private: `tensorflow.python.framework.convert_to_constants.
    convert_variables_to_constants_v2` (TensorFlow has no public equivalent).
    """
    return convert_to_constants.convert_variables_to_constants_v2(concrete_function).graph
