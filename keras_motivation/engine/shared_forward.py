"""The joint step's shared forward pass: what the two models compute alike is computed once.

In a depth pair the base is the motivated model with its differential blocks
skipped. Up to the first differential block both forward passes run the same
layers on the same weights (there the base's variables are the motivated
model's whole, not slices of them): that part is the *trunk*. The joint step
then runs the motivated model once, takes the tensors where the base leaves
the trunk (the *cut*) from that pass, and runs only the base's own remaining
layers (its *tail*) on them, with the tail's weights read as slices of the
motivated model's (`joint._read`).

- In a prefix pair (every differential block after the base's last block:
  ResNet-8 inside ResNet-8's blocks plus more in the last stage, a ViT inside
  a deeper one of the same width) the tail is the head: both outputs come out
  of one pass, and the joint step costs about the motivated model's step.
- In a balanced depth pair (ResNet-8 inside ResNet-14) the trunk is the stem
  and the first block: a small saving.
- Where nothing is shared (a width pair, a keras-hub model whose network is one
  nested layer) `find` says why and the joint step runs two passes.

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
    """

    model: keras.Model
    views: list
    cut: list
    statistics: list
    regularized: list

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


def _is_functional(model):
    return isinstance(model, keras.Model) and keras_internals.inbound_layer_names(model.layers[-1], model) is not None


def _same_variables(layer, twin, by_base):
    """Whether every variable of `layer` is mapped whole onto the same-place variable of `twin`."""
    if len(layer.weights) != len(twin.weights):
        return False
    for b, m in zip(layer.weights, twin.weights):
        e = by_base.get(id(b))
        if e is None or e.motivated is not m or tuple(b.shape) != tuple(m.shape):
            return False
    # State other than BatchNorm's moving statistics would need its own rule.
    return not layer.non_trainable_weights or isinstance(layer, keras.layers.BatchNormalization)


def _trunk(weights_map):
    """Names of the base's layers that compute what the motivated model's same-named layers compute."""
    base, motivated = weights_map.base, weights_map.motivated
    by_base = {id(e.base): e for e in weights_map.entries}
    shared = set()
    for layer in base.layers:
        try:
            twin = motivated.get_layer(layer.name)
        except ValueError:
            continue
        if isinstance(layer, keras.layers.InputLayer):
            if isinstance(twin, keras.layers.InputLayer) and tuple(layer.output.shape) == tuple(twin.output.shape):
                shared.add(layer.name)
            continue
        inbound = keras_internals.inbound_layer_names(layer, base)
        if (
            inbound is None
            or inbound != keras_internals.inbound_layer_names(twin, motivated)
            or not set(inbound) <= shared
            or getattr(layer, "activity_regularizer", None) is not None
            or not _same_variables(layer, twin, by_base)
        ):
            continue
        shared.add(layer.name)
    return shared


def _tail(weights_map):
    """(the smaller model's `Tail` without its model's inputs wired, None) or (None, why not)."""
    base, motivated = weights_map.base, weights_map.motivated
    if not (_is_functional(base) and _is_functional(motivated)):
        return None, "the models are not functional Keras models (their layer graph cannot be read)"
    if any(len(m.inputs) != 1 or len(m.outputs) != 1 for m in (base, motivated)):
        return None, "a model has several inputs or outputs"
    shared = _trunk(weights_map)
    inputs = {layer.name for layer in base.layers if isinstance(layer, keras.layers.InputLayer)}
    own = [layer for layer in base.layers if layer.name not in shared]
    if not own:
        return None, "the base has no layer of its own"
    cut = []
    for layer in own:
        if isinstance(layer, keras.layers.InputLayer):
            return None, f"the base's input {layer.name!r} is not the motivated model's"
        cut += [n for n in keras_internals.inbound_layer_names(layer, base) if n in shared and n not in cut]
    if not set(cut) - inputs:
        return None, "the two forward passes part at the input: nothing to share"
    tail = keras.Model([base.get_layer(n).output for n in cut], base.outputs[0], name=f"{base.name}_tail")
    statistics, regularized = [], []
    for layer in base.layers:
        if layer.name not in shared or layer.name in inputs:
            continue
        twin = motivated.get_layer(layer.name)
        if isinstance(layer, keras.layers.BatchNormalization):
            for b, m in zip(layer.non_trainable_weights, twin.non_trainable_weights):
                statistics.append((b, m, float(layer.momentum)))
        regularized += [v for v in twin.trainable_weights if getattr(v, "regularizer", None) is not None]
    by_base = {id(e.base): e for e in weights_map.entries}
    views = [by_base[id(v)] for v in tail.trainable_variables]
    return Tail(tail, views, cut, statistics, regularized), None


def find(weights_maps):
    """(`SharedForward`, None) where every smaller model's pass shares a trunk with the biggest one's,
    else (None, why not). `weights_maps`: the pair's map, or one map per smaller model into the biggest
    (a ladder's, `weights_map.compose`)."""
    maps = list(weights_maps) if isinstance(weights_maps, (list, tuple)) else [weights_maps]
    motivated = maps[0].motivated
    tails = []
    for i, weights_map in enumerate(maps):
        tail, why = _tail(weights_map)
        if tail is None:
            return None, why if len(maps) == 1 else f"model {i}: {why}"
        tails.append(tail)
    names = [layer.name for layer in motivated.layers]
    cut = sorted({n for t in tails for n in t.cut}, key=names.index)
    trunk = keras.Model(
        motivated.inputs, [motivated.outputs[0], *(motivated.get_layer(n).output for n in cut)], name="trunk"
    )
    return SharedForward(trunk, tails, cut), None
