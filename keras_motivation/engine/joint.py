"""The joint step: both models train on one batch, the nested-network way.

Universally Slimmable Networks and MatFormer train every nested size on the
same batch with one optimizer step; this is that step for a base and a
motivated model. `MotivatedModel(..., joint=JointStep())` makes it the
motivated mode's step: loss = motivated_weight x the motivated model's loss
+ base_weight x the base's, one update of the motivated model's variables
by its optimizer.

The base's forward reads its variables as slices of the motivated model's
(`stateless_call` with the sliced values, `joint_views`), so its gradient lands
on the slices the weights map names and no copy runs per step; its BatchNorm
moving statistics (and other non-trainable state) stay its own, updated by
that forward. A second way, both gradients computed and the base's added
into the slices, then the base refreshed, gives the same update with two
backward graphs and a copy per step: this one is exact by construction.

In-place distillation: with `distillation=d` the base's loss is
(1 - d) x its loss on the labels + d x KL(motivated || base), the motivated
model's predictions taken as constants (US-Nets' in-place distillation).
"""

import keras
import tensorflow as tf

from keras_motivation import keras_internals


@keras.saving.register_keras_serializable(package="keras_motivation")
class JointStep:
    """How the motivated mode trains both models on one batch.

    Args:
        base_weight: weight of the base's loss in the sum.
        motivated_weight: weight of the motivated model's loss.
        distillation: share of the base's loss taken from the motivated
            model's predictions (KL divergence; the models output
            probabilities), 0 to 1.
    """

    def __init__(self, base_weight=1.0, motivated_weight=1.0, distillation=0.0):
        for name, value in (("base_weight", base_weight), ("motivated_weight", motivated_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"JointStep needs {name} >= 0, got {value!r}.")
        if isinstance(distillation, bool) or not isinstance(distillation, (int, float)) or not 0 <= distillation <= 1:
            raise ValueError(f"JointStep needs 0 <= distillation <= 1, got {distillation!r}.")
        self.base_weight = float(base_weight)
        self.motivated_weight = float(motivated_weight)
        self.distillation = float(distillation)

    def get_config(self):
        return {
            "base_weight": self.base_weight,
            "motivated_weight": self.motivated_weight,
            "distillation": self.distillation,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v:g}" for k, v in self.get_config().items())
        return f"JointStep({args})"


def get(joint):
    """`joint` as a JointStep or None: a JointStep, True (the defaults), a dict of its arguments, or None/False."""
    if joint is None or joint is False:
        return None
    if joint is True:
        return JointStep()
    if isinstance(joint, dict):
        return JointStep(**joint)
    if isinstance(joint, JointStep):
        return joint
    raise ValueError(f"joint must be a JointStep, True, a dict of its arguments or None, got {joint!r}.")


def joint_views(weights_map):
    """For each of the base's trainable variables, in order, the entry of the
    motivated variable it is a slice of. Raises ValueError naming any that no
    entry maps (the joint step could not train it)."""
    by_base = {id(e.base): e for e in weights_map.entries}
    missing = [v.path for v in weights_map.base.trainable_variables if id(v) not in by_base]
    if missing:
        raise ValueError(f"The joint step needs every trainable base variable mapped; unmapped: {', '.join(missing)}.")
    return [by_base[id(v)] for v in weights_map.base.trainable_variables]


def _read(entry):
    """The base's value of `entry`, read from the motivated variable (differentiable)."""
    if tuple(entry.base.shape) == tuple(entry.motivated.shape):
        return entry.motivated.value
    return keras.ops.slice(entry.motivated.value, entry.start, tuple(entry.base.shape))


def replica_update(model, joint, views, data):
    """One joint step on one replica (`MotivatedModel._replica_update`'s twin):
    returns (the motivated model's scaled loss, the condition's signals)."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    base, motivated, optimizer = model.base, model.motivated, model.motivated_optimizer
    compiled_loss = keras_internals.compiled_loss(model)
    base_state = base.non_trainable_variables
    with tf.GradientTape() as tape:
        y_motivated = motivated(x, training=True)
        motivated_loss = model._loss(motivated, y, y_motivated, sample_weight)
        y_base, new_state, base_losses = base.stateless_call(
            [_read(e) for e in views], [v.value for v in base_state], x, training=True, return_losses=True
        )
        base_loss = compiled_loss(y, y_base, sample_weight)
        for extra in base_losses:
            base_loss = base_loss + keras_internals.additional_loss(model, extra)
        tracked_base_loss = base_loss
        if joint.distillation:
            teacher = tf.stop_gradient(y_motivated)
            kl = keras.losses.KLDivergence()(teacher, y_base)
            base_loss = (1.0 - joint.distillation) * base_loss + joint.distillation * kl
        total = joint.motivated_weight * motivated_loss + joint.base_weight * base_loss
        scaled = optimizer.scale_loss(total)
    variables = motivated.trainable_variables
    gradients = tape.gradient(scaled, variables)
    optimizer.apply_gradients(zip(gradients, variables))
    for variable, value in zip(base_state, new_state):
        variable.assign(value)
    signals = model.condition.replica_signals(motivated, compiled_loss, gradients)
    model._track(motivated, x, y, y_motivated, motivated_loss, sample_weight)
    model._track(base, x, y, y_base, tracked_base_loss, sample_weight)
    return motivated_loss, signals
