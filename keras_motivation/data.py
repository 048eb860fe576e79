"""Input pipelines: tensorflow-datasets (prepared on first use), Debian's Fashion-MNIST IDX files, image folders.

Sources yield unbatched `(uint8 image, int label)` examples; `make_pipeline`
turns them into batched float32 training or evaluation data with core Keras
augmentation layers running inside `tf.data` (not in the model, so the
exported models stay free of training-only layers).
"""

import gzip
import os
import time

import keras
import numpy as np
import tensorflow as tf

FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist", "~/.keras/datasets/fashion-mnist")

# Classes and native image shape, known before any data is read.
DATASETS = {
    "fashion_mnist_idx": (10, (28, 28, 1)),
    "fashion_mnist": (10, (28, 28, 1)),
    "cifar10": (10, (32, 32, 3)),
    "cifar100": (100, (32, 32, 3)),
    "imagenet2012": (1000, (224, 224, 3)),
    "oxford_flowers102": (102, (224, 224, 3)),
    "oxford_iiit_pet": (37, (224, 224, 3)),
}
# Users' own images, one directory per class: DIR/train/<class>/*, DIR/test/<class>/*.
IMAGE_FOLDER = "image_folder"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")

AUGMENTATIONS = ("crop_flip", "flip", "randaugment", "autoaugment_cifar10", "random_erasing", "mixup", "cutmix")


class DatasetUnavailableError(RuntimeError):
    """The data is not on this machine; the message says what to run."""


def dataset_info(name, data_dir=None):
    """{"num_classes", "image_shape"} of a supported dataset (image folders: read from `data_dir`)."""
    if name == IMAGE_FOLDER:
        classes = image_folder_classes(data_dir)
        return {"num_classes": len(classes), "image_shape": (None, None, 3), "class_names": classes}
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}: use one of {', '.join(sorted(DATASETS))} or {IMAGE_FOLDER}.")
    classes, shape = DATASETS[name]
    return {"num_classes": classes, "image_shape": shape}


def image_folder_classes(data_dir):
    """Sorted class names: the subdirectories of `data_dir/train`; a clear error when there are none."""
    train = os.path.join(data_dir or "", "train")
    if not data_dir or not os.path.isdir(train):
        raise FileNotFoundError(
            f"--dataset={IMAGE_FOLDER} reads DATA_DIR/train/<class>/<image> and DATA_DIR/test/<class>/<image>: "
            f"no directory {train!r}; pass --data_dir."
        )
    classes = sorted(d for d in os.listdir(train) if os.path.isdir(os.path.join(train, d)))
    if len(classes) < 2:
        raise FileNotFoundError(
            f"{train} has {len(classes)} class directories: an image folder needs one per class, at least 2."
        )
    return classes


def load_image_folder(data_dir, split, image_size, class_names):
    """Unbatched (uint8 image, int label) examples of `data_dir/split/<class>/*`, resized to `image_size`.

    Labels follow `class_names` (the training split's), so every split agrees.
    """
    directory = os.path.join(data_dir, split)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"No directory {directory!r} for the {split!r} split of the image folder {data_dir}.")
    missing = [c for c in os.listdir(directory) if os.path.isdir(os.path.join(directory, c)) and c not in class_names]
    if missing:
        raise ValueError(f"{directory} has classes the training split lacks: {', '.join(sorted(missing))}.")
    ds = keras.utils.image_dataset_from_directory(
        directory,
        labels="inferred",
        label_mode="int",
        class_names=class_names,
        color_mode="rgb",
        batch_size=None,
        image_size=image_size,
        shuffle=False,
        verbose=False,
    )
    count = int(ds.cardinality())
    if count == 0:
        raise FileNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under {directory}.")
    return ds.map(lambda x, y: (tf.cast(tf.round(x), tf.uint8), tf.cast(y, tf.int64))), count


def load_fashion_mnist_idx(directory=None):
    """The original Fashion-MNIST IDX files: ((x_train, y_train), (x_test, y_test)).

    Images are uint8 (N, 28, 28, 1), labels int64. Without `directory`, looks
    in $FASHION_MNIST_DIR, Debian's /usr/share/datasets/fashion-mnist and the
    Keras cache.
    """
    candidates = [directory] if directory else [os.environ.get("FASHION_MNIST_DIR"), *FASHION_MNIST_DIRS]
    candidates = [os.path.expanduser(c) for c in candidates if c]
    for d in candidates:
        if os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")):
            break
    else:
        raise FileNotFoundError(
            f"No Fashion-MNIST IDX files in {', '.join(candidates)}: "
            "apt-get install dataset-fashion-mnist, or pass the directory (--data_dir)."
        )

    def read(name, offset):
        with gzip.open(os.path.join(d, name)) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    x = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y = read("train-labels-idx1-ubyte.gz", 8).astype("int64")
    xt = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    yt = read("t10k-labels-idx1-ubyte.gz", 8).astype("int64")
    return (x, y), (xt, yt)


def load_tfds(name, split, data_dir=None, download=True, probe_timeout=5.0):
    """A tensorflow-datasets split, (dataset, info); prepared on first use when `download`.

    A dataset not yet in `data_dir` is downloaded and prepared by
    tensorflow-datasets (`builder.download_and_prepare`, with its progress
    bars) when `download` is true and its download hosts answer within
    `probe_timeout` seconds; otherwise, and for ImageNet without its archives
    in `<data_dir>/downloads/manual`, DatasetUnavailableError says what to
    run, within seconds and before anything is written. A download that fails
    half-way leaves nothing of its own in `data_dir`.
    """
    import tensorflow_datasets as tfds

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise ValueError(
            f"Unknown tensorflow-datasets name {name!r}: use one of {', '.join(sorted(DATASETS))}."
        ) from err
    if not builder.is_prepared():
        todo = f"run `tfds build {name} --data_dir={data_dir}`"
        manual = getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
        if not download:
            raise DatasetUnavailableError(
                f"Dataset {name} is not prepared in {data_dir} and downloading is off (--download=false): "
                f"{todo} on a machine with internet and copy the directory here, or pass --data_dir."
            )
        if not manual:
            unreachable = unreachable_hosts(download_hosts(builder), timeout=probe_timeout)
            if unreachable:
                raise DatasetUnavailableError(
                    f"Dataset {name} is not prepared in {data_dir} and its download host {unreachable[0]} cannot be "
                    f"reached from here: {todo} on a machine with internet and copy the directory here, "
                    "or pass --data_dir."
                )
        try:
            _download_and_prepare(builder, data_dir)
        except AssertionError as err:  # tfds: "Manual directory ... does not exist or is empty"
            if not manual or "Manual directory" not in str(err):
                raise
            manual_dir = os.path.join(data_dir, "downloads", "manual")
            raise DatasetUnavailableError(
                f"Dataset {name} is not prepared in {data_dir} and cannot be downloaded automatically: put its "
                f"archives in {manual_dir}, then rerun (or {todo}), or pass --data_dir."
            ) from None
    return builder.as_dataset(split=split, as_supervised=True), builder.info


def download_hosts(builder):
    """(host, port) pairs a tensorflow-datasets builder downloads from (its checksums file);
    the proxy instead when one is set for HTTPS/HTTP."""
    import urllib.parse
    import urllib.request

    urls = list(builder.url_infos or {})
    hosts = []
    for url in urls:
        parsed = urllib.parse.urlparse(url)
        proxy = urllib.request.getproxies().get(parsed.scheme)
        if proxy and not urllib.request.proxy_bypass(parsed.hostname or ""):
            parsed = urllib.parse.urlparse(proxy if "://" in proxy else f"http://{proxy}")
        if parsed.hostname:
            hosts.append((parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)))
    return list(dict.fromkeys(hosts))


def unreachable_hosts(hosts, timeout=5.0):
    """The "host:port"s among `hosts` that take no TCP connection within `timeout` seconds in all
    (name resolution included, which has no timeout of its own: it runs in daemon threads)."""
    import socket
    import threading

    reached = {}

    def probe(host, port):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            reached[(host, port)] = True
        except OSError:
            reached[(host, port)] = False

    threads = [threading.Thread(target=probe, args=hp, daemon=True) for hp in hosts]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return [f"{h}:{p}" for h, p in hosts if not reached.get((h, p))]


def _download_and_prepare(builder, data_dir):
    """builder.download_and_prepare(); on failure, removes what it added to data_dir."""
    import shutil

    watched = [data_dir, os.path.join(data_dir, "downloads"), os.path.join(data_dir, builder.name)]
    existed = {d: set(os.listdir(d)) if os.path.isdir(d) else None for d in watched}
    try:
        builder.download_and_prepare()
    except BaseException:
        for d in reversed(watched):
            before = existed[d]
            if not os.path.isdir(d):
                continue
            for entry in set(os.listdir(d)) - (before or set()):
                path = os.path.join(d, entry)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)
            if before is None and not os.listdir(d):
                os.rmdir(d)
        raise


def split_for_replicas(global_batch_size, num_replicas):
    """The per-replica batch size; a clear error when the global one does not divide."""
    if global_batch_size % num_replicas:
        raise ValueError(
            f"Batch size {global_batch_size} is not divisible by the {num_replicas} replicas: "
            "use a multiple of the replica count."
        )
    return global_batch_size // num_replicas


def kfold_indices(n, folds, seed=0):
    """[(train_idx, val_idx)] for k-fold cross-validation, shuffled with `seed`."""
    if folds < 2 or folds > n:
        raise ValueError(f"folds must be in [2, {n}], got {folds}.")
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, folds)
    return [(np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(parts[i])) for i in range(folds)]


# -- augmentation -------------------------------------------------------------------

# AutoAugment's CIFAR-10 policy (Cubuk et al. 2019, Table 7): 25 sub-policies of
# two (operation, probability, magnitude 0-9) steps.
AUTOAUGMENT_CIFAR10 = (
    (("invert", 0.1, 7), ("contrast", 0.2, 6)),
    (("rotate", 0.7, 2), ("translate_x", 0.3, 9)),
    (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)),
    (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
    (("autocontrast", 0.5, 8), ("equalize", 0.9, 2)),
    (("shear_y", 0.2, 7), ("posterize", 0.3, 7)),
    (("color", 0.4, 3), ("brightness", 0.6, 7)),
    (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
    (("equalize", 0.6, 5), ("equalize", 0.5, 1)),
    (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
    (("color", 0.7, 7), ("translate_x", 0.5, 8)),
    (("equalize", 0.3, 7), ("autocontrast", 0.4, 8)),
    (("translate_y", 0.4, 3), ("sharpness", 0.2, 6)),
    (("brightness", 0.9, 6), ("color", 0.2, 8)),
    (("solarize", 0.5, 2), ("invert", 0.0, 3)),
    (("equalize", 0.2, 0), ("autocontrast", 0.6, 0)),
    (("equalize", 0.2, 8), ("equalize", 0.6, 4)),
    (("color", 0.9, 9), ("equalize", 0.6, 6)),
    (("autocontrast", 0.8, 4), ("solarize", 0.2, 8)),
    (("brightness", 0.1, 3), ("color", 0.7, 0)),
    (("solarize", 0.4, 5), ("autocontrast", 0.9, 3)),
    (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
    (("autocontrast", 0.9, 2), ("solarize", 0.8, 3)),
    (("equalize", 0.8, 8), ("invert", 0.1, 3)),
    (("translate_y", 0.7, 9), ("autocontrast", 0.9, 1)),
)


def _autoaugment_op(name, magnitude, seed):
    """One AutoAugment operation at a fixed magnitude, from core Keras layers (0-255 images)."""
    m = magnitude / 9.0
    vr = (0, 255)
    fixed = lambda v: (v, v)  # noqa: E731  a random layer with a fixed factor
    return {
        "invert": lambda: keras.layers.RandomInvert(factor=1.0, value_range=vr, seed=seed),
        "contrast": lambda: keras.layers.RandomContrast(factor=0.9 * m, value_range=vr, seed=seed),
        "rotate": lambda: keras.layers.RandomRotation(fixed(30 / 360 * m), seed=seed),
        "translate_x": lambda: keras.layers.RandomTranslation(0, fixed(150 / 331 * m), seed=seed),
        "translate_y": lambda: keras.layers.RandomTranslation(fixed(150 / 331 * m), 0, seed=seed),
        "shear_y": lambda: keras.layers.RandomShear(x_factor=0.0, y_factor=0.3 * m, seed=seed),
        "sharpness": lambda: keras.layers.RandomSharpness(factor=fixed(min(m, 1.0)), value_range=vr, seed=seed),
        "autocontrast": lambda: keras.layers.AutoContrast(value_range=vr),
        "equalize": lambda: keras.layers.Equalization(value_range=vr),
        "posterize": lambda: keras.layers.RandomPosterization(
            factor=(max(1, int(8 - 4 * m)), max(1, int(8 - 4 * m))), value_range=vr, seed=seed
        ),
        "color": lambda: keras.layers.RandomColorDegeneration(factor=fixed(0.9 * m), value_range=vr, seed=seed),
        "brightness": lambda: keras.layers.RandomBrightness(factor=fixed(0.9 * m), value_range=vr, seed=seed),
        "solarize": lambda: keras.layers.Solarization(
            addition_factor=0.0, threshold_factor=fixed(1 - m), value_range=vr, seed=seed
        ),
    }[name]()


class _AutoAugment:
    """Applies one random sub-policy per image (in tf.data, one image at a time)."""

    def __init__(self, seed=None):
        self.policies = [
            [(_autoaugment_op(name, mag, seed), prob) for name, prob, mag in sub] for sub in AUTOAUGMENT_CIFAR10
        ]
        self.seed = seed

    def __call__(self, image):
        def branch(steps):
            def apply():
                x = image
                for layer, prob in steps:
                    x = tf.cond(
                        tf.random.uniform(()) < prob,
                        lambda layer=layer, x=x: tf.cast(layer(x), tf.float32),
                        lambda x=x: x,
                    )
                return x

            return apply

        index = tf.random.uniform((), 0, len(self.policies), dtype=tf.int32)
        return tf.switch_case(index, [branch(p) for p in self.policies])


def _image_augmenters(augment, image_shape, seed):
    """Per-image augmentations (float 0-255 images), in the order given."""
    h, w = image_shape[:2]
    steps = []
    for name in augment:
        if name == "crop_flip":
            pad = max(1, h // 8)  # 4 px at 32 px, the CIFAR standard
            pad_layer = keras.layers.ZeroPadding2D(pad)
            crop = keras.layers.RandomCrop(h, w, seed=seed)
            flip = keras.layers.RandomFlip("horizontal", seed=seed)
            steps.append(lambda x, p=pad_layer, c=crop, f=flip: f(c(p(x[None]))[0]))
        elif name == "flip":
            flip = keras.layers.RandomFlip("horizontal", seed=seed)
            steps.append(lambda x, f=flip: f(x))
        elif name == "randaugment":
            ra = keras.layers.RandAugment(value_range=(0, 255), seed=seed)
            steps.append(lambda x, r=ra: tf.cast(r(x), tf.float32))
        elif name == "autoaugment_cifar10":
            steps.append(_AutoAugment(seed))
        elif name == "random_erasing":
            erase = keras.layers.RandomErasing(value_range=(0, 255), seed=seed)
            steps.append(lambda x, e=erase: tf.cast(e(x), tf.float32))
    return steps


def make_pipeline(
    ds,
    *,
    batch_size,
    training,
    image_size=None,
    augment=(),
    num_classes=None,
    one_hot=False,
    seed=None,
    shuffle_buffer=10_000,
    mean=None,
    std=None,
    drop_remainder=None,
    cache=False,
):
    """Batched float32 (image, label) data from unbatched (uint8 image, int label) examples.

    Training pipelines shuffle (seeded; `shuffle_buffer=0` keeps the order),
    augment, and drop the last partial batch (it would retrace the compiled
    step). Images are scaled to [0, 1], then standardised by `mean`/`std` if
    given. MixUp and CutMix need one-hot labels, which they imply.
    """
    unknown = sorted(set(augment) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"Unknown augmentation {unknown[0]!r}: use some of {', '.join(AUGMENTATIONS)}.")
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
        steps = _image_augmenters(augment, ds.element_spec[0].shape, seed)

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
    ConfigError); missing files raise FileNotFoundError or DatasetUnavailableError.
    """
    try:
        info = dataset_info(config.dataset, config.data_dir)
    except (ValueError, FileNotFoundError) as err:
        raise ValueError(str(err)) from err
    if config.dataset == IMAGE_FOLDER:
        if not config.image_size:
            raise ValueError(f"--dataset={IMAGE_FOLDER} needs --image_size: the images are resized to it.")
        size = (config.image_size, config.image_size)
        try:
            train, n_train = load_image_folder(config.data_dir, "train", size, info["class_names"])
            val, _ = load_image_folder(config.data_dir, config.validation_split, size, info["class_names"])
        except (ValueError, FileNotFoundError) as err:
            raise ValueError(str(err)) from err
    elif config.dataset == "fashion_mnist_idx":
        (x, y), (xt, yt) = load_fashion_mnist_idx(config.data_dir)
        train = tf.data.Dataset.from_tensor_slices((x, y))
        val = tf.data.Dataset.from_tensor_slices((xt, yt))
        n_train = len(x)
    else:
        train, tinfo = load_tfds(config.dataset, "train", data_dir=config.data_dir, download=config.download)
        val, _ = load_tfds(config.dataset, config.validation_split, data_dir=config.data_dir, download=config.download)
        n_train = int(train.cardinality())
        if n_train < 0:
            n_train = tinfo.splits["train"].num_examples
    if config.train_size:
        train = train.take(config.train_size)
        n_train = min(n_train, config.train_size)
    if config.eval_size:
        val = val.take(config.eval_size)
    return train, val, n_train, info


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
    replicas = strategy.num_replicas_in_sync
    split_for_replicas(config.batch_size, replicas)
    steps = n_train // config.batch_size
    if steps == 0:
        raise ValueError(f"--batch_size={config.batch_size} is larger than the {n_train} training examples.")
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
