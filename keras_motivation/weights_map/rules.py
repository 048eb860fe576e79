"""The paper's map rules by family (`RULES`), and `get`, which the engine resolves a map argument with."""

from collections.abc import Callable

import keras

from keras_motivation.weights_map.derivation import derive
from keras_motivation.weights_map.mapping import WeightsMap


def resnet_depth_map(base: keras.Model, motivated: keras.Model) -> WeightsMap:
    """The paper's CIFAR/ImageNet ResNet map: depth only, last block to last block."""
    return derive(base, motivated, depth="last_to_last")


def efficientnet_map(base: keras.Model, motivated: keras.Model) -> WeightsMap:
    """The paper's EfficientNet map: first channels, first blocks of each stage."""
    return derive(base, motivated, depth="first")


def width_map(base: keras.Model, motivated: keras.Model) -> WeightsMap:
    """Width only (e.g. ViT): same layer names, first channels of every axis."""
    return derive(base, motivated, depth="first", block_patterns=())


RULES = {
    "resnet_depth": resnet_depth_map,
    "efficientnet": efficientnet_map,
    "width": width_map,
    "first": lambda b, m: derive(b, m, depth="first"),
    "last_to_last": lambda b, m: derive(b, m, depth="last_to_last"),
}


def get(
    identifier: WeightsMap | str | Callable[[keras.Model, keras.Model], WeightsMap],
    base: keras.Model,
    motivated: keras.Model,
) -> WeightsMap:
    """A WeightsMap from a map, a rule name in `RULES`, or a callable."""
    if isinstance(identifier, WeightsMap):
        return identifier
    if isinstance(identifier, str):
        if identifier not in RULES:
            raise ValueError(
                f"Unknown weights map {identifier!r}: use one of {sorted(RULES)}, "
                "a WeightsMap, or a callable(base, motivated) -> WeightsMap."
            )
        return RULES[identifier](base, motivated)
    if callable(identifier):
        return identifier(base, motivated)
    raise TypeError(f"weights_map must be a WeightsMap, a rule name or a callable, got {identifier!r}")
