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
- `"recalibrated"`: private, and recomputed from training batches (US-Nets'
  recalibration) where they are stale when something reads them: before a
  validation, `evaluate`, `predict`, `save`, `export` and at the end of
  `fit`. Stale means that the weights changed without the model's own steps
  following them (a switch's copy, another model's steps, a load), until
  its own steps have moved the statistics far enough (`engine/statistics.py`):
  so evaluation never sees statistics of other weights, an epoch that
  nothing reads costs nothing, and after growth, where the joint step moves
  every model's statistics on every batch, one recomputation is all.

`recalibrate(model, data, batches)` recomputes any Keras model's statistics
from any input `fit` accepts: a `tf.data.Dataset` (distributed or not), a
`keras.utils.PyDataset` (by index), arrays, or an iterable of batches
(`RecentBatches`: the last batches a Python generator gave `fit`).
"""

import collections
import itertools
import threading
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_motivation import keras_internals

BN_STATISTICS = ("shared", "private", "recalibrated")
DEFAULT_BN_STATISTICS = "recalibrated"
DEFAULT_RECALIBRATION_BATCHES = 32
# What `RecentBatches` keeps of a generator's batches at most (their inputs, not copied).
RECENT_BATCHES_MAX_BYTES = 256 * 2**20


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


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer of `model`, nested models and layers included, that
    updates moving statistics in training (trainable, no batch renormalization)."""
    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.trainable and not layer.renorm:
                found.append(layer)
        stack.extend(reversed(keras_internals.sublayers(layer)))
    return found


def moving_statistics(model: keras.Model) -> list[keras.Variable]:
    """The moving mean and variance variables of every BatchNorm layer of `model`."""
    return [v for layer in batch_norm_layers(model) for v in (layer.moving_mean, layer.moving_variance)]


# One traced forward function per model: recalibration runs once per read of new weights.
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

    # The running sums go in and out of the traced function: no eager op per batch and layer. No
    # data-dependent Python control flow here, so no AutoGraph (its source conversion costs a trace).
    @tf.function(reduce_retracing=True, autograph=False)
    def forward(batch, sums):
        values = strategy.run(replica, args=(batch,))
        return [s + strategy.reduce("MEAN", v, axis=None) for s, v in zip(sums, values)]

    _FORWARD[model] = (key, forward)
    return forward


def _inputs(batch):
    """The model inputs of a batch `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`."""
    return keras.utils.unpack_x_y_sample_weight(batch)[0]


def _nbytes(x):
    total = 0
    for leaf in tf.nest.flatten(x):
        n = getattr(leaf, "nbytes", None)
        if n is None and hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
            n = int(np.prod(leaf.shape)) * tf.as_dtype(leaf.dtype).size
        total += int(n or 0)
    return total


class ArrayBatches:
    """Batches `(inputs,)` of the model inputs `x` (an array or a structure of arrays), sliced when
    iterated: nothing is copied or converted until a recalibration reads them."""

    def __init__(self, x, batch_size=None):
        self.x = tuple(x) if isinstance(x, list) else x
        self.batch_size = batch_size or 32

    def __iter__(self):
        n = len(tf.nest.flatten(self.x)[0])
        for start in range(0, n, self.batch_size):
            part = slice(start, start + self.batch_size)
            yield (tf.nest.map_structure(lambda a, part=part: a[part], self.x),)


class RecentBatches:
    """The inputs of the last batches a Python generator yielded, for recalibration
    (iterated as batches `(inputs,)`).

    `record(generator)` yields what the generator yields and keeps (references
    to, not copies of) the inputs of the last `max_batches` batches, and never
    more than `max_bytes` of them (at least the last batch). A generator can
    be read only once: these are the batches `fit` trained on last.
    """

    def __init__(self, max_batches=DEFAULT_RECALIBRATION_BATCHES, max_bytes=RECENT_BATCHES_MAX_BYTES):
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.dropped_for_memory = False  # fewer than max_batches kept because of max_bytes
        self._kept = collections.deque()
        self._bytes = 0
        # Keras reads the generator on a tf.data thread, possibly ahead of training.
        self._lock = threading.Lock()

    def record(self, generator):
        for item in generator:
            self.add(item)
            yield item

    def add(self, batch):
        x = _inputs(batch)
        n = _nbytes(x)
        with self._lock:
            self._kept.append((x, n))
            self._bytes += n
            while len(self._kept) > self.max_batches or (self._bytes > self.max_bytes and len(self._kept) > 1):
                if len(self._kept) <= self.max_batches:
                    self.dropped_for_memory = True
                self._bytes -= self._kept.popleft()[1]

    def __len__(self):
        return len(self._kept)

    def __iter__(self):
        with self._lock:
            kept = [(x,) for x, _ in self._kept]
        return iter(kept)


def _is_arrays(data):
    if isinstance(data, (np.ndarray, tf.Tensor)):
        return True
    if isinstance(data, dict):
        return bool(data) and all(_is_arrays(v) for v in data.values())
    return isinstance(data, tuple) and bool(data)


def _from_batches(batches):
    """A `tf.data.Dataset` of `(inputs,)` from an iterator of Python batches (read once, on demand)."""
    first = next(batches, None)
    if first is None:
        return []
    first = tf.nest.map_structure(np.asarray, _inputs(first))
    spec = tf.nest.map_structure(lambda a: tf.TensorSpec((None, *a.shape[1:]), a.dtype), first)

    def generate():
        yield (first,)
        for batch in batches:
            yield (tf.nest.map_structure(np.asarray, _inputs(batch)),)

    return tf.data.Dataset.from_generator(generate, output_signature=(spec,))


def _batches(data, batch_size, batches):
    """`data` as at most `batches` batches: a `tf.data.Dataset`, a distributed dataset (already
    split), or nothing (an empty source)."""
    if isinstance(data, tf.data.Dataset):
        return data.take(batches)
    if isinstance(data, tf.distribute.DistributedDataset):
        return data
    if isinstance(data, keras.utils.PyDataset):
        n = data.num_batches
        count = batches if n is None else min(batches, n)
        return _from_batches(data[i] for i in range(count))
    if _is_arrays(data):
        # Arrays of images, or (images, labels, ...): the first is the model's input.
        return _from_batches(itertools.islice(iter(ArrayBatches(_inputs(data), batch_size)), batches))
    if hasattr(data, "__iter__") and not isinstance(data, (str, bytes)):
        return _from_batches(itertools.islice(iter(data), batches))
    raise TypeError(
        "recalibrate() needs a batched tf.data.Dataset, a keras.utils.PyDataset, an iterable of batches or an "
        f"array of images, got {type(data).__name__}."
    )


def recalibrate(
    model: keras.Model, data, batches: int = DEFAULT_RECALIBRATION_BATCHES, batch_size: int | None = None
) -> int:
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
        data (tf.data.Dataset | keras.utils.PyDataset | Iterable | np.ndarray): batches
            of images or `(images, labels, ...)`: a batched `tf.data.Dataset`
            (also one distributed by the model's strategy), a
            `keras.utils.PyDataset` (its first batches, by index), an iterable
            of batches (e.g. `RecentBatches`, a list), or an array of images
            (batched by `batch_size`, default 32).
        batches: how many batches (at most) to average over.

    Returns:
        The number of batches used (0 when the model has no BatchNorm layer).
    """
    check_option("recalibrated", batches)
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    dataset = _batches(data, batch_size, batches)
    strategy = _strategy(model)
    seeds = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    saved_seeds = [v.numpy() for v in seeds]
    momenta = [layer.momentum for layer in layers]
    variables = [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
    sums = [tf.zeros(v.shape, v.dtype) for v in variables]
    count = 0
    try:
        for layer in layers:
            layer.momentum = 0.0
        forward = _forward_function(model, layers)
        with strategy.scope():
            if strategy.num_replicas_in_sync > 1 and isinstance(dataset, tf.data.Dataset):
                dataset = strategy.experimental_distribute_dataset(dataset)
            for batch in itertools.islice(dataset, batches):
                sums = forward(batch, sums)
                count += 1
            if count == 0:
                raise ValueError("recalibrate() got an empty dataset: pass at least one batch of training images.")
            for variable, total in zip(variables, sums):
                variable.assign(total / count)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        for variable, value in zip(seeds, saved_seeds):
            variable.assign(value)
    return count
