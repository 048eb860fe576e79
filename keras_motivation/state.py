"""State variables of the engine and its conditions.

The mode flag, the counters, a condition's streak and its arrays (a drawn
schedule, a held-out batch) live in non-trainable variables of the layer
that owns them: they stay on the
device inside the compiled train step, are identical on every replica, and
are saved with the model (`save`, `save_weights`, `BackupAndRestore`).
"""

import keras


def state_variable(layer, name, dtype, value, shape=()):
    """A non-trainable variable of `layer` filled with `value` (a scalar by
    default): saved with it, the same on every replica."""
    return layer.add_weight(
        shape=shape,
        dtype=dtype,
        initializer=keras.initializers.Constant(value),
        trainable=False,
        aggregation="only_first_replica",
        name=name,
    )
