"""Growth: the base alone, then the motivated model on every batch."""

import keras
from keras import ops

from keras_motivation.conditions.base import Condition
from keras_motivation.conditions.base import check_argument
from keras_motivation.state import state_variable


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

    Over a ladder `epochs` is one join point, where every bigger model joins,
    or a list, one per bigger rung (`growth:epochs=[0.45,1.5]`): rung i + 1
    joins after epochs[i]. Each step trains the largest rung joined so far
    (with a joint step, with every smaller one).
    """

    selects_before_step = True
    flag = "growth"
    flag_help = "the base alone for the first epochs (fractions allowed), then the motivated model on every batch"
    parameters = {"epochs": "epochs of the base alone, default 1 (a ladder: a list, each bigger model's join point)"}
    label = "X-Y growth after {epochs} ep"
    label_defaults = {"epochs": "1"}
    report_order = 1
    ladders = True

    def __init__(self, epochs: float = 1.0, **kwargs):
        points = list(epochs) if isinstance(epochs, (list, tuple)) else [epochs]
        check_argument(
            bool(points)
            and all(not isinstance(e, bool) and isinstance(e, (int, float)) and e >= 0 for e in points)
            and points == sorted(points),
            f"Growth needs epochs >= 0 (a ladder: a non-decreasing list of them), got {epochs!r}.",
        )
        super().__init__(**kwargs)
        self.epochs = [float(e) for e in points] if isinstance(epochs, (list, tuple)) else float(epochs)
        self.step = self._state("step", "int32", 0)
        if isinstance(self.epochs, list):
            self.at_step = state_variable(self, "at_step", "int32", -1, shape=(len(self.epochs),))
        else:
            self.at_step = self._state("at_step", "int32", -1)

    def set_rungs(self, rungs):
        super().set_rungs(rungs)
        check_argument(
            not isinstance(self.epochs, list) or len(self.epochs) == rungs - 1,
            f"Growth over {rungs} models needs one join point (every bigger model joins there) or {rungs - 1} "
            f"(growth:epochs=[...]), got {self.epochs!r}.",
        )

    def growth_step(self, steps_per_epoch):
        """The first step the motivated model trains (a ladder: each bigger rung's, a list), for
        `steps_per_epoch` steps an epoch."""
        if isinstance(self.epochs, list):
            return [int(round(e * steps_per_epoch)) for e in self.epochs]
        return int(round(self.epochs * steps_per_epoch))

    def on_epoch_begin(self, epoch, steps_per_epoch):
        if int(ops.min(self.at_step.value)) >= 0:
            return
        check_argument(steps_per_epoch, "Growth needs the number of steps per epoch: pass steps_per_epoch to fit().")
        self.at_step.assign(self.growth_step(steps_per_epoch))

    def select(self, mode):
        if isinstance(self.epochs, list):
            # The largest rung joined so far.
            return ops.sum(ops.cast(ops.greater_equal(self.step.value, self.at_step.value), "int32"))
        # One join point: every bigger model joins there (the largest trains, with a joint step every
        # smaller one too).
        return ops.where(ops.greater_equal(self.step.value, self.at_step.value), self.rungs - 1, 0)

    def reachable_modes(self):
        # One join point: the rungs between the base and the largest never train alone, so the train function
        # holds no step of theirs (a ladder's tracing, and the untaken branch its executor walks at every step).
        if isinstance(self.epochs, list):
            return super().reachable_modes()
        return (0, self.rungs - 1)

    def update(self, loss, mode, signals=None):
        self.step.assign_add(1)
        return mode

    def get_config(self):
        return {**super().get_config(), "epochs": self.epochs}
