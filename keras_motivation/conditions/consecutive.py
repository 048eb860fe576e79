"""The paper's rule, the raw batch loss decreased k times in a row, and its variants on another signal
(the loss' moving average, the gradient norm, a held-out batch's loss)."""

import keras
import numpy as np
from keras import ops

from keras_motivation.conditions.base import Condition
from keras_motivation.conditions.base import check_argument
from keras_motivation.state import state_variable


@keras.saving.register_keras_serializable(package="keras_motivation")
class ConsecutiveDecrease(Condition):
    """The paper's condition: the raw batch loss decreased `k` times in a row.

    After the k-th consecutive decrease the motivated model trains from the
    next batch, and keeps training while each new loss is lower than the
    last; the batch that breaks the streak is still its own. The streak and
    the previous loss are never reset (not at epoch boundaries, not at
    switches). A NaN loss compares false, so it never triggers motivation.
    """

    flag = "consecutive"
    flag_help = "the paper's rule, the raw batch loss decreased k times in a row"
    parameters = {"k": "decreases in a row"}
    takes_k = True
    label = "X-Y k={k}"
    noise_level = True
    ladders = True

    def __init__(self, k: int = 2, **kwargs):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"ConsecutiveDecrease needs an integer k >= 1, got k={k!r}.")
        super().__init__(**kwargs)
        self.k = k
        self.previous_loss = self._state("previous_loss", "float32", float("inf"))
        self.streak = self._state("streak", "int32", 0)

    def update(self, loss, mode, signals=None):
        return self._streak_of(ops.less(ops.cast(loss, "float32"), self.previous_loss), loss)

    def _streak_of(self, decreased, value):
        streak = ops.where(decreased, self.streak + 1, 0)
        self.streak.assign(streak)
        self.previous_loss.assign(ops.cast(value, "float32"))
        # Each k further decreases in a row motivate the next rung, and a loss that does not decrease falls
        # back to the base: for a pair, the paper's rule (the motivated model from the k-th decrease on).
        return ops.minimum(ops.floor_divide(streak, self.k), self.rungs - 1)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="keras_motivation")
class EmaDecrease(ConsecutiveDecrease):
    """k consecutive decreases of the loss' exponential moving average (paper's `ema`).

    A decrease is a drop of the EMA by at least `min_drop` (relative, 0.2%).
    A non-finite loss breaks the streak and leaves the EMA unchanged.
    """

    flag = "ema"
    flag_help = "k decreases in a row of the loss' exponential moving average"
    parameters = {
        "k": "decreases in a row",
        "alpha": "weight of the new loss, default 0.02",
        "min_drop": "relative drop that counts, default 0.002",
    }
    label = "X-Y {flag}"
    noise_level = False

    def __init__(self, k: int = 2, alpha: float = 0.02, min_drop: float = 0.002, **kwargs):
        check_argument(0 < alpha <= 1, f"EmaDecrease needs 0 < alpha <= 1, got alpha={alpha!r}.")
        check_argument(0 <= min_drop < 1, f"EmaDecrease needs 0 <= min_drop < 1, got min_drop={min_drop!r}.")
        super().__init__(k, **kwargs)
        self.alpha, self.min_drop = alpha, min_drop
        self.ema = self._state("ema", "float32", float("nan"))

    def update(self, loss, mode, signals=None):
        loss = ops.cast(loss, "float32")
        finite = ops.isfinite(loss)
        # A snapshot: on TensorFlow `.value` is the variable itself, and the
        # comparison below must see the EMA before this step's assign.
        previous = ops.copy(self.ema.value)
        ema = ops.where(ops.isnan(previous), loss, self.alpha * loss + (1 - self.alpha) * previous)
        ema = ops.where(finite, ema, previous)
        self.ema.assign(ema)
        decreased = ops.logical_and(finite, ops.less_equal(ema, previous * (1 - self.min_drop)))
        return self._streak_of(decreased, loss)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "min_drop": self.min_drop}


@keras.saving.register_keras_serializable(package="keras_motivation")
class GradientNormSlope(ConsecutiveDecrease):
    """The L2 norm of the concatenated (all-reduced) gradient increased k times in a row."""

    flag = "slope"
    flag_help = "the gradient norm increased k times in a row"
    parameters = {"k": "increases in a row"}
    label = "X-Y {flag}"
    noise_level = False

    def replica_signals(self, model, loss_fn, gradients):
        import tensorflow as tf

        # The norm of the summed gradient, not a sum of per-replica norms.
        ctx = tf.distribute.get_replica_context()
        gradients = [g for g in gradients if g is not None]
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            gradients = ctx.all_reduce("SUM", gradients)
        return {"gradient_norm": tf.linalg.global_norm(gradients)}

    def update(self, loss, mode, signals=None):
        norm = ops.cast(signals["gradient_norm"], "float32")
        # previous_loss holds the previous gradient norm here; -norm keeps
        # "increase" as a decrease of the stored value.
        return self._streak_of(ops.less(-norm, self.previous_loss), -norm)


@keras.saving.register_keras_serializable(package="keras_motivation")
class ValidationBatch(ConsecutiveDecrease):
    """The loss of one fixed held-out training batch, computed by the active
    model after its step, decreased k times in a row (paper's `valloss`)."""

    flag = "valloss"
    flag_help = "the loss of one held-out training batch decreased k times in a row"
    parameters = {"k": "decreases in a row"}
    takes_heldout = True
    label = "X-Y {flag}"
    noise_level = False

    @classmethod
    def from_arguments(cls, arguments, heldout=None):
        check_argument(heldout is not None, "Condition 'valloss' needs the held-out batch (x, y).")
        x, y = heldout
        return cls(x=x, y=y, y_dtype=str(y.dtype), **arguments)

    def __init__(
        self,
        k: int = 2,
        x: np.ndarray | None = None,
        y: np.ndarray | None = None,
        x_shape: tuple[int, ...] | None = None,
        y_shape: tuple[int, ...] | None = None,
        x_dtype: str = "float32",
        y_dtype: str = "int32",
        **kwargs,
    ):
        super().__init__(k, **kwargs)
        x_shape = tuple(x_shape or np.shape(x))
        y_shape = tuple(y_shape or np.shape(y))
        check_argument(
            len(x_shape) >= 2, "ValidationBatch needs the held-out batch: ValidationBatch(k, x=images, y=labels)."
        )
        self.x_dtype, self.y_dtype = x_dtype, y_dtype
        self.x = state_variable(self, "x", x_dtype, 0, shape=x_shape)
        self.y = state_variable(self, "y", y_dtype, 0, shape=y_shape)
        if x is not None:
            self.set_batch(x, y)

    def set_batch(self, x, y):
        self.x.assign(np.asarray(x, self.x_dtype))
        self.y.assign(np.asarray(y, self.y_dtype))

    def replica_signals(self, model, loss_fn, gradients):
        return {"validation_loss": loss_fn(self.y.value, model(self.x.value, training=False))}

    def update(self, loss, mode, signals=None):
        value = ops.cast(signals["validation_loss"], "float32")
        return self._streak_of(ops.less(value, self.previous_loss), value)

    def get_config(self):
        return {
            **super().get_config(),
            "x_shape": list(self.x.shape),
            "y_shape": list(self.y.shape),
            "x_dtype": self.x_dtype,
            "y_dtype": self.y_dtype,
        }
