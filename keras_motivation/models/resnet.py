"""ImageNet bottleneck ResNets (50/101/152) from keras.applications.

Their layer names (`conv4_block23_1_conv`) line up across depths, so the
paper's last-to-last depth map (`weights_map.resnet_depth_map`) derives from
the names: ResNet-50 -> ResNet-101 maps conv4 blocks 1-5 to 1-5 and block 6
to block 23.
"""

import keras

BUILDERS = {50: keras.applications.ResNet50, 101: keras.applications.ResNet101, 152: keras.applications.ResNet152}


def resnet(
    depth: int, num_classes: int = 1000, input_shape: tuple[int, int, int] = (224, 224, 3), name: str | None = None
) -> keras.Model:
    """ResNet-`depth` (50, 101 or 152), randomly initialised, softmax head of `num_classes`."""
    if depth not in BUILDERS:
        raise ValueError(f"ImageNet ResNet depth must be one of {sorted(BUILDERS)}, got {depth}.")
    model = BUILDERS[depth](weights=None, include_top=True, classes=num_classes, input_shape=tuple(input_shape))
    if name:
        model.name = name
    return model
