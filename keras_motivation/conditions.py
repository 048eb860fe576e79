"""Motivation conditions: when the motivated model trains instead of the base.

A condition is a Keras layer that is never called: it only holds its state in
non-trainable variables (so the state runs inside the compiled train step on
any device, is identical on every replica, and is saved with the model) and
answers two questions inside the train function:

- `select(motivated)`, before a step: which model trains this batch. Only
  conditions with `selects_before_step = True` are asked (random schedules,
  `Always`); the others keep the current state.
- `update(loss, motivated)`, after the step, with the replica-averaged raw
  batch loss of the model that trained: which model trains the next batch.

`on_epoch_begin(epoch, steps_per_epoch)` runs on the host at each epoch start.
"""

import keras
from keras import ops


class Condition(keras.layers.Layer):
    """Base class of motivation conditions."""

    selects_before_step = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def _state(self, name, dtype, value):
        return self.add_weight(
            shape=(),
            dtype=dtype,
            initializer=keras.initializers.Constant(value),
            trainable=False,
            aggregation="only_first_replica",
            name=name,
        )

    def select(self, motivated):
        return motivated

    def update(self, loss, motivated):
        raise NotImplementedError

    def on_epoch_begin(self, epoch, steps_per_epoch):
        pass

    def call(self, inputs):
        raise TypeError(f"{type(self).__name__} is not called on data; MotivatedModel drives it.")


@keras.saving.register_keras_serializable(package="keras_motivation")
class ConsecutiveDecrease(Condition):
    """The paper's condition: the raw batch loss decreased `k` times in a row.

    After the k-th consecutive decrease the motivated model trains from the
    next batch, and keeps training while each new loss is lower than the
    last; the batch that breaks the streak is still its own. The streak and
    the previous loss are never reset (not at epoch boundaries, not at
    switches). A NaN loss compares false, so it never triggers motivation.
    """

    def __init__(self, k=2, **kwargs):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"ConsecutiveDecrease needs an integer k >= 1, got k={k!r}.")
        super().__init__(**kwargs)
        self.k = k
        self.previous_loss = self._state("previous_loss", "float32", float("inf"))
        self.streak = self._state("streak", "int32", 0)

    def update(self, loss, motivated):
        loss = ops.cast(loss, "float32")
        streak = ops.where(ops.less(loss, self.previous_loss), self.streak + 1, 0)
        self.streak.assign(streak)
        self.previous_loss.assign(loss)
        return ops.greater_equal(streak, self.k)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


def get(identifier):
    """A condition from an instance, a config dict, or None (the paper's k=2)."""
    if identifier is None:
        return ConsecutiveDecrease(2)
    if isinstance(identifier, Condition):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise TypeError(f"condition must be a Condition, got {identifier!r}")
