"""Batched training and evaluation data: the `tf.data` pipeline, batch size and steps per epoch, k-fold
splits, and a run's data from its TrainConfig.
"""

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_motivation.data import augmentation
from keras_motivation.data import sources


def split_for_replicas(global_batch_size, num_replicas, name=None):
    """The per-replica batch size; a clear error when the global one does not divide.

    `name` is how the message names the batch size ("Batch size N" unless given).
    """
    if global_batch_size % num_replicas:
        raise ValueError(
            f"{name or f'Batch size {global_batch_size}'} is not divisible by the {num_replicas} replicas: "
            "use a multiple of the replica count."
        )
    return global_batch_size // num_replicas


def steps_per_epoch(batch_size: int, n_train: int, num_replicas: int = 1) -> int:
    """The steps of one epoch of `n_train` examples in batches of `batch_size` (the run's --batch_size, split
    over `num_replicas` replicas); ValueError, naming the flag, when the batch does not divide among the
    replicas or is larger than the examples."""
    split_for_replicas(batch_size, num_replicas, name=f"--batch_size={batch_size}")
    steps = n_train // batch_size
    if steps == 0:
        raise ValueError(f"--batch_size={batch_size} is larger than the {n_train} training examples.")
    return steps


def kfold_indices(n: int, folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(train_idx, val_idx)] for k-fold cross-validation, shuffled with `seed`."""
    if folds < 2 or folds > n:
        raise ValueError(f"folds must be in [2, {n}], got {folds}.")
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, folds)
    return [(np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(parts[i])) for i in range(folds)]


def make_pipeline(
    ds: tf.data.Dataset,
    *,
    batch_size: int,
    training: bool,
    image_size: int | tuple[int, int] | None = None,
    augment: Sequence[str] = (),
    num_classes: int | None = None,
    one_hot: bool = False,
    seed: int | None = None,
    shuffle_buffer: int = 10_000,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    drop_remainder: bool | None = None,
    cache: bool = False,
) -> tf.data.Dataset:
    """Batched float32 (image, label) data from unbatched (uint8 image, int label) examples.

    Training pipelines shuffle (seeded; `shuffle_buffer=0` keeps the order),
    augment, and drop the last partial batch (it would retrace the compiled
    step). Images are scaled to [0, 1], then standardised by `mean`/`std` if
    given. MixUp and CutMix need one-hot labels, which they imply.
    """
    unknown = sorted(set(augment) - set(augmentation.AUGMENTATIONS))
    if unknown:
        raise ValueError(f"Unknown augmentation {unknown[0]!r}: use some of {', '.join(augmentation.AUGMENTATIONS)}.")
    mixing = [a for a in augment if a in ("mixup", "cutmix")]
    one_hot = one_hot or bool(mixing)
    if one_hot and num_classes is None:
        raise ValueError("One-hot labels (mixup, cutmix, label smoothing) need num_classes.")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if drop_remainder is None:
        drop_remainder = training
    if cache:
        ds = ds.cache()
    if training and shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def prepare(image, label):
        image = tf.cast(image, tf.float32)
        if len(image.shape) == 2:
            image = image[..., None]
        if image_size is not None and tuple(image.shape[:2]) != tuple(image_size):
            image = tf.image.resize(image, image_size)
        return image, label

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment:
        steps = augmentation.image_augmenters(augment, ds.element_spec[0].shape, seed)

        def per_image(image, label):
            for step in steps:
                image = step(image)
            return image, label

        if steps:
            ds = ds.map(per_image, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if one_hot:
        ds = ds.map(
            lambda x, y: (x, tf.one_hot(tf.cast(y, tf.int32), num_classes)), num_parallel_calls=tf.data.AUTOTUNE
        )
    if training and mixing:
        layers = [keras.layers.MixUp(seed=seed) if m == "mixup" else keras.layers.CutMix(seed=seed) for m in mixing]

        def mix(x, y):
            out = {"images": x, "labels": y}
            for layer in layers:
                out = layer(out)
            return out["images"], out["labels"]

        ds = ds.map(mix, num_parallel_calls=tf.data.AUTOTUNE)
    scale = 1.0 / 255.0
    mean_t = None if mean is None else tf.constant(mean, tf.float32)
    std_t = None if std is None else tf.constant(std, tf.float32)

    def normalise(x, y):
        x = x * scale
        if mean_t is not None:
            x = x - mean_t
        if std_t is not None:
            x = x / std_t
        return x, y

    ds = ds.map(normalise, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


# -- a run's data, from its TrainConfig ------------------------------------------------


def load_data(config):
    """(train examples, validation examples, number of training examples, dataset info): unbatched datasets.

    Settings no data can satisfy raise ValueError (the trainer reports it as a
    ConfigError); missing files raise FileNotFoundError or sources.DatasetUnavailableError.
    """
    try:
        info = sources.dataset_info(config.dataset, config.data_dir)
    except (ValueError, FileNotFoundError) as err:
        raise ValueError(str(err)) from err
    if config.dataset == sources.IMAGE_FOLDER:
        if not config.image_size:
            raise ValueError(f"--dataset={sources.IMAGE_FOLDER} needs --image_size: the images are resized to it.")
        size = (config.image_size, config.image_size)
        try:
            train, n_train = sources.load_image_folder(config.data_dir, "train", size, info["class_names"])
            val, _ = sources.load_image_folder(config.data_dir, config.validation_split, size, info["class_names"])
        except (ValueError, FileNotFoundError) as err:
            raise ValueError(str(err)) from err
    elif config.dataset == "fashion_mnist_idx":
        (x, y), (xt, yt) = sources.load_fashion_mnist_idx(config.data_dir)
        train = tf.data.Dataset.from_tensor_slices((x, y))
        val = tf.data.Dataset.from_tensor_slices((xt, yt))
        n_train = len(x)
    else:
        train, tinfo = sources.load_tfds(config.dataset, "train", data_dir=config.data_dir, download=config.download)
        val, _ = sources.load_tfds(
            config.dataset, config.validation_split, data_dir=config.data_dir, download=config.download
        )
        n_train = int(train.cardinality())
        if n_train < 0:
            n_train = tinfo.splits["train"].num_examples
    if config.train_size:
        train = train.take(config.train_size)
        n_train = min(n_train, config.train_size)
    if config.eval_size:
        val = val.take(config.eval_size)
    return train, val, n_train, info


def count_examples(ds):
    """Examples in an unbatched dataset: its cardinality where tf.data knows it, else counted."""
    n = int(ds.cardinality())
    if n >= 0:
        return n
    return int(ds.reduce(0, lambda count, *_: count + 1))


def input_shape(config, info):
    """(height, width, channels) the models of a run take: the dataset's, resized to --image_size."""
    h, w, c = info["image_shape"]
    if config.image_size:
        h = w = config.image_size
    return (h, w, c)


def uses_one_hot(config):
    """Whether a run's labels are one-hot: MixUp, CutMix and label smoothing need them."""
    return any(a in ("mixup", "cutmix") for a in config.augment) or config.label_smoothing > 0


def hold_out_batch(config, train, n_train, shape, num_classes):
    """The paper's `valloss`: one training batch held out to drive the condition; the model never trains on it.

    Returns ([images, labels] as arrays, the remaining training examples, their number).
    """
    batch = make_pipeline(
        train.take(config.batch_size),
        batch_size=config.batch_size,
        training=False,
        image_size=shape[:2],
        num_classes=num_classes,
        one_hot=uses_one_hot(config),
    )
    heldout = [t.numpy() for t in next(iter(batch))]
    return heldout, train.skip(config.batch_size), n_train - config.batch_size


def make_datasets(config, train, val, n_train, shape, num_classes, strategy, start_step):
    """Batched train dataset (resumable: seeded order, skips `start_step` batches), validation and
    recalibration datasets, and the steps of one epoch."""
    steps = steps_per_epoch(config.batch_size, n_train, strategy.num_replicas_in_sync)
    common = dict(image_size=shape[:2], num_classes=num_classes, one_hot=uses_one_hot(config))
    # The order of every epoch is fixed by the seed, so a resumed run sees the
    # same batches: shuffle, repeat, then skip what was already trained.
    ordered = train.shuffle(min(n_train, 50_000), seed=config.seed, reshuffle_each_iteration=True).repeat()
    ordered = ordered.skip(start_step * config.batch_size)
    train_ds = make_pipeline(
        ordered,
        batch_size=config.batch_size,
        training=True,
        augment=config.augment,
        seed=config.seed,
        shuffle_buffer=0,
        **common,
    )
    val_ds = make_pipeline(val, batch_size=config.batch_size, training=False, **common)
    # BatchNorm statistics are recomputed from the first training batches, as
    # evaluation preprocesses them: the same images at every epoch end, also
    # after a resume.
    recal_ds = make_pipeline(train, batch_size=config.batch_size, training=False, **common)
    # Across workers, every worker reads the same seeded order and keeps its
    # share of each batch: deterministic, and resumable at any step.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return train_ds.with_options(options), val_ds.with_options(options), recal_ds.with_options(options), steps
