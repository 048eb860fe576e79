"""Motivation conditions: when the motivated model trains instead of the base.

A condition is a Keras layer that is never called: it only holds its state in
non-trainable variables (so the state runs inside the compiled train step on
any device, is identical on every replica, and is saved with the model) and
answers two questions inside the train function:

- `select(motivated)`, before a step: which model trains this batch. Only
  conditions with `selects_before_step = True` are asked (random schedules,
  `Always`); the others keep the current state.
- `update(loss, motivated, signals)`, after the step, with the
  replica-averaged raw batch loss of the model that trained: which model
  trains the next batch. `signals` holds what `replica_signals` computed in
  the step (a gradient norm, a held-out batch's loss), averaged over replicas.

`on_epoch_begin(epoch, steps_per_epoch)` runs on the host at each epoch start.

Each condition also describes itself in class attributes (see `Condition`):
its `--condition` name, its arguments, what the run fills in, its label in
reports. `BY_NAME` lists them; `from_flag` builds one from a `--condition`
spec, `flag_help` writes the flag's help, tools/report.py names arms with
`report_label`. A new condition is a class here, with those attributes, in
`BY_NAME`.
"""

import ast
import re

import keras
import numpy as np
from keras import ops

from keras_motivation.state import state_variable


class Condition(keras.layers.Layer):
    """Base class of motivation conditions.

    What a condition says about itself (class attributes; each condition in
    `BY_NAME` sets its own):

    - `flag`: its name in `--condition` ("consecutive").
    - `flag_help`: what it does, in a few words of the flag's help.
    - `parameters`: {argument: help} of the key=value arguments its spec takes.
    - `takes_k`, `takes_seed`: the run's --k / --seed fill in `k` / `seed`
      when the spec does not set them.
    - `takes_heldout`: it needs a held-out training batch, which the trainer
      takes out of the training data.
    - `label`: its arm in reports, a `str.format` template of the spec's
      arguments (as written), `k` (the run's --k) and `flag`;
      `label_defaults` fills in the arguments a spec leaves out.
    - `classical`: it trains one model classically (X-C, Y-C), so a report
      names the arm without the dual run's start and BatchNorm option.
    - `report_order`: where its arms come in a report's table (then by label).
    - `noise_level`: summary.json gives the noise level of the paper's rule,
      1/(k+1)!, beside its motivated share.
    """

    selects_before_step = False
    flag = None
    flag_help = ""
    parameters = {}
    takes_k = takes_seed = takes_heldout = False
    label = "X-Y {flag}"
    label_defaults = {}
    classical = False
    report_order = 1
    noise_level = False

    @classmethod
    def report_label(cls, arguments, k):
        """The arm in reports (without the dual run's start and BatchNorm option): `arguments` are the
        spec's {argument: text as written}, `k` the run's --k."""
        return cls.label.format_map({**cls.label_defaults, **arguments, "flag": cls.flag, "k": k})

    @classmethod
    def from_arguments(cls, arguments, heldout=None):
        """The condition from its spec's parsed arguments (and the held-out batch, when it takes one)."""
        return cls(**arguments)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def _state(self, name, dtype, value):
        return state_variable(self, name, dtype, value)

    def select(self, motivated):
        return motivated

    def replica_signals(self, model, loss_fn, gradients):
        """Extra inputs of `update`, computed in each replica after the step."""
        return {}

    def update(self, loss, motivated, signals=None):
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

    flag = "consecutive"
    flag_help = "the paper's rule, the raw batch loss decreased k times in a row"
    parameters = {"k": "decreases in a row"}
    takes_k = True
    label = "X-Y k={k}"
    noise_level = True

    def __init__(self, k=2, **kwargs):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"ConsecutiveDecrease needs an integer k >= 1, got k={k!r}.")
        super().__init__(**kwargs)
        self.k = k
        self.previous_loss = self._state("previous_loss", "float32", float("inf"))
        self.streak = self._state("streak", "int32", 0)

    def update(self, loss, motivated, signals=None):
        return self._streak_of(ops.less(ops.cast(loss, "float32"), self.previous_loss), loss)

    def _streak_of(self, decreased, value):
        streak = ops.where(decreased, self.streak + 1, 0)
        self.streak.assign(streak)
        self.previous_loss.assign(ops.cast(value, "float32"))
        return ops.greater_equal(streak, self.k)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


def _check(ok, message):
    if not ok:
        raise ValueError(message)


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

    def __init__(self, k=2, alpha=0.02, min_drop=0.002, **kwargs):
        _check(0 < alpha <= 1, f"EmaDecrease needs 0 < alpha <= 1, got alpha={alpha!r}.")
        _check(0 <= min_drop < 1, f"EmaDecrease needs 0 <= min_drop < 1, got min_drop={min_drop!r}.")
        super().__init__(k, **kwargs)
        self.alpha, self.min_drop = alpha, min_drop
        self.ema = self._state("ema", "float32", float("nan"))

    def update(self, loss, motivated, signals=None):
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

    def update(self, loss, motivated, signals=None):
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
        _check(heldout is not None, "Condition 'valloss' needs the held-out batch (x, y).")
        x, y = heldout
        return cls(x=x, y=y, y_dtype=str(y.dtype), **arguments)

    def __init__(self, k=2, x=None, y=None, x_shape=None, y_shape=None, x_dtype="float32", y_dtype="int32", **kwargs):
        super().__init__(k, **kwargs)
        x_shape = tuple(x_shape or np.shape(x))
        y_shape = tuple(y_shape or np.shape(y))
        _check(len(x_shape) >= 2, "ValidationBatch needs the held-out batch: ValidationBatch(k, x=images, y=labels).")
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

    def update(self, loss, motivated, signals=None):
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


@keras.saving.register_keras_serializable(package="keras_motivation")
class Never(Condition):
    """Classical training of the base model (X-C) through the same engine."""

    flag = "never"
    flag_help = "classical training of the base model (X-C)"
    label = "X-C"
    classical = True
    report_order = 0

    def update(self, loss, motivated, signals=None):
        return ops.zeros((), "bool")


@keras.saving.register_keras_serializable(package="keras_motivation")
class Always(Condition):
    """Classical training of the motivated model (Y-C) through the same engine."""

    selects_before_step = True
    flag = "always"
    flag_help = "classical training of the motivated model (Y-C)"
    label = "Y-C"
    classical = True
    report_order = 2

    def select(self, motivated):
        return ops.ones((), "bool")

    def update(self, loss, motivated, signals=None):
        return ops.ones((), "bool")


MAX_STEPS_PER_EPOCH = 1 << 16


@keras.saving.register_keras_serializable(package="keras_motivation")
class MatchedRandom(Condition):
    """Exp B: exactly `per_epoch` motivated batches per epoch, at random batches.

    An activation here is one motivated batch, so `per_epoch` matches the
    motivated steps (the compute) of a real run; the trainer and
    tools/reproduce.py take it from the real condition's runs. The epoch's
    batches are drawn on the host at the epoch start from seed + epoch, so a
    rerun draws the same ones.
    """

    selects_before_step = True
    flag = "matched_random"
    flag_help = "Exp B, exactly per_epoch motivated batches per epoch, at random batches"
    parameters = {"per_epoch": "motivated batches per epoch, default 1", "seed": "seed of the draw"}
    takes_seed = True
    label = "ExpB {per_epoch}/epoch"
    label_defaults = {"per_epoch": "?"}
    report_order = 4

    def __init__(self, per_epoch=1, seed=None, **kwargs):
        _check(
            isinstance(per_epoch, int) and per_epoch >= 0,
            f"MatchedRandom needs an integer per_epoch >= 0, got {per_epoch!r}.",
        )
        super().__init__(**kwargs)
        self.per_epoch, self.seed = per_epoch, seed
        self.schedule = state_variable(self, "schedule", "bool", False, shape=(MAX_STEPS_PER_EPOCH,))
        self.step_in_epoch = self._state("step_in_epoch", "int32", 0)
        # Which epoch the schedule was drawn for, and its length: a run
        # resumed mid-epoch from a backup keeps the epoch's draw.
        self.drawn_epoch = self._state("drawn_epoch", "int32", -1)
        self.drawn_steps = self._state("drawn_steps", "int32", 0)

    def _count(self, rng, steps):
        return min(self.per_epoch, steps)

    def _schedule(self, rng, epoch, steps):
        """The epoch's motivated batches: a boolean array of `steps`."""
        chosen = np.zeros(steps, bool)
        chosen[rng.choice(steps, self._count(rng, steps), replace=False)] = True
        return chosen

    def on_epoch_begin(self, epoch, steps_per_epoch):
        if int(self.drawn_epoch.numpy()) == epoch and 0 < int(self.step_in_epoch.numpy()) < int(
            self.drawn_steps.numpy()
        ):
            return  # resumed mid-epoch: the rest of this epoch's draw follows
        _check(
            steps_per_epoch,
            f"{type(self).__name__} needs the number of steps per epoch: pass steps_per_epoch to fit().",
        )
        _check(
            steps_per_epoch <= MAX_STEPS_PER_EPOCH,
            f"{type(self).__name__} supports at most {MAX_STEPS_PER_EPOCH} steps per epoch.",
        )
        rng = np.random.default_rng(None if self.seed is None else [self.seed, epoch])
        schedule = np.zeros(MAX_STEPS_PER_EPOCH, bool)
        schedule[:steps_per_epoch] = self._schedule(rng, epoch, steps_per_epoch)
        self.schedule.assign(schedule)
        self.step_in_epoch.assign(0)
        self.drawn_epoch.assign(epoch)
        self.drawn_steps.assign(steps_per_epoch)

    def select(self, motivated):
        return ops.take(self.schedule.value, ops.minimum(self.step_in_epoch.value, MAX_STEPS_PER_EPOCH - 1))

    def update(self, loss, motivated, signals=None):
        self.step_in_epoch.assign_add(1)
        return motivated

    def get_config(self):
        return {**super().get_config(), "per_epoch": self.per_epoch, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_motivation")
class RandomActivation(MatchedRandom):
    """Exp A: a random number of motivated batches per epoch (uniform in
    [0, max_per_epoch], default [0, steps per epoch]), at random batches."""

    flag = "random"
    flag_help = "Exp A, a random number of motivated batches per epoch, at random batches"
    parameters = {"seed": "seed of the draw", "max_per_epoch": "most motivated batches per epoch, default all"}
    label = "ExpA"
    report_order = 3

    def __init__(self, seed=None, max_per_epoch=None, **kwargs):
        _check(
            max_per_epoch is None or max_per_epoch >= 0,
            f"RandomActivation needs max_per_epoch >= 0, got {max_per_epoch!r}.",
        )
        super().__init__(per_epoch=0, seed=seed, **kwargs)
        self.max_per_epoch = max_per_epoch

    def _count(self, rng, steps):
        top = steps if self.max_per_epoch is None else min(self.max_per_epoch, steps)
        return int(rng.integers(0, top + 1))

    def get_config(self):
        config = super().get_config()
        config.pop("per_epoch")
        return {**config, "max_per_epoch": self.max_per_epoch}


@keras.saving.register_keras_serializable(package="keras_motivation")
class RandomShare(MatchedRandom):
    """A share of the batches, at random: each batch of epoch e goes to the
    motivated model with probability `share` (or `share[e]`, a schedule; the
    last value holds for later epochs). Drawn on the host at the epoch start
    from seed + epoch, so a rerun draws the same batches.

    `share=1.0` for the last epochs grows the model late (Net2Net, progressive
    growing); a rising schedule moves from base-heavy to motivated-heavy
    training; a constant share trains the differential layers as stochastic
    depth / LayerDrop would drop them, with probability 1 - share.
    """

    flag = "random_share"
    flag_help = "each batch is the motivated model's with probability share"
    parameters = {"share": "default 0.5, or one per epoch: [0.2,0.5,0.8]", "seed": "seed of the draw"}
    label = "X-Y share {share}"
    label_defaults = {"share": "0.5"}
    report_order = 1

    @classmethod
    def report_label(cls, arguments, k):
        # A schedule [0.2,0.5,0.8] reads 0.2→0.5→0.8.
        share = arguments.get("share", cls.label_defaults["share"]).strip("[]").replace(",", "→")
        return super().report_label({**arguments, "share": share}, k)

    def __init__(self, share=0.5, seed=None, **kwargs):
        shares = [share] if isinstance(share, (int, float)) else list(share)
        _check(
            shares and all(isinstance(p, (int, float)) and 0 <= p <= 1 for p in shares),
            f"RandomShare needs a share in [0, 1] or a list of them (one per epoch), got {share!r}.",
        )
        super().__init__(per_epoch=0, seed=seed, **kwargs)
        self.share = share if isinstance(share, (int, float)) else [float(p) for p in shares]

    def share_of_epoch(self, epoch):
        shares = [self.share] if isinstance(self.share, (int, float)) else self.share
        return float(shares[min(epoch, len(shares) - 1)])

    def _schedule(self, rng, epoch, steps):
        return rng.random(steps) < self.share_of_epoch(epoch)

    def get_config(self):
        config = super().get_config()
        config.pop("per_epoch")
        return {**config, "share": self.share}


@keras.saving.register_keras_serializable(package="keras_motivation")
class Growth(Condition):
    """Growth: the base alone for the first `epochs` epochs (a fraction is
    allowed), then the motivated model on every batch; with a joint step
    (`MotivatedModel(joint=...)`), both models. The function-preserving start
    (`--differential_init=identity...`) is the start at the growth point: the
    differential layers do not change before it. `--rewarm_epochs` re-warms
    the learning rate there (`recipes.Rewarmed`).

    The growth step is fixed at the first epoch's start from its steps per
    epoch, and saved: a resumed run keeps it.
    """

    selects_before_step = True
    flag = "growth"
    flag_help = "the base alone for the first epochs (fractions allowed), then the motivated model on every batch"
    parameters = {"epochs": "epochs of the base alone, default 1"}
    label = "X-Y growth after {epochs} ep"
    label_defaults = {"epochs": "1"}
    report_order = 1

    def __init__(self, epochs=1.0, **kwargs):
        _check(
            not isinstance(epochs, bool) and isinstance(epochs, (int, float)) and epochs >= 0,
            f"Growth needs epochs >= 0, got {epochs!r}.",
        )
        super().__init__(**kwargs)
        self.epochs = float(epochs)
        self.step = self._state("step", "int32", 0)
        self.at_step = self._state("at_step", "int32", -1)

    def growth_step(self, steps_per_epoch):
        """The first step the motivated model trains, for `steps_per_epoch` steps an epoch."""
        return int(round(self.epochs * steps_per_epoch))

    def on_epoch_begin(self, epoch, steps_per_epoch):
        if int(self.at_step.numpy()) >= 0:
            return
        _check(steps_per_epoch, "Growth needs the number of steps per epoch: pass steps_per_epoch to fit().")
        self.at_step.assign(self.growth_step(steps_per_epoch))

    def select(self, motivated):
        return ops.greater_equal(self.step.value, self.at_step.value)

    def update(self, loss, motivated, signals=None):
        self.step.assign_add(1)
        return motivated

    def get_config(self):
        return {**super().get_config(), "epochs": self.epochs}


BY_NAME = {
    cls.flag: cls
    for cls in (
        ConsecutiveDecrease,
        EmaDecrease,
        GradientNormSlope,
        ValidationBatch,
        RandomActivation,
        MatchedRandom,
        RandomShare,
        Growth,
        Never,
        Always,
    )
}


def flag_class(spec):
    """The condition class of a `--condition` spec ("random_share:share=0.8" -> RandomShare)."""
    name = spec.partition(":")[0]
    if name not in BY_NAME:
        raise ValueError(f"Unknown condition {name!r}: use one of {', '.join(BY_NAME)}.")
    return BY_NAME[name]


def takes_heldout(spec):
    """Whether the condition of `spec` needs a held-out batch (False for an unknown name, which
    `from_flag` reports)."""
    cls = BY_NAME.get(spec.partition(":")[0])
    return cls is not None and cls.takes_heldout


def split_spec(spec):
    """(name, {argument: its text}) of a spec: "random_share:share=[0.2,0.5],seed=1" ->
    ("random_share", {"share": "[0.2,0.5]", "seed": "1"}). Commas inside brackets belong to a list value."""
    name, _, args = spec.partition(":")
    texts = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", args)):
        key, eq, value = item.partition("=")
        _check(eq, f"Condition arguments are key=value, got {item!r} in {spec!r}.")
        texts[key.strip()] = value.strip()
    return name, texts


def _parse(spec):
    """(condition class, {argument: value}) of a spec; the values are Python literals."""
    cls = flag_class(spec)
    arguments = {}
    for key, text in split_spec(spec)[1].items():
        try:
            arguments[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ValueError(f"Condition argument {key}= must be a Python literal, got {text!r} in {spec!r}.") from None
    return cls, arguments


def _construct(cls, build):
    try:
        return build()
    except TypeError as err:
        raise ValueError(f"Bad arguments for condition {cls.flag!r}: {err}.") from err


def from_spec(spec):
    """A condition from a string such as "consecutive:k=3" or "matched_random:per_epoch=5,seed=1"."""
    cls, arguments = _parse(spec)
    return _construct(cls, lambda: cls(**arguments))


def from_flag(spec, k=None, seed=None, heldout=None):
    """The condition of a `--condition` spec, with the run's `k`, `seed` and held-out batch `(x, y)`
    filled in where the condition takes them and the spec does not set them:
    `from_flag("random_share:share=[0.2,0.5]", k=2, seed=0)`. A bad spec is a one-line ValueError."""
    cls, arguments = _parse(spec)
    for key in arguments:
        _check(
            key in cls.parameters,
            f"Condition {cls.flag!r} has no argument {key!r}: it takes {', '.join(cls.parameters) or 'none'}.",
        )
    if cls.takes_k and k is not None:
        arguments.setdefault("k", k)
    if cls.takes_seed and seed is not None:
        # Random batches from the run's seed: a resumed run draws the same ones.
        arguments.setdefault("seed", seed)
    return _construct(cls, lambda: cls.from_arguments(arguments, heldout))


def flag_help():
    """The help of `--condition`, from every condition's flag, description and arguments."""
    items = []
    for name, cls in BY_NAME.items():
        arguments = "; ".join(f"{key}: {text}" for key, text in cls.parameters.items())
        items.append(f"{name}: {cls.flag_help}" + (f" [{arguments}]" if arguments else "") + ".")
    return "Motivation condition, name or name:key=value,... (k and seed default to --k and --seed). " + " ".join(items)


def get(identifier):
    """A condition from an instance, a spec string, a config dict, or None (the paper's k=2)."""
    if identifier is None:
        return ConsecutiveDecrease(2)
    if isinstance(identifier, Condition):
        return identifier
    if isinstance(identifier, str):
        return from_spec(identifier)
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise TypeError(f"condition must be a Condition, got {identifier!r}")
