"""The joint step's shared forward pass: what the two models compute alike is computed once.

In a depth pair the base is the motivated model with its differential blocks
skipped. Up to the first differential block both forward passes run the same
layers on the same weights (there the base's variables are the motivated
model's whole, not slices of them): that part is the *trunk*. The joint step
then runs the motivated model once, takes the tensors where the base leaves
the trunk (the *cut*) from that pass, and runs only the base's own remaining
layers (its *tail*) on them, with the tail's weights read as slices of the
motivated model's (`joint._read`).

A layer of the base is in the trunk only where it computes what the bigger
model's layer of the same name computes: it reads the same trunk tensors with
the same call arguments, it is of the same class with the same configuration
(`get_config()` less its name and initializers: BatchNorm's momentum and
epsilon, a pooling's size, a dropout's rate, an activation), and each of its
variables is the bigger model's same-place variable, whole. Elsewhere the
trunk ends before it (`Tail.parted` says why). Nested functional models
(keras-hub's backbone inside its classifier) are read through: their layers
are the graph's.

- In a prefix pair (every differential block after the base's last block:
  ResNet-8 inside ResNet-8's blocks plus more in the last stage, a ViT inside
  a deeper one of the same width) the tail is the head: both outputs come out
  of one pass, and the joint step costs about the motivated model's step.
- In a balanced depth pair (ResNet-8 inside ResNet-14, keras-hub's ResNet-18
  inside ResNet-34) the trunk is the stem and the first block: a small saving.
- keras-hub's ViT runs its blocks in a Python loop inside one `ViTEncoder`
  layer, whose depth is its configuration: the trunk of a keras-hub ViT
  depth pair ends before it (the patch embedding alone is shared).
- Where nothing is shared (a width pair) `find` says why and the joint step
  runs two passes.

In a ladder the joint step of rung r runs rung r's model once and each
smaller rung's tail on its own cut of that pass: in a prefix ladder (each
model a prefix of the next) every model's output comes out of one pass.

The losses and gradients are those of two passes: in training, BatchNorm
normalises with the batch's statistics, so the trunk's activations are the
same tensors in both. The base's own moving statistics of the trunk's
BatchNorm layers move as its own pass would have moved them: each is
`momentum * old + (1 - momentum) * batch`, for the motivated model's too, so
`base' = motivated' + momentum * (base - motivated)` with no batch statistic
read out.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_motivation import keras_internals


@dataclasses.dataclass(frozen=True, repr=False)
class Tail:
    """One smaller model's own layers after the trunk.

    Attributes:
        model: the cut's tensors -> the smaller model's output.
        views: the weights-map entry of each of its trainable variables, in
            order (what the joint step reads them from).
        cut: names of the layers whose outputs it reads.
        statistics: (its variable, the bigger model's, momentum) of the
            trunk's BatchNorm moving statistics.
        regularized: the trunk's regularized variables (its regularization
            losses there, read from the bigger model's).
        parted: {name of a layer of its own that reads only the trunk: why
            it is not the bigger model's} (where the two passes part).
    """

    model: keras.Model
    views: list
    cut: list
    statistics: list
    regularized: list
    parted: dict

    def snapshot_statistics(self):
        return [tf.identity(m.value) for _, m, _ in self.statistics]

    def update_statistics(self, snapshot):
        """Its trunk statistics after the pass, from the bigger model's (module docstring)."""
        own_before = [tf.identity(b.value) for b, _, _ in self.statistics]
        for (b, m, momentum), b_old, m_old in zip(self.statistics, own_before, snapshot):
            b.assign(m.value + momentum * (b_old - m_old))

    def trunk_regularization(self):
        """Its regularization losses on the trunk's weights (those of the bigger model)."""
        return [v.regularizer(v.value) for v in self.regularized]


@dataclasses.dataclass(frozen=True, repr=False)
class SharedForward:
    """The trunk of the biggest model's pass and each smaller model's tail (built by `find`).

    A plain object, not a Layer: the models it holds share the models' layers,
    and Keras would otherwise track (and save) them a second time.

    Attributes:
        trunk: the biggest model's inputs -> [its output, *the cuts' tensors].
        tails: a `Tail` per smaller model, smallest first (a pair: the base's).
        cut: names of the layers whose outputs the tails read, in the trunk's
            output order.
    """

    trunk: keras.Model
    tails: list
    cut: list

    def __repr__(self):
        return f"SharedForward(cut={self.cut}, tail layers={[len(t.model.layers) for t in self.tails]})"

    @property
    def tail(self):
        """The base's tail (a pair's only one)."""
        return self.tails[0].model

    def motivated_pass(self, x):
        """The biggest model's output and, for each tail, its cut's tensors, in one training pass."""
        outputs = self.trunk(x, training=True)
        by_name = dict(zip(self.cut, outputs[1:]))
        return outputs[0], [[by_name[n] for n in t.cut] for t in self.tails]


def _equal(a, b):
    """Whether two configurations or call arguments are equal (arrays element by element)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _configuration(operation):
    """What `operation` computes besides its inputs and variables: its config less its name and the
    initializers (which act once, when a variable is made: the trunk reads the mapped variables), or
    None where Keras cannot give it."""
    try:
        config = operation.get_config()
    except NotImplementedError:
        return None
    return {k: v for k, v in config.items() if k != "name" and not k.endswith("_initializer")}


def _differences(a, b):
    """The keys whose values differ, with both values: "pool_size (2, 2) vs (4, 4)"."""
    keys = [k for k in {**a, **b} if not _equal(a.get(k), b.get(k))]
    return "; ".join(f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in keys)


class _Graph:
    """A model's graph as the trunk is read from it: nested functional models inlined (keras-hub's backbone
    inside its classifier), each operation by name with its calls there."""

    def __init__(self, model):
        self.model = keras_internals.functional_graph(model)
        self.operations = {}
        if self.model is not None:
            for operation in self.model.operations:
                self.operations[operation.name] = operation, keras_internals.graph_nodes(operation, self.model)

    def reads(self, name):
        """Names of the operations whose outputs the operation `name` reads, over all its calls."""
        return list(dict.fromkeys(n for node in self.operations[name][1] for n in keras_internals.node_reads(node)[1]))

    def output(self, name):
        """The tensor the operation `name` (called once) outputs in this graph."""
        operation, nodes = self.operations[name]
        if isinstance(operation, keras.layers.InputLayer):
            return operation.output
        return keras_internals.node_reads(nodes[0])[2][0]


def _why_not_shared(layer, nodes, twin, twin_nodes, twins, by_base):
    """Why `layer` (called at `nodes` in the base) does not compute what `twin` computes in the bigger model,
    given that its inputs are in the trunk (`twins`: base name -> bigger model's name); None where it does."""
    if twin is None:
        return "the bigger model has no layer of that name"
    if len(nodes) != 1 or len(twin_nodes) != 1:
        return "it is called more than once"
    (node,), (twin_node,) = nodes, twin_nodes
    if type(layer) is not type(twin):
        return f"it is a {type(layer).__name__} in the base and a {type(twin).__name__} in the bigger model"
    arguments, reads, outputs = keras_internals.node_reads(node)
    twin_arguments, twin_reads, twin_outputs = keras_internals.node_reads(twin_node)
    if [twins[n] for n in reads] != twin_reads:
        return f"it reads {reads} in the base and {twin_reads} in the bigger model"
    arguments = keras.tree.map_structure(
        lambda a: (
            keras_internals.TensorRead(twins[a.operation], a.index) if isinstance(a, keras_internals.TensorRead) else a
        ),
        arguments,
    )
    if not _equal(arguments, twin_arguments):
        return "it is called with other arguments in the bigger model"
    if len(outputs) != 1 or len(twin_outputs) != 1:
        return "it has several outputs"
    config, twin_config = _configuration(layer), _configuration(twin)
    if config is None or twin_config is None:
        return "its configuration cannot be read (get_config)"
    if not _equal(config, twin_config):
        return f"its configuration differs: {_differences(config, twin_config)}"
    if getattr(layer, "activity_regularizer", None) is not None:
        return "it has an activity regularizer"
    weights, twin_weights = getattr(layer, "weights", []), getattr(twin, "weights", [])
    if len(weights) != len(twin_weights) or any(
        getattr(by_base.get(id(b)), "motivated", None) is not m or tuple(b.shape) != tuple(m.shape)
        for b, m in zip(weights, twin_weights)
    ):
        return "its variables are not the bigger model's same-place variables, whole"
    if layer.non_trainable_weights and not isinstance(layer, keras.layers.BatchNormalization):
        # State other than BatchNorm's moving statistics would need its own rule.
        return "it holds state other than BatchNorm's moving statistics"
    return None


def _trunk(weights_map, base, motivated):
    """({base layer name: its twin's name} for the base's layers that compute what the bigger model's
    layers of the same name compute on the same inputs, {base layer name: why not} for the layers where
    the trunk ends). `base`, `motivated`: the two models' `_Graph`."""
    by_base = {id(e.base): e for e in weights_map.entries}
    twins, parted = {}, {}
    # One input each: the two are twins whatever their names, where they take the same tensors.
    base_input, twin_input = (
        next(op for op, _ in g.operations.values() if isinstance(op, keras.layers.InputLayer))
        for g in (base, motivated)
    )
    (shape, dtype), (twin_shape, twin_dtype) = (
        (tuple(i.output.shape), i.output.dtype) for i in (base_input, twin_input)
    )
    if (shape, dtype) == (twin_shape, twin_dtype):
        twins[base_input.name] = twin_input.name
    else:
        parted[base_input.name] = f"it takes {dtype} {shape}, the bigger model {twin_dtype} {twin_shape}"
    for name, (layer, nodes) in base.operations.items():
        # A layer called again on its own output reads itself: it ends the trunk for that reason (below).
        if isinstance(layer, keras.layers.InputLayer) or not set(base.reads(name)) - {name} <= set(twins):
            continue  # an input, or after the trunk's end
        twin, twin_nodes = motivated.operations.get(name, (None, []))
        why = _why_not_shared(layer, nodes, twin, twin_nodes, twins, by_base)
        if why is None:
            twins[name] = name
        else:
            parted[name] = why
    return twins, parted


def _tail(weights_map, graphs):
    """(the smaller model's `Tail`, None) or (None, why not). `graphs`: {id(model): its `_Graph`}, filled."""
    base, motivated = (graphs.setdefault(id(m), _Graph(m)) for m in (weights_map.base, weights_map.motivated))
    if base.model is None or motivated.model is None:
        return None, "the models are not functional Keras models (their layer graph cannot be read)"
    if any(len(g.model.inputs) != 1 or len(g.model.outputs) != 1 for g in (base, motivated)):
        return None, "a model has several inputs or outputs"
    twins, parted = _trunk(weights_map, base, motivated)
    own = [name for name in base.operations if name not in twins]
    if not own:
        return None, "the base has no layer of its own"
    cut = []
    for name in own:
        if isinstance(base.operations[name][0], keras.layers.InputLayer):
            return None, f"the base's input {name!r} is not the motivated model's: {parted[name]}"
        cut += [n for n in base.reads(name) if n in twins and n not in cut]
    if all(isinstance(base.operations[n][0], keras.layers.InputLayer) for n in cut):
        return None, "the two forward passes part at the input: nothing to share"
    tail = keras.Model([base.output(n) for n in cut], base.model.outputs[0], name=f"{weights_map.base.name}_tail")
    statistics, regularized = [], []
    for name, twin_name in twins.items():
        layer, twin = base.operations[name][0], motivated.operations[twin_name][0]
        if isinstance(layer, keras.layers.BatchNormalization):
            for b, m in zip(layer.non_trainable_weights, twin.non_trainable_weights):
                statistics.append((b, m, float(layer.momentum)))
        regularized += [
            v for v in getattr(twin, "trainable_weights", []) if getattr(v, "regularizer", None) is not None
        ]
    by_base = {id(e.base): e for e in weights_map.entries}
    views = [by_base[id(v)] for v in tail.trainable_variables]
    parted = {n: why for n, why in parted.items() if n in own}
    return Tail(tail, views, [twins[n] for n in cut], statistics, regularized, parted), None


def find(weights_maps):
    """(`SharedForward`, None) where every smaller model's pass shares a trunk with the biggest one's,
    else (None, why not). `weights_maps`: the pair's map, or one map per smaller model into the biggest
    (a ladder's, `weights_map.compose`)."""
    maps = list(weights_maps) if isinstance(weights_maps, (list, tuple)) else [weights_maps]
    graphs = {}
    tails = []
    for i, weights_map in enumerate(maps):
        tail, why = _tail(weights_map, graphs)
        if tail is None:
            return None, why if len(maps) == 1 else f"model {i}: {why}"
        tails.append(tail)
    motivated = graphs[id(maps[0].motivated)]
    names = list(motivated.operations)
    cut = sorted({n for t in tails for n in t.cut}, key=names.index)
    trunk = keras.Model(
        motivated.model.inputs, [motivated.model.outputs[0], *(motivated.output(n) for n in cut)], name="trunk"
    )
    return SharedForward(trunk, tails, cut), None
