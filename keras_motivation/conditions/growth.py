"""Growth: the base alone, then the motivated model on every batch."""

import keras
from keras import ops

from keras_motivation.conditions.base import Condition
from keras_motivation.conditions.base import check_argument


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
        check_argument(
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
        check_argument(steps_per_epoch, "Growth needs the number of steps per epoch: pass steps_per_epoch to fit().")
        self.at_step.assign(self.growth_step(steps_per_epoch))

    def select(self, motivated):
        return ops.greater_equal(self.step.value, self.at_step.value)

    def update(self, loss, motivated, signals=None):
        self.step.assign_add(1)
        return motivated

    def get_config(self):
        return {**super().get_config(), "epochs": self.epochs}
