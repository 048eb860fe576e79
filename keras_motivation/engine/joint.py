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

Cheaper steps: with `shared_forward` (the default) the part of the two
passes that is the same runs once (`shared_forward.py`: in a prefix pair
both outputs come out of the motivated model's pass); with `base_share=s`
the base's own layers see the first s of each batch (US-Nets and BigNAS pay
each extra size's share of the batch), so a joint step costs the motivated
model's step plus s of the base's.
"""

import keras
import tensorflow as tf

from keras_motivation import keras_internals
from keras_motivation import weights_map as weights_map_lib


@keras.saving.register_keras_serializable(package="keras_motivation")
class JointStep:
    """How the motivated mode trains both models on one batch.

    Args:
        base_weight (float): weight of the base's loss in the sum.
        motivated_weight (float): weight of the motivated model's loss.
        distillation (float): share of the base's loss taken from the motivated
            model's predictions (KL divergence; the models output
            probabilities), 0 to 1.
        base_share (float): share of each batch the base's own layers train on (the
            first rows), in (0, 1]; its loss is their mean.
        shared_forward (bool): compute the part of the two forward passes that is
            the same once (`keras_motivation.engine.shared_forward`), where
            the pair has one; the losses and gradients are the same.
    """

    def __init__(self, base_weight=1.0, motivated_weight=1.0, distillation=0.0, base_share=1.0, shared_forward=True):
        for name, value in (("base_weight", base_weight), ("motivated_weight", motivated_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"JointStep needs {name} >= 0, got {value!r}.")
        if isinstance(distillation, bool) or not isinstance(distillation, (int, float)) or not 0 <= distillation <= 1:
            raise ValueError(f"JointStep needs 0 <= distillation <= 1, got {distillation!r}.")
        if isinstance(base_share, bool) or not isinstance(base_share, (int, float)) or not 0 < base_share <= 1:
            raise ValueError(f"JointStep needs 0 < base_share <= 1, got {base_share!r}.")
        if not isinstance(shared_forward, bool):
            raise ValueError(f"JointStep needs shared_forward True or False, got {shared_forward!r}.")
        self.base_share = float(base_share)
        self.shared_forward = shared_forward
        self.base_weight = float(base_weight)
        self.motivated_weight = float(motivated_weight)
        self.distillation = float(distillation)

    def get_config(self):
        return {
            "base_weight": self.base_weight,
            "motivated_weight": self.motivated_weight,
            "distillation": self.distillation,
            "base_share": self.base_share,
            "shared_forward": self.shared_forward,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v:g}" if not isinstance(v, bool) else f"{k}={v}" for k, v in self.get_config().items())
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


def _rows(share, *tensors):
    """The first `share` of each tensor's rows (None stays None): the batch the base's own layers see."""
    if share == 1.0:
        return tensors
    n = tf.cast(tf.math.ceil(share * tf.cast(tf.shape(tf.nest.flatten(tensors[0])[0])[0], "float32")), "int32")
    return tuple(None if t is None else tf.nest.map_structure(lambda v: v[:n], t) for t in tensors)


def forward_flops(joint, plan, base_flops, motivated_flops, tail_flops=None):
    """Forward FLOPs per image of one joint step: the motivated model's pass, plus the base's own
    layers (its tail with a shared forward, `tail_flops`; else the whole base) on `base_share` of the batch."""
    own = tail_flops if plan is not None else base_flops
    return motivated_flops + joint.base_share * own


def ladder_views(maps):
    """{rung r: [the views of each smaller rung j in rung r]}: for each trainable variable of rung j,
    the entry of the rung-r variable it is a slice of, the neighbouring maps composed through the
    rungs between."""
    return {r: [joint_views(weights_map_lib.compose(maps[j:r])) for j in range(r)] for r in range(1, len(maps) + 1)}


def replica_update(model, mode, data):
    """One joint step of rung `mode` on one replica (`MotivatedModel._replica_update`'s twin):
    returns (that model's scaled loss, the condition's signals).

    Rung `mode` and every smaller rung train on the batch: the smaller ones read their variables as
    slices of rung `mode`'s (`ladder_views`), with `base_weight` on the base's loss and 1 on the rungs
    between. With the rung's `SharedForward` (`model.shared_forward_plans`) the smaller ones run only
    their tails, on the cut of rung `mode`'s pass."""
    joint = model.joint
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    top, optimizer = model.rungs[mode], model.optimizers[mode]
    plan = model.shared_forward_plans.get(mode)
    own = [t.model for t in plan.tails] if plan is not None else model.rungs[:mode]
    own_views = [t.views for t in plan.tails] if plan is not None else model._ladder.views[mode]
    states = [m.non_trainable_variables for m in own]
    snapshots = [t.snapshot_statistics() for t in plan.tails] if plan is not None else None
    x_own, y_own, w_own = _rows(joint.base_share, x, y, sample_weight)
    with tf.GradientTape() as tape:
        if plan is not None:
            y_top, cuts = plan.motivated_pass(x)
        else:
            y_top, cuts = top(x, training=True), [x] * mode
        top_loss = model._loss(top, y, y_top, sample_weight)
        total = joint.motivated_weight * top_loss
        passes = []
        (teacher,) = _rows(joint.base_share, y_top)
        for j, (m, views, state, cut) in enumerate(zip(own, own_views, states, cuts)):
            (cut,) = _rows(joint.base_share, cut)
            y_j, new_state, losses = m.stateless_call(
                [_read(e) for e in views], [v.value for v in state], cut, training=True, return_losses=True
            )
            if plan is not None:
                losses = list(losses) + plan.tails[j].trunk_regularization()
            loss, tracked = _smaller_loss(model, joint, y_own, y_j, w_own, losses, teacher)
            total = total + (joint.base_weight if j == 0 else 1.0) * loss
            passes.append((y_j, new_state, tracked))
        scaled = optimizer.scale_loss(total)
    signals = model._apply_gradients(top, optimizer, tape, scaled)
    for state, (_, new_state, _) in zip(states, passes):
        for variable, value in zip(state, new_state):
            variable.assign(value)
    if plan is not None:
        for tail, snapshot in zip(plan.tails, snapshots):
            tail.update_statistics(snapshot)
    model._track(mode, x, y, y_top, top_loss, sample_weight)
    for j, (y_j, _, tracked) in enumerate(passes):
        model._track(j, x_own, y_own, y_j, tracked, w_own)
    return top_loss, signals


def _smaller_loss(model, joint, y, y_pred, sample_weight, losses, teacher):
    """(the loss a smaller rung trains on, the loss it logs): its compiled loss and own losses, and
    with distillation that share of KL(bigger || smaller)."""
    loss = keras_internals.compiled_loss(model)(y, y_pred, sample_weight)
    for extra in losses:
        loss = loss + keras_internals.additional_loss(model, extra)
    tracked = loss
    if joint.distillation:
        kl = keras.losses.KLDivergence()(tf.stop_gradient(teacher), y_pred)
        loss = (1.0 - joint.distillation) * loss + joint.distillation * kl
    return loss, tracked
