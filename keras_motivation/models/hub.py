"""keras-hub image classifiers as pair members: ResNet (basic and bottleneck blocks) and ViT.

Built from keras-hub's own classes, randomly initialised, at the sizes of
keras-hub's presets of the same names (ResNet v1 with a 7x7 stem: 18 and 34
with basic blocks, 50/101/152 with bottleneck blocks; ViT Tiny/Small/Base,
depth 12, patch 16). `weights_map.derive` maps them by variable path: the
ResNets' blocks (`stack2_block3_1_conv` inside the backbone) by the paper's
last-to-last depth rule, the ViTs' tensors by the width rule. keras-hub is
optional (the `hub` set-up, docs/contributing.md "Dependencies").
"""

RESNETS = {
    18: ("basic_block", [2, 2, 2, 2]),
    34: ("basic_block", [3, 4, 6, 3]),
    50: ("bottleneck_block", [3, 4, 6, 3]),
    101: ("bottleneck_block", [3, 4, 23, 3]),
    152: ("bottleneck_block", [3, 8, 36, 3]),
}
VITS = {
    "tiny": dict(hidden_dim=192, num_heads=3, mlp_dim=768),
    "small": dict(hidden_dim=384, num_heads=6, mlp_dim=1536),
    "base": dict(hidden_dim=768, num_heads=12, mlp_dim=3072),
}
INSTALL = (
    "keras-hub pairs need keras-hub: run tools/setup_venv.sh (its default extras include hub), "
    'or pip install -e ".[hub]" && pip install --no-deps "keras-hub==0.32.*".'
)


def available():
    """Whether keras-hub can be imported."""
    try:
        import keras_hub  # noqa: F401
    except ImportError:
        return False
    return True


def _keras_hub():
    if not available():
        raise ValueError(INSTALL)
    import keras_hub

    return keras_hub


def hub_resnet(depth, num_classes=1000, input_shape=(224, 224, 3), name=None):
    """keras-hub's ResNet-`depth` classifier (18, 34, 50, 101 or 152), softmax head of `num_classes`."""
    if depth not in RESNETS:
        raise ValueError(f"keras-hub ResNet depth must be one of {sorted(RESNETS)}, got {depth}.")
    keras_hub = _keras_hub()
    block_type, blocks = RESNETS[depth]
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=blocks,
        stackwise_num_strides=[1, 2, 2, 2],
        block_type=block_type,
        image_shape=tuple(input_shape),
    )
    return keras_hub.models.ResNetImageClassifier(
        backbone=backbone, num_classes=num_classes, activation="softmax", name=name or f"hub_resnet{depth}"
    )


def hub_vit(variant, num_classes=1000, input_shape=(224, 224, 3), patch_size=16, depth=12, name=None):
    """keras-hub's ViT classifier (`variant` tiny, small or base), softmax head of `num_classes`."""
    if variant not in VITS:
        raise ValueError(f"keras-hub ViT variant must be one of {sorted(VITS)}, got {variant!r}.")
    h, w = input_shape[:2]
    if h % patch_size or w % patch_size:
        raise ValueError(f"Image size {h}x{w} is not a multiple of the patch size {patch_size}.")
    keras_hub = _keras_hub()
    backbone = keras_hub.models.ViTBackbone(
        image_shape=tuple(input_shape), patch_size=patch_size, num_layers=depth, **VITS[variant]
    )
    return keras_hub.models.ViTImageClassifier(
        backbone=backbone, num_classes=num_classes, activation="softmax", name=name or f"hub_vit_{variant}"
    )
