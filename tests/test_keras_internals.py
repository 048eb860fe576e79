"""The private touches of keras_internals.py, one test each: a Keras or
TensorFlow upgrade that moves one fails here, naming the part. And the
promise of that module: no other module of the package or tools/ touches a
Keras or TensorFlow private name (`test_no_module_but_keras_internals_touches_private_names`)."""

import ast
import importlib
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_motivation import keras_internals

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _built(optimizer):
    optimizer.build([keras.Variable(np.ones((3,), "float32"))])
    return optimizer


def test_share_learning_rate_makes_every_assignment_reach_both():
    base = keras.optimizers.SGD(0.1, momentum=0.9)
    other = keras.optimizers.SGD(0.1, momentum=0.9)
    paths_before = [v.path for v in other.variables]
    assert keras_internals.share_learning_rate(base, other)
    # The shared variable takes the place of the own one: same count and order.
    assert [v.path for v in other.variables] == [paths_before[0], base._learning_rate.path]
    base.learning_rate = 0.02
    assert float(other.learning_rate) == pytest.approx(0.02)
    other.learning_rate = 0.003
    assert float(base.learning_rate) == pytest.approx(0.003)
    _built(base), _built(other)
    assert len(other.variables) == len(base.variables) == 3


def test_share_learning_rate_through_loss_scale_optimizers():
    base = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
    other = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
    assert keras_internals.share_learning_rate(base, other)
    base.learning_rate = 5e-4
    assert float(other.learning_rate) == pytest.approx(5e-4)
    assert float(other.inner_optimizer.learning_rate) == pytest.approx(5e-4)


def test_share_learning_rate_leaves_schedules_alone():
    schedule = keras.optimizers.schedules.CosineDecay(0.1, 100)
    base, other = keras.optimizers.SGD(schedule), keras.optimizers.SGD(schedule)
    assert not keras_internals.share_learning_rate(base, other)
    assert not keras_internals.share_learning_rate(keras.optimizers.SGD(0.1), other)


@pytest.mark.parametrize(
    "monitor, expected",
    [
        ("val_motivated_accuracy", "greater"),
        ("motivated_accuracy", "greater"),
        ("val_motivated_loss", "less"),
        ("motivated_loss", "less"),
    ],
)
def test_resolve_prefixed_monitor_takes_the_base_metrics_direction(monitor, expected):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.evaluate(np.zeros((4, 2)), np.zeros((4,)), verbose=0)  # builds the metrics
    callback = keras.callbacks.EarlyStopping(monitor=monitor, min_delta=0.1)
    callback.set_model(model)
    with pytest.raises(ValueError, match="automatically determine"):
        callback._set_monitor_op()  # what Keras alone does
    callback.monitor_op = None
    keras_internals.resolve_prefixed_monitor(callback, "motivated_")
    assert callback.monitor_op.__name__ == expected
    assert callback.monitor == monitor
    assert callback.min_delta == (0.1 if expected == "greater" else -0.1)


def test_resolve_prefixed_monitor_leaves_other_metrics_and_explicit_modes_alone():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    for callback in (
        keras.callbacks.EarlyStopping(monitor="motivated_steps"),
        keras.callbacks.EarlyStopping(monitor="val_accuracy"),
        keras.callbacks.EarlyStopping(monitor="motivated_accuracy", mode="max"),
    ):
        callback.set_model(model)
        keras_internals.resolve_prefixed_monitor(callback, "motivated_")
        assert callback.monitor_op is None


def _compiled(metrics=("accuracy",)):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=list(metrics) or None)
    return model


def test_prefixed_compile_metrics_names_results_with_the_prefix():
    metrics = keras_internals.PrefixedCompileMetrics(["accuracy"], None, prefix="motivated_")
    y, y_pred = np.array([0, 1]), np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1]], "float32")
    metrics.build(y, y_pred)
    metrics.update_state(y, y_pred)
    assert {k: float(v) for k, v in metrics.result().items()} == {"motivated_accuracy": 0.5}


def test_inner_optimizer_unwraps_loss_scale_optimizers():
    adam = keras.optimizers.Adam()
    assert keras_internals.inner_optimizer(keras.optimizers.LossScaleOptimizer(adam)) is adam
    assert keras_internals.inner_optimizer(adam) is adam


@pytest.mark.parametrize(
    "optimizer, names",
    [
        (lambda: keras.optimizers.SGD(0.1, momentum=0.9), ["momentums"]),
        (keras.optimizers.Adam, ["_momentums", "_velocities"]),
        (keras.optimizers.RMSprop, ["_velocities"]),
    ],
)
def test_optimizer_slots_and_slot_index_find_one_slot_per_variable(optimizer, names):
    variables = [keras.Variable(np.ones((3,), "float32")), keras.Variable(np.ones((2, 2), "float32"))]
    opt = optimizer()
    opt.build(variables)
    slots = keras_internals.optimizer_slots(opt)
    assert sorted(slots) == names
    for i, v in enumerate(variables):
        assert keras_internals.slot_index(opt, v) == i
        assert all(tuple(slots[n][i].shape) == tuple(v.shape) for n in names)


def test_optimizer_slots_refuses_unbuilt_optimizers_and_state_it_cannot_map():
    with pytest.raises(ValueError, match="not built"):
        keras_internals.optimizer_slots(keras.optimizers.SGD())
    opt = _built(keras.optimizers.SGD(0.1, momentum=0.9))
    opt.extra = opt.add_variable((3,), name="extra")  # per-variable state that is no slot list
    with pytest.raises(NotImplementedError, match="cannot map"):
        keras_internals.optimizer_slots(opt)


def test_compiled_loss_additional_loss_tracker_and_metrics_are_what_compile_made():
    model = _compiled()
    y, y_pred = np.array([0, 2]), np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]], "float32")
    expected = keras.losses.sparse_categorical_crossentropy(y, y_pred).numpy().mean()
    assert float(keras_internals.compiled_loss(model)(y, y_pred, None)) == pytest.approx(expected, rel=1e-6)
    added = keras_internals.additional_loss(model, tf.constant([1, 2], "int32"))
    assert added.dtype == "float32" and float(added) == 3.0
    tracker = keras_internals.loss_tracker(model)
    assert tracker.name == "loss" and tracker in model.metrics
    metrics = keras_internals.compiled_metrics(model)
    metrics.update_state(y, y_pred)
    assert float(metrics.result()["accuracy"]) == 1.0
    assert keras_internals.compiled_metrics(_compiled(metrics=())) is None


def test_set_compile_argument_is_what_get_compile_config_saves():
    model = _compiled()
    assert keras_internals.serialized_compile_config(model) == model.get_compile_config()
    keras_internals.set_compile_argument(model, "loss_weights", [2.0])
    assert keras_internals.serialized_compile_config(model)["loss_weights"] == [2.0]
    assert model.get_compile_config()["loss_weights"] == [2.0]


def test_untrack_drops_variables_from_what_a_layer_counts_as_its_own():
    class Holder(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.kept = keras.Variable(np.zeros(2, "float32"), trainable=False)
            self.pair = (keras.Variable(np.ones(2, "float32"), trainable=False), self.kept)

    layer = Holder()
    assert len(layer.non_trainable_variables) == 2
    keras_internals.untrack(layer, [layer.pair[0]])
    assert [id(v) for v in layer.non_trainable_variables] == [id(layer.kept)]
    layer.again = [layer.pair[0]]  # tracked anew, after what stayed
    assert [id(v) for v in layer.non_trainable_variables] == [id(layer.kept), id(layer.pair[0])]


def test_sublayers_are_the_layers_a_layer_or_model_holds_directly():
    class Pair(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.first = keras.layers.Dense(2, name="first")
            self.inner = keras.Sequential([keras.layers.Dense(2, name="deep")], name="inner")

        def call(self, x):
            return self.inner(self.first(x))

    pair = Pair()
    assert [layer.name for layer in keras_internals.sublayers(pair)] == ["first", "inner"]
    assert [layer.name for layer in keras_internals.sublayers(pair.inner)] == ["deep"]
    inputs = keras.Input((3,))
    model = keras.Model(inputs, pair(inputs))
    assert keras_internals.sublayers(model) == model.layers
    assert keras_internals.sublayers(keras.layers.Dense(2)) == []


def test_functional_graph_inlines_nested_functional_models_and_graph_nodes_reads_each_graphs_calls():
    inner_input = keras.Input((3,), name="inner_input")
    inner = keras.Model(inner_input, keras.layers.Dense(4, name="deep")(inner_input), name="backbone")
    inputs = keras.Input((3,), name="images")
    outer = keras.Model(inputs, keras.layers.Dense(2, name="head")(inner(inputs)))
    flat = keras_internals.functional_graph(outer)
    assert [layer.name for layer in flat.layers] == ["images", "deep", "head"]
    x = np.random.default_rng(0).random((5, 3)).astype("float32")
    np.testing.assert_array_equal(flat(x), outer(x))
    assert keras_internals.functional_graph(flat) is flat  # nothing nested: the model itself
    assert keras_internals.functional_graph(keras.Sequential([keras.layers.Dense(2)])) is None
    # "deep" is called in the backbone's graph and again in the flat one: one call in each.
    deep, head = inner.get_layer("deep"), flat.get_layer("head")
    assert len(keras_internals.graph_nodes(deep, inner)) == len(keras_internals.graph_nodes(deep, flat)) == 1
    (node,) = keras_internals.graph_nodes(head, flat)
    arguments, reads, outputs = keras_internals.node_reads(node)
    assert reads == ["deep"] and arguments == ([keras_internals.TensorRead("deep", 0)], {})
    assert outputs[0] is flat.outputs[0]


def test_replaces_symbolic_build_is_the_hook_fit_and_evaluate_call(monkeypatch):
    calls = []
    monkeypatch.setattr(
        keras_internals,
        "symbolic_build",
        lambda model, iterator=None, data_batch=None: calls.append(iterator is not None),
    )

    @keras_internals.replaces_symbolic_build
    class Hooked(keras.Sequential):
        pass

    model = Hooked([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.zeros((8, 2), "float32"), np.zeros((8,))
    model.fit(x, y, epochs=1, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert calls == [True, True]


def test_symbolic_build_builds_optimizer_and_metrics_from_the_spec_alone():
    model = _compiled()
    spec = (tf.TensorSpec((None, 2), "float32"), tf.TensorSpec((None,), "int64"))
    assert not model.optimizer.built
    keras_internals.symbolic_build(model, data_batch=spec)
    assert model.optimizer.built
    assert keras_internals.compiled_metrics(model).built


def test_is_fit_validation_tells_fits_validation_from_a_users_evaluate():
    seen = []

    class Recording(keras.Sequential):
        def evaluate(self, *args, **kwargs):
            seen.append(keras_internals.is_fit_validation(kwargs))
            return super().evaluate(*args, **kwargs)

    model = Recording([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.zeros((8, 2), "float32"), np.zeros((8,))
    model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert seen == [True, False]


def test_frozen_graph_folds_variables_into_constants():
    v = keras.Variable(np.full((2,), 3.0, "float32"))
    fn = tf.function(lambda x: x * v).get_concrete_function(tf.TensorSpec((2,), "float32"))
    ops = {op.type for op in keras_internals.frozen_graph(fn).get_operations()}
    assert "ReadVariableOp" not in ops and "Const" in ops
    assert "ReadVariableOp" in {op.type for op in fn.graph.get_operations()}


# -- no private touch outside keras_internals.py -------------------------------

_PRIVATE_PACKAGES = ("keras.src", "tensorflow.python")
_ATTRIBUTE_FUNCTIONS = ("getattr", "setattr", "hasattr", "delattr")


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _keras_private_names(keras_class):
    """Private names of a Keras class and of a typical instance (compile() sets the model's)."""
    names = set(dir(keras_class))
    if issubclass(keras_class, keras.Model):
        names |= set(vars(_compiled()))
    else:
        try:
            names |= set(vars(keras_class()))
        except TypeError:  # needs arguments: the class's own names only
            pass
    return {n for n in names if _is_private(n)}


def private_touches(source, keras_classes=None):
    """["line: what"] for every private touch in `source`.

    - imports of, or attributes under, `keras.src` / `tensorflow.python`;
    - `obj._name` and `getattr(obj, "_name")`, `obj.get("_name")`,
      `obj["_name"]`, `f(_name=...)` for any object but `self` / `cls`;
    - in a class body, `self._name` or `def _name` where `_name` is private
      to its Keras ancestor (`keras_classes`: class name -> Keras class).
    """
    tree = ast.parse(source)
    found = []

    def add(node, what):
        found.append(f"{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(_PRIVATE_PACKAGES):
                    add(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(_PRIVATE_PACKAGES):
            add(node, f"from {node.module} import")
        elif isinstance(node, ast.Attribute):
            if ast.unparse(node).startswith(("keras.src.", "tf.python.", "tensorflow.python.")) or ast.unparse(
                node
            ) in ("keras.src", "tf.python", "tensorflow.python"):
                add(node, ast.unparse(node))
            elif _is_private(node.attr) and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                add(node, ast.unparse(node))
        elif isinstance(node, ast.keyword) and node.arg and _is_private(node.arg):
            add(node, f"keyword {node.arg}=")
        elif isinstance(node, ast.Call):
            func, args = node.func, node.args
            if isinstance(func, ast.Name) and func.id in _ATTRIBUTE_FUNCTIONS and len(args) >= 2:
                target, key = args[0], args[1]
            elif isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault") and args:
                target, key = func.value, args[0]
            else:
                continue
            if (
                isinstance(key, ast.Constant)
                and isinstance(key.value, str)
                and _is_private(key.value)
                and not (isinstance(target, ast.Name) and target.id in ("self", "cls"))
            ):
                add(node, ast.unparse(node))
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
            if isinstance(key, str) and _is_private(key) and key.isidentifier():
                add(node, ast.unparse(node))
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        keras_class = (keras_classes or {}).get(cls.name)
        if keras_class is None:
            continue
        names = _keras_private_names(keras_class)
        for node in ast.walk(cls):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and node.attr in names
            ):
                add(node, f"{cls.name}: self.{node.attr}, private to {keras_class.__name__}")
            elif isinstance(node, ast.FunctionDef) and node.name in names:
                add(node, f"{cls.name}: def {node.name}, private to {keras_class.__name__}")
    return found


def _keras_classes(module):
    """Class name -> its first Keras ancestor, for the classes of `module`."""
    out = {}
    for name, value in vars(module).items():
        if isinstance(value, type) and value.__module__ == module.__name__:
            ancestor = next((k for k in value.__mro__ if k.__module__.split(".")[0] == "keras"), None)
            if ancestor is not None:
                out[name] = ancestor
    return out


def _sources():
    package = sorted((ROOT / "keras_motivation").rglob("*.py"))
    tools = sorted((ROOT / "tools").glob("*.py"))
    return [p for p in package + tools if p.name != "keras_internals.py"]


def _engine_private_names():
    """Private names the engine defines itself (methods and `self._x` attributes of its classes) and Keras'
    Model does not: the engine's modules may use them on the model they build the loops for."""
    names = set()
    for path in (ROOT / "keras_motivation" / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("_") and not node.name.startswith("__"):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                if isinstance(node.ctx, ast.Store) and node.attr.startswith("_"):
                    names.add(node.attr)
    return {n for n in names if not hasattr(keras.Model, n)}


def test_no_module_but_keras_internals_touches_private_names():
    touches = {}
    engine_names = _engine_private_names()
    assert "_mode_update" in engine_names and "_loss_tracker" not in engine_names
    for path in _sources():
        relative = path.relative_to(ROOT)
        keras_classes = {}
        if relative.parts[0] == "keras_motivation":
            keras_classes = _keras_classes(importlib.import_module(".".join(relative.with_suffix("").parts)))
        found = private_touches(path.read_text(), keras_classes)
        if relative.parts[:2] == ("keras_motivation", "engine"):
            found = [f for f in found if f.split(": ", 1)[1].split(".", 1)[-1] not in engine_names]
        if found:
            touches[str(relative)] = found
    assert not touches, f"private names touched outside keras_internals.py (move them there): {touches}"
    assert len(_sources()) > 20  # the scan saw the package and the tools


def test_private_touches_finds_each_kind_of_touch():
    source = """
import keras.src.utils
from tensorflow.python.framework import ops
import keras
x = keras.src.trainers
model._switch_to(True)
getattr(optimizer, "_learning_rate")
kwargs.get("_use_cached_eval_dataset")
logs["_hidden"]
model.evaluate(x, _use_cached_eval_dataset=True)
self._mine = 1
getattr(self, "_mine", None)


class Engine(keras.Model):
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return self._compile_loss, self._own_state
"""
    found = private_touches(source, {"Engine": keras.Model})
    lines = sorted({int(f.split(":")[0]) for f in found})
    assert lines == [2, 3, 5, 6, 7, 8, 9, 10, 16, 17], found
    assert any("def _maybe_symbolic_build, private to Model" in f for f in found)
    assert any("self._compile_loss" in f for f in found)
    assert not any("_own_state" in f or "_mine" in f for f in found)


def test_tensorboard_train_batch_counts_the_batches_begun(tmp_path):
    callback = keras.callbacks.TensorBoard(str(tmp_path), update_freq=10)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    callback.set_model(model)
    callback.on_train_begin()
    for batch in range(3):
        callback.on_train_batch_begin(batch)
    assert keras_internals.tensorboard_train_batch(callback) == 3
    callback.on_train_end()
