"""The rungs of a `MotivatedModel`: nested models m0 ⊂ m1 ⊂ ..., a weights map between neighbours.

A pair is the ladder of two. `MotivatedModel` keeps each model as an
attribute (`base`, `rung1`, ..., `motivated`: what `save` writes) and the
lists the steps index by rung in a plain `Ladder`, which Keras neither tracks
nor saves a second time.
"""

import keras

from keras_motivation import keras_internals
from keras_motivation import weights_map as weights_map_lib
from keras_motivation.engine import switching


class Ladder:
    """The rungs and what the steps need of them, in a plain object (Keras would track and save
    lists of models and metrics held as attributes)."""

    def __init__(self, models):
        self.models = models
        self.views = None  # joint steps: per rung, the smaller rungs' views into it
        self.plans = {}  # joint steps: per rung, its SharedForward (None: separate passes)
        self.metrics = None  # per rung above the base: (loss tracker, compile metrics)
        self.compiled_updates = {}  # mode -> its update compiled with XLA (train_function.py)


class Trace:
    """The mode an execution path knows while it traces `train_step` (None: read on the device)."""

    mode = None


def rung_models(base, motivated, models):
    if models is None:
        models = [base, motivated]
    elif base is not None or motivated is not None:
        raise ValueError("MotivatedModel takes either `base` and `motivated` or `models`, not both.")
    models = list(models)
    if len(models) < 2:
        raise ValueError(f"MotivatedModel needs at least two models, got {len(models)}.")
    for label, m in zip(_labels(len(models)), models):
        if not isinstance(m, keras.Model) or not m.built:
            raise ValueError(f"MotivatedModel needs a built keras.Model as `{label}`, got {m!r}.")
    if len({id(m) for m in models}) != len(models):
        raise ValueError(
            "`base` and `motivated` must be two different models."
            if len(models) == 2
            else "The ladder's models must be different models."
        )
    return models


def _labels(n):
    """How the arguments name n models: a pair's `base` and `motivated`, a ladder's `models[i]`."""
    return ("base", "motivated") if n == 2 else [f"models[{i}]" for i in range(n)]


def _order_expected(models):
    """Where two neighbours are in the wrong order (the smaller has more parameters): a one-line ValueError
    naming them and the order expected, before any map is made."""
    labels, sizes = _labels(len(models)), [m.count_params() for m in models]
    for i in range(len(models) - 1):
        if sizes[i] > sizes[i + 1]:
            order = ", ".join(repr(models[j].name) for j in sorted(range(len(models)), key=sizes.__getitem__))
            raise ValueError(
                f"`{labels[i]}` ({models[i].name!r}, {sizes[i]:,} parameters) is bigger than `{labels[i + 1]}` "
                f"({models[i + 1].name!r}, {sizes[i + 1]:,}): give the models smallest first, each inside the next "
                f"({order})."
            )


def neighbour_maps(models, weights_map):
    """The weights map of each neighbouring pair of rungs. Models in the wrong order, or neighbours the map
    cannot place one inside the other, are a ValueError of one or two lines naming them."""
    _order_expected(models)
    pairs = list(zip(models, models[1:]))
    if isinstance(weights_map, (list, tuple)):
        if len(weights_map) != len(pairs):
            raise ValueError(
                f"A ladder of {len(models)} models needs {len(pairs)} weights maps (one per neighbouring pair), "
                f"got {len(weights_map)}."
            )
        rules = list(weights_map)
    elif isinstance(weights_map, weights_map_lib.WeightsMap) and len(pairs) > 1:
        raise ValueError(
            "A WeightsMap maps one pair: give a ladder a rule (e.g. 'resnet_depth') or one map per neighbouring pair."
        )
    else:
        rules = [weights_map] * len(pairs)
    labels, maps = _labels(len(models)), []
    for i, (rule, (b, m)) in enumerate(zip(rules, pairs)):
        try:
            maps.append(weights_map_lib.get(rule, b, m))
        except ValueError as err:
            problems = [line.strip() for line in str(err).splitlines() if line.strip()]
            detail = problems[1] if len(problems) > 1 else problems[0]
            more = f" (and {len(problems) - 2} more)" if len(problems) > 2 else ""
            name = rule if isinstance(rule, str) else type(rule).__name__
            raise ValueError(
                f"`{labels[i]}` ({b.name!r}) does not fit inside `{labels[i + 1]}` ({m.name!r}) under the weights "
                f"map {name!r}: give the models smallest first, each inside the next.\n  {detail}{more}"
            ) from None
    return maps


class RungMetrics:
    """A bigger model's loss tracker and compile metrics, named with its prefix (not a container
    type, so that Keras' attribute tracking leaves it alone)."""

    def __init__(self, rung, rungs, metrics, weighted_metrics, output_names):
        prefix = switching.rung_prefix(rung, rungs)
        self.loss_tracker = keras.metrics.Mean(name=f"{prefix}loss")
        self.compile_metrics = None
        if metrics is not None or weighted_metrics is not None:
            self.compile_metrics = keras_internals.PrefixedCompileMetrics(
                metrics, weighted_metrics, prefix=prefix, output_names=output_names
            )

    def __iter__(self):
        return iter((self.loss_tracker, self.compile_metrics))


def fresh_optimizer(base_optimizer):
    """A fresh optimizer from `base_optimizer`'s config sharing its learning-rate variable: callbacks
    and user code set the base's rate, and every model follows."""
    fresh = type(base_optimizer).from_config(base_optimizer.get_config())
    keras_internals.share_learning_rate(base_optimizer, fresh)
    return fresh


def scaled_like(reference, optimizer, label):
    """`optimizer`, wrapped for mixed precision when compile() wrapped the `reference` (the base's)."""
    if isinstance(reference, keras.optimizers.LossScaleOptimizer) and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer
    ):
        return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{label}_loss_scale_optimizer")
    return optimizer


def rungs_from_config(config, custom_objects=None):
    """(models, weights maps) popped from a `MotivatedModel` config: a pair's `base`, `motivated` and
    one map, or a ladder's `models` and a map per neighbouring pair."""

    def load(c):
        return keras.saving.deserialize_keras_object(c, custom_objects=custom_objects)

    models = [load(c) for c in config.pop("models", None) or (config.pop("base"), config.pop("motivated"))]
    maps = config.pop("weights_map")
    maps = [maps] if isinstance(maps, dict) else maps
    return models, [weights_map_lib.WeightsMap.from_config(c, b, m) for c, b, m in zip(maps, models, models[1:])]
