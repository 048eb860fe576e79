"""Deprecated: identity start moved to `keras_motivation.weights_map`.

It is an operation on a weights map, not a model family:
`keras_motivation.weights_map.identity_start(weights_map)`.
"""

import warnings

from keras_motivation import weights_map as _weights_map

_MOVED = ("identity_start", "differential_blocks")


def __getattr__(name):
    if name in _MOVED:
        warnings.warn(
            f"keras_motivation.models.identity.{name} moved: use keras_motivation.weights_map.{name}.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_weights_map, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
