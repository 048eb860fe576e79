"""The run's MotivatedModel from its config (the trainer's model step, apart from the loop).

The registry's pair or ladder (`--pair`), the policy's condition, joint step
and statistics option (`--policy` and its fields' flags, `policy.py`), the
joint step's cost options, the differential layers' start and the transfer
start (`--init_from`).
"""

import os

import keras

from keras_motivation import models as models_lib
from keras_motivation.config import ConfigError
from keras_motivation.config import differential_start
from keras_motivation.engine import JointStep
from keras_motivation.engine import MotivatedModel


def build_motivated_model(config, num_classes, shape, heldout=None):
    """The (uncompiled) MotivatedModel of `config`: the registry pair, its map, the condition."""
    if models_lib.is_ladder(config.pair):
        models, maps = models_lib.get_ladder(
            config.pair, num_classes=num_classes, input_shape=shape, **config.model_kwargs
        )
    else:
        base, motivated, wmap = models_lib.get_pair(
            config.pair, num_classes=num_classes, input_shape=shape, **config.model_kwargs
        )
        if config.init_from:
            _init_from(config, base, motivated)
        models, maps = [base, motivated], [wmap]
    model = MotivatedModel(
        models=models,
        weights_map=maps,
        recalibration_batches=config.recalibration_batches,
        **_policy_and_step_arguments(config, heldout),
    )
    start = differential_start(config.differential_init)
    if start is not None:
        from keras_motivation.weights_map import identity_start

        for wmap in model.weights_maps:
            identity_start(wmap, **start, seed=config.seed)
    return model


def policy_arguments(config, heldout=None):
    """MotivatedModel's arguments for the policy of `config` (its condition, joint step and statistics option);
    `--k` and `--seed` fill in k and seed where the condition takes them."""
    try:
        return config.resolved_policy().model_arguments(seed=config.seed, heldout=heldout)
    except ValueError as err:
        raise ConfigError(f"--condition={config.condition}: {err}") from err


def _policy_and_step_arguments(config, heldout=None):
    """`policy_arguments`, with the joint step's cost options (its base share, the shared forward pass)."""
    arguments = policy_arguments(config, heldout)
    if arguments["joint"] is not None:
        options = {"base_share": config.joint_base_share, "shared_forward": config.shared_forward}
        arguments["joint"] = JointStep(**{**arguments["joint"].get_config(), **options})
    return arguments


def make_condition(config, heldout=None):
    """The condition of `config`; `--k` and `--seed` fill in k and seed where it takes them."""
    return policy_arguments(config, heldout)["condition"]


def _init_from(config, base, motivated):
    """Transfer: start both models from a finished run's base or motivated model.

    Every layer whose name and weight shapes match the source's is loaded;
    the rest (the classifier head for a new number of classes, layers the
    source lacks) keeps its fresh initialisation.
    """
    path = os.path.join(config.init_from, "final", f"{config.init_from_model}.keras")
    if not os.path.exists(path):
        raise ConfigError(f"--init_from={config.init_from} has no {path}: point it at a finished run's workdir.")
    source = {layer.name: layer for layer in keras.models.load_model(path, compile=False).layers if layer.weights}
    loaded = 0
    for target in (base, motivated):
        for layer in target.layers:
            src = source.get(layer.name)
            if src is not None and [tuple(w.shape) for w in layer.weights] == [tuple(w.shape) for w in src.weights]:
                layer.set_weights(src.get_weights())
                loaded += 1
    if loaded == 0:
        raise ConfigError(
            f"--init_from={config.init_from}: no layer of {path} matches the models of --pair={config.pair}."
        )
    return loaded
