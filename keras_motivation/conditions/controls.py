"""The controls: one model trained alone (the paper's X-C, Y-C) and motivated batches at random (the paper's Exp
A and Exp B, a share of the batches)."""

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from keras_motivation.conditions.base import Condition
from keras_motivation.conditions.base import check_argument
from keras_motivation.state import state_variable


@keras.saving.register_keras_serializable(package="keras_motivation")
class Never(Condition):
    """The base model trained alone (the paper's X-C), through the same engine."""

    flag = "never"
    flag_help = "the base model trained alone"
    label = "X-C"
    classical = True
    report_order = 0
    ladders = True

    def update(self, loss, mode, signals=None):
        return 0


@keras.saving.register_keras_serializable(package="keras_motivation")
class Always(Condition):
    """The motivated model trained alone (the paper's Y-C), through the same engine."""

    selects_before_step = True
    flag = "always"
    flag_help = "the motivated model trained alone"
    label = "Y-C"
    classical = True
    report_order = 2
    ladders = True

    def select(self, mode):
        return self.rungs - 1  # the largest model (a pair's motivated one)

    def update(self, loss, mode, signals=None):
        return self.rungs - 1


MAX_STEPS_PER_EPOCH = 1 << 16


@keras.saving.register_keras_serializable(package="keras_motivation")
class MatchedRandom(Condition):
    """A random control (the paper's Exp B): exactly `per_epoch` motivated batches per epoch, at random batches.

    An activation here is one motivated batch, so `per_epoch` matches the
    motivated steps (the compute) of a real run; the trainer and
    tools/reproduce.py take it from the real condition's runs. The epoch's
    batches are drawn on the host at the epoch start from seed + epoch, so a
    rerun draws the same ones.
    """

    selects_before_step = True
    flag = "matched_random"
    flag_help = "a random control: exactly per_epoch motivated batches per epoch, at random batches"
    parameters = {"per_epoch": "motivated batches per epoch, default 1", "seed": "seed of the draw"}
    takes_seed = True
    label = "ExpB {per_epoch}/epoch"
    label_defaults = {"per_epoch": "?"}
    report_order = 4

    def __init__(self, per_epoch: int = 1, seed: int | None = None, **kwargs):
        check_argument(
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
        check_argument(
            steps_per_epoch,
            f"{type(self).__name__} needs the number of steps per epoch: pass steps_per_epoch to fit().",
        )
        check_argument(
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

    def select(self, mode):
        drawn = ops.take(self.schedule.value, ops.minimum(self.step_in_epoch.value, MAX_STEPS_PER_EPOCH - 1))
        return ops.cast(drawn, "int32")

    def update(self, loss, mode, signals=None):
        self.step_in_epoch.assign_add(1)
        return mode

    def get_config(self):
        return {**super().get_config(), "per_epoch": self.per_epoch, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_motivation")
class RandomActivation(MatchedRandom):
    """A random control (the paper's Exp A): a random number of motivated batches per epoch (uniform in
    [0, max_per_epoch], default [0, steps per epoch]), at random batches."""

    flag = "random"
    flag_help = "a random control: a random number of motivated batches per epoch, at random batches"
    parameters = {"seed": "seed of the draw", "max_per_epoch": "most motivated batches per epoch, default all"}
    label = "ExpA"
    report_order = 3

    def __init__(self, seed: int | None = None, max_per_epoch: int | None = None, **kwargs):
        check_argument(
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

    def __init__(self, share: float | Sequence[float] = 0.5, seed: int | None = None, **kwargs):
        shares = [share] if isinstance(share, (int, float)) else list(share)
        check_argument(
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
