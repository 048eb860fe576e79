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
class SharedForward:
    """The trunk, the cut and the tail of a pair (built by `find`).

    A plain object, not a Layer: the models it holds share the pair's layers,
    and Keras would otherwise track (and save) them a second time.

    Attributes:
        trunk: the motivated model's inputs -> [its output, *the cut's tensors].
        tail: the cut's tensors -> the base's output (the base's own layers).
        tail_views: the weights-map entry of each of the tail's trainable
            variables, in order (what the joint step reads them from).
        cut: names of the layers whose outputs the tail reads.
        statistics: (base variable, motivated variable, momentum) of the
            trunk's BatchNorm moving statistics.
        regularized: the trunk's regularized variables (the base's
            regularization losses there, read from the motivated model's).
    """

    trunk: keras.Model
    tail: keras.Model
    tail_views: list
    cut: list
    statistics: list
    regularized: list

    def __repr__(self):
        return f"SharedForward(cut={self.cut}, tail layers={len(self.tail.layers)})"

    def motivated_pass(self, x):
        """The motivated model's output and the cut's tensors, in one training pass."""
        outputs = self.trunk(x, training=True)
        return outputs[0], outputs[1:]

    def snapshot_statistics(self):
        return [tf.identity(m.value) for _, m, _ in self.statistics]

    def update_statistics(self, snapshot):
        """The base's trunk statistics after the pass, from the motivated model's (module docstring)."""
        base_before = [tf.identity(b.value) for b, _, _ in self.statistics]
        for (b, m, momentum), b_old, m_old in zip(self.statistics, base_before, snapshot):
            b.assign(m.value + momentum * (b_old - m_old))

    def trunk_regularization(self):
        """The base's regularization losses on the trunk's weights (those of the motivated model)."""
        return [v.regularizer(v.value) for v in self.regularized]


def _is_functional(model):
    return isinstance(model, keras.Model) and keras_internals.inbound_layer_names(model.layers[-1]) is not None


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
        inbound = keras_internals.inbound_layer_names(layer)
        if (
            inbound is None
            or inbound != keras_internals.inbound_layer_names(twin)
            or not set(inbound) <= shared
            or getattr(layer, "activity_regularizer", None) is not None
            or not _same_variables(layer, twin, by_base)
        ):
            continue
        shared.add(layer.name)
    return shared


def find(weights_map):
    """(`SharedForward`, None) for a pair whose passes share a trunk, else (None, why not)."""
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
        cut += [n for n in keras_internals.inbound_layer_names(layer) if n in shared and n not in cut]
    if not set(cut) - inputs:
        return None, "the two forward passes part at the input: nothing to share"
    trunk = keras.Model(
        motivated.inputs, [motivated.outputs[0], *(motivated.get_layer(n).output for n in cut)], name="trunk"
    )
    cut_tensors = [base.get_layer(n).output for n in cut]
    tail = keras.Model(cut_tensors, base.outputs[0], name="tail")
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
    tail_views = [by_base[id(v)] for v in tail.trainable_variables]
    return SharedForward(trunk, tail, tail_views, cut, statistics, regularized), None
