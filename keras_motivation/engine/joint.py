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
model's predictions taken as constants (US-Nets' in-place distillation). In a
ladder each smaller rung learns from the largest model of the step, or with
`distillation_teachers="all"` from every larger one, the mean of their KL
terms (Li et al.'s "one-for-all" distillation, arXiv 1908.06294).

Loss weights and gradient equilibrium: rung j's loss is weighted
`weights[j]` (a pair: `base_weight`, `motivated_weight`). Summed, the
losses of every rung reach the weights they share, so a shared trunk's step
grows with the number of rungs (weights 2 + 1 + 1 in a ladder under the
default policy: four times one network's step at the same rate) while what
one rung alone trains gets one share. With `equilibrium=True` each element of
each variable takes the weighted mean of the gradients of the losses that
reach it: the gradient of the weighted sum divided by the sum of the weights
of the rungs whose variables include it (the rung of the step for all of its
variables, a smaller rung for the slices its weights map names). In a chain
of exits with their own classifiers this is Li et al.'s gradient
equilibrium (ICCV 2019: at each segment boundary the later exits' gradient
scaled by (k-i)/(k-i+1), the exit's own by 1/(k-i+1)); written per element
it also covers a head the rungs share and a width pair's slices, and it is
the same with or without the shared forward pass. Every shared weight then
moves at one network's scale of step.

Cheaper steps: with `shared_forward` (the default) the part of the two
passes that is the same runs once (`shared_forward.py`: in a prefix pair
both outputs come out of the motivated model's pass); with `base_share=s`
the base's own layers see the first s of each batch (US-Nets and BigNAS pay
each extra size's share of the batch), so a joint step costs the motivated
model's step plus s of the base's.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_motivation import keras_internals
from keras_motivation import weights_map as weights_map_lib

TEACHERS = ("largest", "all")


@keras.saving.register_keras_serializable(package="keras_motivation")
class JointStep:
    """How a mode above the base trains its model and every smaller one on one batch.

    Args:
        base_weight (float): weight of the base's loss in the sum.
        motivated_weight (float): weight of the loss of the step's largest model.
        distillation (float): share of each smaller model's loss taken from a bigger
            model's predictions (KL divergence; the models output
            probabilities), 0 to 1.
        base_share (float): share of each batch the smaller models' own layers train
            on (the first rows), in (0, 1]; their losses are their means.
        shared_forward (bool): compute the part of the forward passes that is the
            same once (`keras_motivation.engine.shared_forward`), where the
            models have one; the losses and gradients are the same.
        weights (Sequence[float] | None): one loss weight per model, smallest first (a ladder's
            `[w0, w1, w2]`), instead of `base_weight` and `motivated_weight`;
            a joint step of a middle rung weights its models with theirs.
            Without it the models between weigh 1.
        equilibrium (bool): each variable (each element of a sliced one) takes the
            weighted mean of the gradients of the losses that reach it
            instead of their weighted sum (the module's docstring), so a
            shared trunk's step does not grow with the number of models.
        distillation_teachers (str): "largest" (each smaller model learns from the
            step's largest) or "all" (from every larger model of the step,
            the mean of their KL terms).
    """

    def __init__(
        self,
        base_weight=1.0,
        motivated_weight=1.0,
        distillation=0.0,
        base_share=1.0,
        shared_forward=True,
        weights=None,
        equilibrium=False,
        distillation_teachers="largest",
    ):
        for name, value in (("base_weight", base_weight), ("motivated_weight", motivated_weight)):
            if not _is_weight(value):
                raise ValueError(f"JointStep needs {name} >= 0, got {value!r}.")
        if isinstance(distillation, bool) or not isinstance(distillation, (int, float)) or not 0 <= distillation <= 1:
            raise ValueError(f"JointStep needs 0 <= distillation <= 1, got {distillation!r}.")
        if isinstance(base_share, bool) or not isinstance(base_share, (int, float)) or not 0 < base_share <= 1:
            raise ValueError(f"JointStep needs 0 < base_share <= 1, got {base_share!r}.")
        for name, value in (("shared_forward", shared_forward), ("equilibrium", equilibrium)):
            if not isinstance(value, bool):
                raise ValueError(f"JointStep needs {name} True or False, got {value!r}.")
        if weights is not None:
            if not isinstance(weights, (list, tuple)) or len(weights) < 2 or not all(map(_is_weight, weights)):
                raise ValueError(
                    f"JointStep needs weights as a list of two or more losses' weights >= 0, smallest model first, "
                    f"got {weights!r}."
                )
            if (base_weight, motivated_weight) != (1.0, 1.0):
                raise ValueError(
                    "JointStep takes weights=[...] or base_weight and motivated_weight, not both: put them in weights."
                )
            weights = tuple(float(w) for w in weights)
        if distillation_teachers not in TEACHERS:
            raise ValueError(
                f"JointStep needs distillation_teachers 'largest' or 'all', got {distillation_teachers!r}."
            )
        self.base_share = float(base_share)
        self.shared_forward = shared_forward
        self.base_weight = float(base_weight)
        self.motivated_weight = float(motivated_weight)
        self.distillation = float(distillation)
        self.weights = weights
        self.equilibrium = equilibrium
        self.distillation_teachers = distillation_teachers

    def weight(self, rung, top):
        """The loss weight of model `rung` in a joint step whose largest model is rung `top`."""
        if self.weights is not None:
            return self.weights[rung]
        if rung == top:
            return self.motivated_weight
        return self.base_weight if rung == 0 else 1.0

    def check_models(self, count):
        """Raises a one-line ValueError where `weights` does not give one weight per model of a ladder of `count`."""
        if self.weights is not None and len(self.weights) != count:
            raise ValueError(
                f"JointStep(weights={list(self.weights)}) has {len(self.weights)} weights for {count} models: "
                "give one per model, smallest first."
            )

    def get_config(self):
        return {
            "base_weight": self.base_weight,
            "motivated_weight": self.motivated_weight,
            "distillation": self.distillation,
            "base_share": self.base_share,
            "shared_forward": self.shared_forward,
            "weights": None if self.weights is None else list(self.weights),
            "equilibrium": self.equilibrium,
            "distillation_teachers": self.distillation_teachers,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        def fmt(value):
            return f"{value:g}" if isinstance(value, float) else repr(value)

        args = ", ".join(f"{k}={fmt(v)}" for k, v in self.get_config().items())
        return f"JointStep({args})"


def _is_weight(value):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0


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


def equilibrium_scales(model, mode):
    """For each trainable variable of rung `mode`, in order, what its gradient is multiplied by under
    `equilibrium`: 1 / the sum of the weights of the joint step's losses that reach it (a float where that
    sum is the same for the whole variable, else an array of its shape), or None where that is 1."""
    joint, top = model.joint, model.rungs[mode]
    index = {id(v): i for i, v in enumerate(top.trainable_variables)}
    sums = [np.full(tuple(v.shape), joint.weight(mode, mode), dtype="float64") for v in top.trainable_variables]
    for rung, views in enumerate(model._ladder.views[mode]):
        for entry in views:
            block = tuple(slice(s, s + n) for s, n in zip(entry.start, entry.base.shape))
            sums[index[id(entry.motivated)]][block] += joint.weight(rung, mode)
    scales = []
    for total, variable in zip(sums, top.trainable_variables):
        # A weight of 0 everywhere leaves a zero gradient: any finite scale does.
        scale = np.where(total > 0, 1.0 / np.where(total > 0, total, 1.0), 1.0)
        if np.all(scale == scale.flat[0]):
            scales.append(None if scale.flat[0] == 1.0 else float(scale.flat[0]))
        else:
            scales.append(scale.astype(variable.dtype))
    return scales


def replica_update(model, mode, data):
    """One joint step of rung `mode` on one replica (`MotivatedModel._replica_update`'s twin):
    returns (that model's scaled loss, the condition's signals).

    Rung `mode` and every smaller rung train on the batch: the smaller ones read their variables as
    slices of rung `mode`'s (`ladder_views`), each loss weighted by `JointStep.weight`. With the rung's
    `SharedForward` (`model.shared_forward_plans`) the smaller ones run only their tails, on the cut of
    rung `mode`'s pass. With `equilibrium` the gradients are scaled by `equilibrium_scales`."""
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
        total = joint.weight(mode, mode) * top_loss
        passes = []
        for j, (m, views, state, cut) in enumerate(zip(own, own_views, states, cuts)):
            (cut,) = _rows(joint.base_share, cut)
            y_j, new_state, losses = m.stateless_call(
                [_read(e) for e in views], [v.value for v in state], cut, training=True, return_losses=True
            )
            if plan is not None:
                losses = list(losses) + plan.tails[j].trunk_regularization()
            passes.append((y_j, new_state, losses))
        (y_top_own,) = _rows(joint.base_share, y_top)
        outputs = [y_j for y_j, _, _ in passes] + [y_top_own]
        tracked = []
        for j, (y_j, _, losses) in enumerate(passes):
            loss, logged = _smaller_loss(model, joint, y_own, y_j, w_own, losses, _teachers(joint, outputs, j))
            total = total + joint.weight(j, mode) * loss
            tracked.append(logged)
        scaled = optimizer.scale_loss(total)
    scales = equilibrium_scales(model, mode) if joint.equilibrium else None
    signals = model._apply_gradients(top, optimizer, tape, scaled, scales)
    for state, (_, new_state, _) in zip(states, passes):
        for variable, value in zip(state, new_state):
            variable.assign(value)
    if plan is not None:
        for tail, snapshot in zip(plan.tails, snapshots):
            tail.update_statistics(snapshot)
    model._track(mode, x, y, y_top, top_loss, sample_weight)
    for j, ((y_j, _, _), logged) in enumerate(zip(passes, tracked)):
        model._track(j, x_own, y_own, y_j, logged, w_own)
    return top_loss, signals


def _teachers(joint, outputs, rung):
    """The predictions smaller model `rung` distils from: the step's largest model's, or every larger one's."""
    return outputs[rung + 1 :] if joint.distillation_teachers == "all" else outputs[-1:]


def _smaller_loss(model, joint, y, y_pred, sample_weight, losses, teachers):
    """(the loss a smaller rung trains on, the loss it logs): its compiled loss and own losses, and
    with distillation that share of the mean KL(teacher || smaller) over `teachers`."""
    loss = keras_internals.compiled_loss(model)(y, y_pred, sample_weight)
    for extra in losses:
        loss = loss + keras_internals.additional_loss(model, extra)
    tracked = loss
    if joint.distillation:
        kl = keras.ops.mean(
            keras.ops.stack([keras.losses.KLDivergence()(tf.stop_gradient(t), y_pred) for t in teachers])
        )
        loss = (1.0 - joint.distillation) * loss + joint.distillation * kl
    return loss, tracked
