"""CIFAR ResNets of He et al. (2016): depth 6n+2, three stages of n basic blocks
(fewer stages on request, for small test models).

Layer names follow `stage{s}_block{b}_{role}` so that `weights_map.derive`
(and the paper's `resnet_depth_map`) find the blocks; the stem is `stem_*`
and the classifier `logits`.

A prefix ResNet (`prefix_resnet_cifar(8, 14)`, registry name `resnet8p14`)
is ResNet-8's blocks with the blocks ResNet-14 has more appended to the last
stage ([1, 1, 4]): the depth map keeps ResNet-8's single block first in each
stage, so every block ResNet-8 lacks comes after its last block and ResNet-8's
forward pass is the first part of the prefix network's (a prefix pair).
"""

from collections.abc import Sequence

import keras
from keras import layers


def _bn(name, sync_bn):
    # PyTorch's BatchNorm2d defaults (momentum 0.1 there is 0.9 here), as in
    # the paper's reference setting.
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=sync_bn, name=name)


def _conv(filters, kernel, stride, name, weight_decay):
    return layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
        name=name,
    )


def _blocks_per_stage(n, stages, blocks):
    """The blocks of each stage: `blocks` as given (checked), else n in each."""
    if blocks is None:
        return [n] * stages
    blocks = list(blocks)
    if len(blocks) != stages or any(not isinstance(b, int) or b < 1 for b in blocks):
        raise ValueError(f"ResNet blocks must be {stages} counts >= 1 (one per stage), got {blocks!r}.")
    return blocks


def prefix_blocks(base_depth, depth, stages=3):
    """Blocks per stage of ResNet-`base_depth` with ResNet-`depth`'s extra blocks in its last stage.

    prefix_blocks(8, 14) == [1, 1, 4], prefix_blocks(8, 20) == [1, 1, 7]: the
    (depth - base_depth) / 2 basic blocks (two convolutions each) all go last.
    """
    for d in (base_depth, depth):
        if d < 8 or (d - 2) % 6:
            raise ValueError(f"Prefix ResNet depths must be 6n+2 with n >= 1 (8, 14, 20, ...), got {d}.")
    if depth <= base_depth:
        raise ValueError(f"A prefix ResNet must be deeper than its base: got {base_depth} inside {depth}.")
    n = (base_depth - 2) // 6
    return [n] * (stages - 1) + [n + (depth - base_depth) // 2]


def prefix_resnet_cifar(base_depth: int, depth: int, stages: int = 3, name: str | None = None, **kwargs) -> keras.Model:
    """ResNet-`base_depth` with ResNet-`depth`'s extra blocks appended to its last stage.

    It has the depth of ResNet-`depth` and about its multiply-adds (a CIFAR
    block costs about the same in every stage), with more parameters in the
    last stage. `kwargs` are `resnet_cifar`'s (width, num_classes, ...).
    """
    blocks = prefix_blocks(base_depth, depth, stages)
    default_name = f"resnet{base_depth}p{depth}" + ("" if stages == 3 else f"_stages{stages}")
    return resnet_cifar(base_depth, stages=stages, blocks=blocks, name=name or default_name, **kwargs)


def resnet_cifar(
    depth: int,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    width: int = 16,
    sync_bn: bool = False,
    weight_decay: float = 0.0,
    stages: int = 3,
    blocks: Sequence[int] | None = None,
    name: str | None = None,
) -> keras.Model:
    """Builds ResNet-`depth` for small images.

    Args:
        depth: 6n+2 (8, 14, 20, 32, 44, 56, 110, ...).
        num_classes: size of the softmax output.
        input_shape: (height, width, channels).
        width: channels of the first stage (16 in the paper); stages use
            width, 2*width and 4*width.
        sync_bn: synchronized BatchNormalization for multi-replica runs.
        weight_decay: L2 factor on kernels (0 leaves decay to the optimizer).
        stages: how many of the three stages to build (3, the paper's); with
            fewer the depth still sets n, the blocks per stage. One stage
            makes a model with a third of the layers for tests and quick runs.
        blocks: blocks per stage (one count per built stage) instead of the
            depth's n in every stage; `prefix_resnet_cifar` sets it.

    Returns:
        A functional `keras.Model` returning class probabilities.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, ...), got {depth}.")
    if stages not in (1, 2, 3):
        raise ValueError(f"ResNet stages must be 1, 2 or 3, got {stages!r}.")
    n = (depth - 2) // 6
    blocks = _blocks_per_stage(n, stages, blocks)
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv(width, 3, 1, "stem_conv", weight_decay)(inputs)
    x = _bn("stem_bn", sync_bn)(x)
    x = layers.ReLU(name="stem_relu")(x)
    for s, (filters, n_blocks) in enumerate(zip((width, 2 * width, 4 * width), blocks), start=1):
        for b in range(n_blocks):
            stride = 2 if (s > 1 and b == 0) else 1
            p = f"stage{s}_block{b}_"
            shortcut = x
            y = _conv(filters, 3, stride, p + "conv1", weight_decay)(x)
            y = _bn(p + "bn1", sync_bn)(y)
            y = layers.ReLU(name=p + "relu1")(y)
            y = _conv(filters, 3, 1, p + "conv2", weight_decay)(y)
            y = _bn(p + "bn2", sync_bn)(y)
            if stride != 1 or x.shape[-1] != filters:
                shortcut = _conv(filters, 1, stride, p + "shortcut_conv", weight_decay)(x)
                shortcut = _bn(p + "shortcut_bn", sync_bn)(shortcut)
            x = layers.Add(name=p + "add")([shortcut, y])
            x = layers.ReLU(name=p + "out")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(
        num_classes,
        activation="softmax",
        kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
        name="logits",
    )(x)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}" + ("" if stages == 3 else f"_stages{stages}"))
