"""BatchNorm moving statistics: whose they are, and recomputing them.

A BatchNorm layer that the base and the motivated model share (through the
weights map) sees different activations in each: the motivated model's
differential layers change everything after them. The paper copies the moving
mean and variance along with the weights at every switch, so each model ends
up evaluated with statistics gathered largely by the other (measured: most of
the paper start's loss of accuracy is there, not in the weights). Training
itself never reads them (training-mode BatchNorm normalises with the batch's
own moments), so the choice only changes what evaluation, saving and export
see:

- `"shared"`: the paper's; moving statistics are copied with the weights.
- `"private"`: every model keeps its own, updated only by its own steps
  (Slimmable networks' "switchable" BatchNorm); gamma and beta stay shared.
- `"recalibrated"`: private, and recomputed for both models from training
  batches at every epoch end, before validation (US-Nets' recalibration),
  so evaluation never sees statistics of weights that have since changed.

`recalibrate(model, data, batches)` recomputes any Keras model's statistics.
"""

import weakref

import keras
import numpy as np
import tensorflow as tf

BN_STATISTICS = ("shared", "private", "recalibrated")
DEFAULT_BN_STATISTICS = "recalibrated"
DEFAULT_RECALIBRATION_BATCHES = 32


def check_option(bn_statistics, recalibration_batches=DEFAULT_RECALIBRATION_BATCHES):
    """Raises ValueError (one line) for an unknown option or a bad batch count."""
    if bn_statistics not in BN_STATISTICS:
        raise ValueError(f"bn_statistics must be one of {', '.join(BN_STATISTICS)}, got {bn_statistics!r}.")
    if (
        isinstance(recalibration_batches, bool)
        or not isinstance(recalibration_batches, int)
        or recalibration_batches < 1
    ):
        raise ValueError(f"recalibration_batches must be an integer >= 1, got {recalibration_batches!r}.")


def batch_norm_layers(model):
    """Every BatchNormalization layer of `model`, nested models included, that
    updates moving statistics in training (trainable, no batch renormalization)."""
    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.trainable and not layer.renorm:
                found.append(layer)
        stack.extend(reversed(getattr(layer, "layers", None) or []))
    return found


def moving_statistics(model):
    """The moving mean and variance variables of every BatchNorm layer of `model`."""
    return [v for layer in batch_norm_layers(model) for v in (layer.moving_mean, layer.moving_variance)]


# One traced forward function per model: recalibration runs at every epoch end.
_FORWARD = weakref.WeakKeyDictionary()


def _strategy(model):
    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else model.distribute_strategy


def _forward_function(model, layers):
    strategy = _strategy(model)
    key = (id(strategy), tuple(id(layer) for layer in layers))
    cached = _FORWARD.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]

    def replica(batch):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        model(x, training=True)
        # With momentum 0 a training-mode call leaves the batch's own moments
        # (all-reduced with synchronized BatchNorm) in the moving variables.
        return [tf.identity(v.value) for layer in layers for v in (layer.moving_mean, layer.moving_variance)]

    @tf.function(reduce_retracing=True)
    def forward(batch):
        values = strategy.run(replica, args=(batch,))
        return [strategy.reduce("MEAN", v, axis=None) for v in values]

    _FORWARD[model] = (key, forward)
    return forward


def _as_dataset(data, batch_size):
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (np.ndarray, tf.Tensor)) or (isinstance(data, tuple) and data):
        return tf.data.Dataset.from_tensor_slices(data).batch(batch_size or 32)
    raise TypeError(f"recalibrate() needs a batched tf.data.Dataset or an array of images, got {type(data).__name__}.")


def recalibrate(model, data, batches=DEFAULT_RECALIBRATION_BATCHES, batch_size=None):
    """Recomputes the moving mean and variance of every BatchNorm layer of `model`.

    Runs `batches` batches of `data` through the model in training mode and
    sets each layer's moving mean and variance to the average of the batches'
    own means and (biased) variances, which is what the moving averages
    estimate. No weight changes, and neither does the state of random layers
    (Dropout's seed), so training after a recalibration is the same as
    without it. Works under the model's distribution strategy (each batch is
    split across replicas; with synchronized BatchNorm the moments are global).

    Args:
        model: any built Keras model.
        data: a batched `tf.data.Dataset` of images or `(images, labels, ...)`,
            or an array of images (batched by `batch_size`, default 32).
        batches: how many batches to average over.

    Returns:
        The number of batches used (0 when the model has no BatchNorm layer).
    """
    check_option("recalibrated", batches)
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    dataset = _as_dataset(data, batch_size).take(batches)
    strategy = _strategy(model)
    seeds = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    saved_seeds = [v.numpy() for v in seeds]
    momenta = [layer.momentum for layer in layers]
    sums, count = None, 0
    try:
        for layer in layers:
            layer.momentum = 0.0
        forward = _forward_function(model, layers)
        with strategy.scope():
            if strategy.num_replicas_in_sync > 1:
                dataset = strategy.experimental_distribute_dataset(dataset)
            for batch in dataset:
                values = forward(batch)
                sums = values if sums is None else [s + v for s, v in zip(sums, values)]
                count += 1
            if count == 0:
                raise ValueError("recalibrate() got an empty dataset: pass at least one batch of training images.")
            variables = [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
            for variable, total in zip(variables, sums):
                variable.assign(total / count)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        for variable, value in zip(seeds, saved_seeds):
            variable.assign(value)
    return count
