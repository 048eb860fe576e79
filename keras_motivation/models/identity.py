"""Identity start (our extension, opt-in): differential blocks begin as no-ops.

In the paper's maps the motivated model's extra residual blocks start from
random initialisation, so at its first activation the motivated model
computes a function far from the base's. Setting the gamma of the last
BatchNorm of each differential block's residual branch to zero makes that
branch output zero: the block is the identity, and right after the first
copy the motivated model computes exactly the base's function (for maps that
add depth only).
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


def identity_start(weights_map):
    """Makes every differential residual block of the motivated model an identity.

    Returns the names of the BatchNorm layers whose gamma was zeroed.

    Raises:
        ValueError when the map also widens tensors (the extra channels would
        still change the function), or when a differential block has no
        residual connection or no BatchNorm to zero.
    """
    widened = [e.motivated.path for e in weights_map if tuple(e.base.shape) != tuple(e.motivated.shape)]
    if widened:
        raise ValueError(
            "identity start needs a depth-only map; this one also widens "
            f"{len(widened)} tensors (e.g. {widened[0]}): use differential_init='paper'."
        )
    zeroed = []
    for (stage, block), layers in sorted(differential_blocks(weights_map).items()):
        if not any(isinstance(layer, keras.layers.Add) for layer in layers):
            raise ValueError(f"Differential block {stage}/{block} has no residual Add: it cannot start as the identity.")
        bn = _branch_end(layers)
        if bn is None or not bn.scale:
            raise ValueError(f"Differential block {stage}/{block} has no BatchNormalization with a gamma to zero.")
        bn.gamma.assign(np.zeros(bn.gamma.shape, bn.gamma.dtype))
        zeroed.append(bn.name)
    return zeroed
