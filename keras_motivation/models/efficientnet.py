"""EfficientNet B0-B7 from keras.applications, at any image size (224 in the paper).

The paper's map (`weights_map.efficientnet_map`): each base block maps to the
block of the same position among the first blocks of its stage (`block2b` ->
`block2b`), every tensor takes the first channels (depthwise and
squeeze-excite kernels and BatchNorm statistics included). B0 -> B1 is
depth-only (both width 1.0); from B1 -> B2 on, widths grow too.

Dropout before the classifier and stochastic depth (drop-connect 0.2) are
keras.applications' own, the values of the EfficientNet paper, as the
motivation paper's recipe asks.
"""

import keras

VARIANTS = tuple(f"b{i}" for i in range(8))


def efficientnet(
    variant: str, num_classes: int = 1000, input_shape: tuple[int, int, int] = (224, 224, 3), name: str | None = None
) -> keras.Model:
    """EfficientNet-`variant` ("b0".."b7"), randomly initialised, softmax head."""
    variant = str(variant).lower().removeprefix("efficientnet_")
    if variant not in VARIANTS:
        raise ValueError(f"EfficientNet variant must be one of {VARIANTS}, got {variant!r}.")
    builder = getattr(keras.applications, f"EfficientNetB{variant[1]}")
    model = builder(weights=None, include_top=True, classes=num_classes, input_shape=tuple(input_shape))
    if name:
        model.name = name
    return model
