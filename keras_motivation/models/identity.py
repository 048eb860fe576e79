"""Identity start (our extension, opt-in): differential parts begin as no-ops.

In the paper's maps the motivated model's differential parts start from
random initialisation, so at its first activation the motivated model
computes a function far from the base's. `identity_start(weights_map)` makes
them no-ops, so that right after the first copy the motivated model computes
the base's function:

- depth: the gamma of the last BatchNorm of each differential block's
  residual branch is zero, so the branch outputs zero and the block is the
  identity (exact);
- width: every weight that reads an extra channel or feature (the input axes
  of a widened kernel beyond the mapped slice) is zero, so the base's
  channels never see the extra ones. The extra channels themselves keep their
  random incoming weights, so they are non-zero and learn (zeroing both sides
  would leave them at a saddle with zero gradient). Exact for convolutional
  nets, whose channel-wise BatchNorm, activations, squeeze-excite gates and
  pooling never mix channels; not exact where a layer mixes all features
  without weights: LayerNorm's mean and variance over a wider embedding (ViT)
  include the extra features. `tests/test_models.py` measures that gap.
"""

import collections

import keras
import numpy as np

from keras_motivation import weights_map as weights_map_lib


def differential_blocks(weights_map, block_patterns=weights_map_lib.DEFAULT_BLOCK_PATTERNS):
    """{(stage, block): [layers]} of the motivated model's blocks no base variable maps to."""
    motivated = weights_map.motivated
    parsed = weights_map_lib._parse_blocks(motivated, block_patterns)
    covered = {id(e.motivated) for e in weights_map}
    blocks = collections.defaultdict(list)
    for layer in motivated.layers:
        if layer.name in parsed:
            stage, block, _ = parsed[layer.name]
            blocks[(stage, block)].append(layer)
    return {
        key: layers
        for key, layers in blocks.items()
        if not any(id(v) in covered for layer in layers for v in layer.weights)
    }


def _branch_end(layers):
    """The last BatchNormalization of a block's residual branch (not its shortcut)."""
    bns = [
        layer
        for layer in layers
        if isinstance(layer, keras.layers.BatchNormalization) and "shortcut" not in layer.name and not layer.name.endswith("_0_bn")
    ]
    return bns[-1] if bns else None


def _silence_extra_inputs(weights_map):
    """Zeroes the parts of widened kernels that read extra channels; returns their paths."""
    variables = {v.path: v for v in weights_map.motivated.weights}
    silenced = []
    for e in weights_map:
        kernel = e.motivated
        if kernel.path.rsplit("/", 1)[-1] != "kernel" or tuple(e.base.shape) == tuple(kernel.shape):
            continue
        # The output axes are those of the layer's bias (the last axis when
        # there is none): Dense/Conv [.., in, out], attention q/k/v [d, heads,
        # head_dim] and its output projection [heads, head_dim, d].
        bias = variables.get(kernel.path.rsplit("/", 1)[0] + "/bias")
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


def identity_start(weights_map):
    """Makes the motivated model's differential parts no-ops (see the module docstring).

    Returns the names of the BatchNorm layers whose gamma was zeroed and the
    paths of the kernels whose extra-channel inputs were zeroed.

    Raises:
        ValueError when a differential block has no residual connection or no
        BatchNorm to zero: such a block cannot start as the identity.
    """
    zeroed = _silence_extra_inputs(weights_map)
    for (stage, block), layers in sorted(differential_blocks(weights_map).items()):
        if not any(isinstance(layer, keras.layers.Add) for layer in layers):
            raise ValueError(f"Differential block {stage}/{block} has no residual Add: it cannot start as the identity.")
        bn = _branch_end(layers)
        if bn is None or not bn.scale:
            raise ValueError(f"Differential block {stage}/{block} has no BatchNormalization with a gamma to zero.")
        bn.gamma.assign(np.zeros(bn.gamma.shape, bn.gamma.dtype))
        zeroed.append(bn.name)
    return zeroed
