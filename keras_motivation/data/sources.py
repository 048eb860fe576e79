"""Where a run's examples come from: tensorflow-datasets (prepared on first use), Debian's Fashion-MNIST IDX
files, image folders.

Every source yields unbatched `(uint8 image, int label)` examples. A tfds
dataset not yet prepared is downloaded only when its hosts answer (probed
first, within seconds); a download that fails half-way is cleaned up.
"""

import gzip
import os
import time
from collections.abc import Sequence

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


class DatasetUnavailableError(RuntimeError):
    """The data is not on this machine; the message says what to run."""


def dataset_info(name: str, data_dir: str | None = None) -> dict:
    """{"num_classes", "image_shape"} of a supported dataset (image folders: read from `data_dir`)."""
    if name == IMAGE_FOLDER:
        classes = image_folder_classes(data_dir)
        return {"num_classes": len(classes), "image_shape": (None, None, 3), "class_names": classes}
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}: use one of {', '.join(sorted(DATASETS))} or {IMAGE_FOLDER}.")
    classes, shape = DATASETS[name]
    return {"num_classes": classes, "image_shape": shape}


def image_folder_classes(data_dir: str) -> list[str]:
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


def load_image_folder(
    data_dir: str, split: str, image_size: tuple[int, int], class_names: Sequence[str]
) -> tf.data.Dataset:
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


def load_fashion_mnist_idx(
    directory: str | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
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


def load_tfds(
    name: str, split: str, data_dir: str | None = None, download: bool = True, probe_timeout: float = 5.0
) -> tuple:
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
