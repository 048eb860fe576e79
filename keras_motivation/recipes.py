"""Optimizers and learning-rate schedules of the paper's recipes, from a TrainConfig.

Both optimizers of a MotivatedModel get the same schedule, driven by the
global step: the engine copies the step counter on every switch.
"""

import keras


@keras.saving.register_keras_serializable(package="keras_motivation")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `learning_rate`, then x`decay_rate` every `decay_steps` (staircase).

    EfficientNet's recipe: 0.01 x0.97 every 2 epochs after 5 warm-up epochs.
    """

    def __init__(self, learning_rate: float, decay_steps: int, decay_rate: float, warmup_steps: int = 0):
        self.learning_rate = learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.learning_rate * (step + 1.0) / max(self.warmup_steps, 1)
        decays = keras.ops.floor(keras.ops.maximum(step - self.warmup_steps, 0.0) / self.decay_steps)
        decayed = self.learning_rate * keras.ops.power(self.decay_rate, decays)
        return keras.ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "warmup_steps": self.warmup_steps,
        }


@keras.saving.register_keras_serializable(package="keras_motivation")
class Rewarmed(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule`, ramped up again linearly over `warmup_steps` from `at_step`.

    The re-warm-up of staged training at a growth point (Shen et al. 2022):
    the grown model's new parts start from a small step size.
    """

    def __init__(
        self, schedule: keras.optimizers.schedules.LearningRateSchedule | float | dict, at_step: int, warmup_steps: int
    ):
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        self.schedule = schedule
        self.at_step = int(at_step)
        self.warmup_steps = max(int(warmup_steps), 1)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        lr = self.schedule(step) if callable(self.schedule) else self.schedule
        ramp = keras.ops.clip((step - self.at_step + 1.0) / self.warmup_steps, 0.0, 1.0)
        return keras.ops.where(step < self.at_step, lr, lr * ramp)

    def get_config(self):
        schedule = self.schedule
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = keras.optimizers.schedules.serialize(schedule)
        return {"schedule": schedule, "at_step": self.at_step, "warmup_steps": self.warmup_steps}


def _constant(config, steps_per_epoch, warmup, total):
    return config.learning_rate


def _cosine(config, steps_per_epoch, warmup, total):
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=total)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total - warmup, warmup_target=config.learning_rate, warmup_steps=warmup
    )


def _exponential(config, steps_per_epoch, warmup, total):
    return WarmupExponentialDecay(
        config.learning_rate,
        decay_steps=max(1, int(round(config.decay_epochs * steps_per_epoch))),
        decay_rate=config.decay_rate,
        warmup_steps=warmup,
    )


# The one list of schedules (--schedule validates against it; its help is written from it).
SCHEDULES = {"cosine": _cosine, "exponential": _exponential, "constant": _constant}


def learning_rate(config, steps_per_epoch):
    """The learning rate or schedule of `config` for `steps_per_epoch` steps an epoch."""
    if config.schedule not in SCHEDULES:
        raise ValueError(f"Unknown schedule {config.schedule!r}: use one of {', '.join(SCHEDULES)}.")
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    schedule = SCHEDULES[config.schedule](config, steps_per_epoch, warmup, config.epochs * steps_per_epoch)
    if config.rewarm_epochs:
        growth = config.condition_spec.build()
        points = growth.growth_step(steps_per_epoch)
        # A ladder's growth re-warms at each rung's join point.
        for at_step in points if isinstance(points, list) else [points]:
            schedule = Rewarmed(schedule, at_step, int(round(config.rewarm_epochs * steps_per_epoch)))
    return schedule


# TF EfficientNet's RMSprop: rho 0.9, momentum 0.9, epsilon 1e-3.
# The one list of optimizers (--optimizer validates against it; its help is written from it).
OPTIMIZERS = {
    "sgd": lambda lr, c, wd: keras.optimizers.SGD(lr, momentum=c.momentum, nesterov=c.nesterov, weight_decay=wd),
    "adamw": lambda lr, c, wd: keras.optimizers.AdamW(lr, weight_decay=c.weight_decay),
    "adam": lambda lr, c, wd: keras.optimizers.Adam(lr, weight_decay=wd),
    "rmsprop": lambda lr, c, wd: keras.optimizers.RMSprop(
        lr, rho=0.9, momentum=c.momentum, epsilon=1e-3, weight_decay=wd
    ),
    "lamb": lambda lr, c, wd: keras.optimizers.Lamb(lr, weight_decay=wd),
}


def optimizer(config, steps_per_epoch):
    """The base model's optimizer; MotivatedModel clones it for the motivated model.

    `weight_decay` is Keras' decoupled decay (per step, w -= lr * wd * w). The
    paper's SGD weight decay is PyTorch's coupled L2; the configs express it
    as an L2 kernel regularizer of the model (`model_kwargs`) instead.
    """
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {config.optimizer!r}: use one of {', '.join(OPTIMIZERS)}.")
    return OPTIMIZERS[config.optimizer](learning_rate(config, steps_per_epoch), config, config.weight_decay or None)
