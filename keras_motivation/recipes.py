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

    def __init__(self, learning_rate, decay_steps, decay_rate, warmup_steps=0):
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


def learning_rate(config, steps_per_epoch):
    """The learning rate or schedule of `config` for `steps_per_epoch` steps an epoch."""
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    total = config.epochs * steps_per_epoch
    if config.schedule == "constant":
        return config.learning_rate
    if config.schedule == "cosine":
        if warmup == 0:
            return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=total)
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=total - warmup, warmup_target=config.learning_rate, warmup_steps=warmup
        )
    if config.schedule == "exponential":
        return WarmupExponentialDecay(
            config.learning_rate,
            decay_steps=max(1, int(round(config.decay_epochs * steps_per_epoch))),
            decay_rate=config.decay_rate,
            warmup_steps=warmup,
        )
    raise ValueError(f"Unknown schedule {config.schedule!r}.")


def optimizer(config, steps_per_epoch):
    """The base model's optimizer; MotivatedModel clones it for the motivated model.

    `weight_decay` is Keras' decoupled decay (per step, w -= lr * wd * w). The
    paper's SGD weight decay is PyTorch's coupled L2; the configs express it
    as an L2 kernel regularizer of the model (`model_kwargs`) instead.
    """
    lr = learning_rate(config, steps_per_epoch)
    wd = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=wd)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=wd)
    if config.optimizer == "rmsprop":
        # TF EfficientNet's RMSprop: rho 0.9, momentum 0.9, epsilon 1e-3.
        return keras.optimizers.RMSprop(lr, rho=0.9, momentum=config.momentum, epsilon=1e-3, weight_decay=wd)
    if config.optimizer == "lamb":
        return keras.optimizers.Lamb(lr, weight_decay=wd)
    raise ValueError(f"Unknown optimizer {config.optimizer!r}.")
