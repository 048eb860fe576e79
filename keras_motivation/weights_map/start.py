"""The identity start (opt-in): the motivated model's differential parts begin as no-ops."""

import collections
from collections.abc import Sequence

import keras
import numpy as np

from keras_motivation import keras_internals
from keras_motivation.weights_map.derivation import DEFAULT_BLOCK_PATTERNS
from keras_motivation.weights_map.derivation import layer_tree
from keras_motivation.weights_map.derivation import parse_block_names
from keras_motivation.weights_map.mapping import WeightsMap

# -- identity start ----------------------------------------------------------
#
# Identity start (our extension, opt-in): differential parts begin as no-ops.
#
# In the paper's maps the motivated model's differential parts start from
# random initialisation, so at its first activation the motivated model
# computes a function far from the base's. `identity_start(weights_map)` makes
# them no-ops, so that right after the first copy the motivated model computes
# the base's function:
#
# - depth: the gamma of the last BatchNorm of each differential block's
#   residual branch is zero, so the branch outputs zero and the block is the
#   identity (exact); a block that is one layer adding its residuals in `call`
#   (keras-hub's pre-norm transformer blocks) gets zero output projections of
#   its attention and MLP instead (exact, checked when it starts);
# - width: every weight that reads an extra channel or feature (the input axes
#   of a widened kernel beyond the mapped slice) is zero, so the base's
#   channels never see the extra ones. The extra channels themselves keep their
#   random incoming weights, so they are non-zero and learn (zeroing both sides
#   would leave them at a saddle with zero gradient). Exact for convolutional
#   nets, whose channel-wise BatchNorm, activations, squeeze-excite gates and
#   pooling never mix channels; not exact where a layer mixes all features
#   without weights: LayerNorm's mean and variance over a wider embedding (ViT)
#   include the extra features. `tests/test_models.py` measures that gap.


def _blocks(model, block_patterns):
    """{(stage, block): [layers]} of every residual block of `model`, wherever it
    sits; a block held inside another layer has its stage prefixed by that
    layer's path (`res_net_backbone/stack2`)."""
    blocks = collections.defaultdict(list)

    def walk(node, path):
        parsed = parse_block_names([c.name for c in node.children], block_patterns)
        for c in node.children:
            if c.name in parsed:
                stage, block, _ = parsed[c.name]
                blocks[("/".join((*path, stage)), block)].extend(c.all_layers())
            else:
                walk(c, (*path, c.name))

    walk(layer_tree(model), ())
    return blocks


def differential_blocks(
    weights_map: WeightsMap, block_patterns: Sequence[str] = DEFAULT_BLOCK_PATTERNS
) -> dict[tuple[int, int], list[keras.layers.Layer]]:
    """{(stage, block): [layers]} of the motivated model's blocks no base variable maps to."""
    covered = {id(e.motivated) for e in weights_map}
    return {
        key: layers
        for key, layers in _blocks(weights_map.motivated, block_patterns).items()
        if not any(id(v) in covered for layer in layers for v in layer.weights)
    }


def branch_gammas(
    weights_map: WeightsMap, block_patterns: Sequence[str] = DEFAULT_BLOCK_PATTERNS
) -> list[tuple[int, int, bool, float]]:
    """[(stage, block, differential, mean |gamma|)] of the last BatchNorm of each
    residual branch of the motivated model, in block order: how far each block is
    from the identity (0: the identity start's differential blocks)."""
    blocks = _blocks(weights_map.motivated, block_patterns)
    differential = differential_blocks(weights_map, block_patterns)
    rows = []
    for key, layers in sorted(blocks.items()):
        bn = _branch_end(layers)
        if bn is not None and bn.scale:
            rows.append((*key, key in differential, float(np.mean(np.abs(bn.gamma.numpy())))))
    return rows


def _branch_end(layers):
    """The last BatchNormalization of a block's residual branch (not its shortcut)."""
    bns = [
        layer
        for layer in layers
        if isinstance(layer, keras.layers.BatchNormalization)
        and "shortcut" not in layer.name
        and not layer.name.endswith("_0_bn")
    ]
    return bns[-1] if bns else None


def _silence_extra_inputs(weights_map):
    """Zeroes the parts of widened kernels that read extra channels; returns their paths."""
    owners = {}

    def index(node):
        owners.update((id(v), node) for v in node.variables)
        for c in node.children:
            index(c)

    index(layer_tree(weights_map.motivated))
    silenced = []
    for e in weights_map:
        kernel = e.motivated
        if kernel.name != "kernel" or tuple(e.base.shape) == tuple(kernel.shape):
            continue
        # The output axes are those of the layer's bias (the last axis when
        # there is none): Dense/Conv [.., in, out], attention q/k/v [d, heads,
        # head_dim] and its output projection [heads, head_dim, d].
        owner = owners.get(id(kernel))
        bias = next((v for v in owner.variables if v.name == "bias"), None) if owner else None
        inputs = len(kernel.shape) - (len(bias.shape) if bias is not None else 1)
        keep = np.ones(kernel.shape, bool)
        for axis in range(inputs):
            mapped = np.zeros(kernel.shape[axis], bool)
            mapped[e.start[axis] : e.start[axis] + e.base.shape[axis]] = True
            keep &= mapped.reshape([-1 if a == axis else 1 for a in range(len(kernel.shape))])
        if not keep.all():
            kernel.assign(np.where(keep, kernel.numpy(), 0).astype(kernel.dtype))
            silenced.append(kernel.path)
    return silenced


def _is_one_layer_block(layers):
    """Whether a block's layers are one layer and what it holds (keras-hub's transformer_block_N)."""
    return bool(layers) and {id(layer) for layer in layers} == {id(x) for x in layer_tree(layers[0]).all_layers()}


def _start_attention_block(block, gamma, noise, rng):
    """A block that is one layer adding its residuals inside `call` (keras-hub's
    pre-norm transformer blocks): scales the output projections of its
    branches, the attention's and the last Dense (the MLP's), by `gamma` (plus
    noise) and zeroes their biases. At gamma 0 each branch outputs zero, so
    the block is the identity: checked on random tokens, and undone (None
    returned) where it does not hold, as in a post-norm block. Returns the
    paths of the kernels it set."""
    layers = layer_tree(block).all_layers()
    attention = [x for x in layers if isinstance(x, keras.layers.MultiHeadAttention)]
    dense = [x for x in layers if isinstance(x, keras.layers.Dense)]
    if not attention or not dense:
        return None
    # Keras names a MultiHeadAttention's output projection attention_output.
    outputs = [x for a in attention for x in keras_internals.sublayers(a) if x.name == "attention_output"]
    outputs.append(dense[-1])
    if len(outputs) != len(attention) + 1:
        return None
    saved = [(v, v.numpy()) for layer in outputs for v in layer.weights]
    for v, value in saved:
        v.assign(np.zeros_like(value))
    # The last Dense projects back to the residual stream: its width is the block's.
    tokens = np.random.default_rng(0).normal(size=(2, 3, dense[-1].units)).astype(block.compute_dtype)
    if not np.allclose(keras.ops.convert_to_numpy(block(tokens, training=False)), tokens, atol=1e-6):
        for v, value in saved:
            v.assign(value)
        return None
    for v, value in saved:
        if v.name == "kernel" and (gamma or noise):
            scaled = gamma * value + (rng.normal(0.0, noise, value.shape) if noise else 0.0)
            v.assign(scaled.astype(value.dtype))
    return [v.path for v, _ in saved if v.name == "kernel"]


def identity_start(
    weights_map: WeightsMap, gamma: float = 0.0, noise: float = 0.0, seed: int | None = None
) -> list[str]:
    """Makes the motivated model's differential parts no-ops (see the section comment above).

    Args:
        gamma: the value the last BatchNorm gamma of each differential block
            takes; 0 (the default) makes the block the identity, a small value
            (0.1, 0.25) starts it near the identity with a gradient into the
            block's other weights.
        noise: standard deviation of Gaussian noise added to those gammas
            (the identity start "with noise", as growth methods start added
            layers: Net2Net, bert2BERT).
        seed: seed of that noise.

    A differential block that is one layer holding a pre-norm transformer
    block (keras-hub's ViT `transformer_block_N`, which adds its residuals
    inside `call`) starts with the output projections of its attention and
    MLP scaled by `gamma` (zero by default) and their biases zero: the
    identity too.

    Returns the names of the BatchNorm layers whose gamma was set and the
    paths of the kernels whose extra-channel inputs were zeroed or that were
    scaled.

    Raises:
        ValueError: when a differential block has no residual connection or
            no BatchNorm to set: such a block cannot start as the identity.
    """
    for name, value in (("gamma", gamma), ("noise", noise)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"identity_start needs {name} >= 0, got {value!r}.")
    rng = np.random.default_rng(seed)
    zeroed = _silence_extra_inputs(weights_map)
    for (stage, block), layers in sorted(differential_blocks(weights_map).items()):
        if _branch_end(layers) is None and _is_one_layer_block(layers):
            started = _start_attention_block(layers[0], gamma, noise, rng)
            if started:
                zeroed.extend(started)
                continue
        if not any(isinstance(layer, keras.layers.Add) for layer in layers):
            raise ValueError(
                f"Differential block {stage}/{block} has no residual Add: it cannot start as the identity."
            )
        bn = _branch_end(layers)
        if bn is None or not bn.scale:
            raise ValueError(f"Differential block {stage}/{block} has no BatchNormalization with a gamma to zero.")
        value = np.full(bn.gamma.shape, gamma) + (rng.normal(0.0, noise, bn.gamma.shape) if noise else 0.0)
        bn.gamma.assign(value.astype(bn.gamma.dtype))
        zeroed.append(bn.name)
    return zeroed
