"""Input pipelines: IDX files, tensorflow-datasets offline, augmentation, folds."""

import os

import numpy as np
import pytest
import tensorflow as tf
from testing_utils import requires_fashion_mnist
from testing_utils import write_image_folder

from keras_motivation import data
from keras_motivation.data import sources


def images(n=16, size=32, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    return tf.data.Dataset.from_tensor_slices((x, y))


@requires_fashion_mnist
def test_fashion_mnist_idx_files():
    (x, y), (xt, yt) = data.load_fashion_mnist_idx()
    assert x.shape == (60000, 28, 28, 1) and xt.shape == (10000, 28, 28, 1)
    assert x.dtype == np.uint8 and set(np.unique(y)) == set(range(10)) and len(yt) == 10000


def test_missing_idx_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist_idx(str(tmp_path))


def test_tfds_offline_missing_data_says_what_to_run(tmp_path):
    with pytest.raises(data.DatasetUnavailableError, match=f"tfds build cifar10 --data_dir={tmp_path}"):
        data.load_tfds("cifar10", "train", data_dir=str(tmp_path))
    with pytest.raises(data.DatasetUnavailableError, match="downloads/manual"):
        data.load_tfds("imagenet2012", "train", data_dir=str(tmp_path))


def test_tfds_download_without_network_fails_fast_and_leaves_nothing(tmp_path):
    # This machine has no route to the datasets' hosts: the probe, not a download, says so.
    import time

    data_dir = tmp_path / "tfds"
    start = time.monotonic()
    with pytest.raises(data.DatasetUnavailableError) as err:
        data.load_tfds("cifar100", "train", data_dir=str(data_dir))
    elapsed = time.monotonic() - start
    message = str(err.value)
    assert "\n" not in message
    assert "download host www.cs.toronto.edu:443 cannot be reached" in message
    assert f"tfds build cifar100 --data_dir={data_dir}" in message
    assert elapsed < 15, elapsed
    assert not data_dir.exists()


def test_tfds_download_off_says_so(tmp_path):
    with pytest.raises(
        data.DatasetUnavailableError, match=r"downloading is off \(--download=false\): run `tfds build cifar10"
    ):
        data.load_tfds("cifar10", "train", data_dir=str(tmp_path), download=False)
    assert os.listdir(tmp_path) == []


def test_tfds_download_that_fails_half_way_leaves_nothing(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    data_dir = tmp_path / "tfds"
    (data_dir / "other").mkdir(parents=True)  # someone else's: kept
    calls = []

    def broken_download(self, *args, **kwargs):
        calls.append(self.name)
        os.makedirs(data_dir / "downloads" / "extracted")
        (data_dir / "downloads" / "cifar-10-binary.tar.gz.tmp").write_bytes(b"half")
        os.makedirs(data_dir / "cifar10" / "3.0.2.incomplete")
        raise ConnectionError("connection reset")

    monkeypatch.setattr(sources, "unreachable_hosts", lambda hosts, timeout=5.0: [])
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", broken_download)
    with pytest.raises(ConnectionError):
        data.load_tfds("cifar10", "train", data_dir=str(data_dir))
    assert calls == ["cifar10"]
    assert sorted(os.listdir(data_dir)) == ["other"]


def test_tfds_download_hosts_and_probe():
    import socket

    import tensorflow_datasets as tfds

    assert data.download_hosts(tfds.builder("cifar10")) == [("www.cs.toronto.edu", 443)]
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: refused
    try:
        open_port, closed_port = server.getsockname()[1], closed.getsockname()[1]
        assert data.unreachable_hosts([("127.0.0.1", open_port)], timeout=2) == []
        assert data.unreachable_hosts([("127.0.0.1", closed_port)], timeout=2) == [f"127.0.0.1:{closed_port}"]
    finally:
        server.close()
        closed.close()


def test_tfds_mock_data_pipeline(monkeypatch):
    import tensorflow_datasets as tfds

    # As on a networked machine: the hosts answer, tfds prepares (mocked: a no-op) and reads.
    monkeypatch.setattr(sources, "unreachable_hosts", lambda hosts, timeout=5.0: [])
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        ds, info = data.load_tfds("cifar10", "train")
        batches = list(data.make_pipeline(ds, batch_size=4, training=True, augment=("crop_flip",), seed=0))
    assert info.features["label"].num_classes == 10
    assert len(batches) == 3
    assert batches[0][0].shape == (4, 32, 32, 3) and batches[0][0].dtype == tf.float32


def test_pipeline_shapes_range_and_remainder():
    train = list(data.make_pipeline(images(10), batch_size=4, training=True, seed=0))
    assert [b[0].shape[0] for b in train] == [4, 4]  # partial batch dropped for training
    evals = list(data.make_pipeline(images(10), batch_size=4, training=False))
    assert [b[0].shape[0] for b in evals] == [4, 4, 2]
    x = np.concatenate([b[0].numpy() for b in evals])
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    std = list(data.make_pipeline(images(10), batch_size=10, training=False, mean=0.5, std=0.25))[0][0].numpy()
    np.testing.assert_allclose(std, (x - 0.5) / 0.25, rtol=1e-5)
    resized = list(data.make_pipeline(images(4, size=28, channels=1), batch_size=4, training=False, image_size=32))
    assert resized[0][0].shape == (4, 32, 32, 1)


@pytest.mark.parametrize("name", [a for a in data.AUGMENTATIONS if a not in ("mixup", "cutmix")])
def test_each_augmentation_keeps_shapes_and_changes_images(name):
    plain = list(data.make_pipeline(images(8), batch_size=8, training=True, seed=0, shuffle_buffer=0))[0][0].numpy()
    aug = list(data.make_pipeline(images(8), batch_size=8, training=True, augment=(name,), seed=0, shuffle_buffer=0))[
        0
    ][0].numpy()
    assert aug.shape == plain.shape and aug.dtype == np.float32
    assert np.all(np.isfinite(aug))
    assert not np.allclose(aug, plain), f"{name} left every image unchanged"


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_mixing_gives_one_hot_soft_labels(name):
    x, y = list(data.make_pipeline(images(8), batch_size=8, training=True, augment=(name,), num_classes=10, seed=0))[0]
    assert y.shape == (8, 10)
    np.testing.assert_allclose(y.numpy().sum(-1), 1.0, rtol=1e-5)
    assert np.any((y.numpy() > 0) & (y.numpy() < 1))
    with pytest.raises(ValueError, match="num_classes"):
        data.make_pipeline(images(8), batch_size=8, training=True, augment=(name,))


def test_unknown_augmentation():
    with pytest.raises(ValueError, match="Unknown augmentation 'jitter'.*crop_flip"):
        data.make_pipeline(images(4), batch_size=2, training=True, augment=("jitter",))


def test_seeded_shuffle_is_reproducible():
    def order(seed):
        return np.concatenate(
            [b[1].numpy() for b in data.make_pipeline(images(64), batch_size=8, training=True, seed=seed)]
        )

    assert np.array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))


def test_split_for_replicas_and_folds():
    assert data.split_for_replicas(128, 2) == 64
    with pytest.raises(ValueError, match="Batch size 30 is not divisible by the 4 replicas"):
        data.split_for_replicas(30, 4)
    folds = data.kfold_indices(23, 5, seed=0)
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals) == list(range(23))
    for tr, va in folds:
        assert not set(tr) & set(va) and len(tr) + len(va) == 23


def test_steps_per_epoch_is_the_one_batch_size_check():
    assert data.steps_per_epoch(32, 100) == 3 and data.steps_per_epoch(32, 100, num_replicas=4) == 3
    with pytest.raises(ValueError, match="--batch_size=30 is not divisible by the 4 replicas"):
        data.steps_per_epoch(30, 100, num_replicas=4)
    with pytest.raises(ValueError, match="--batch_size=128 is larger than the 100 training examples"):
        data.steps_per_epoch(128, 100)


def test_dataset_info():
    assert data.dataset_info("cifar100") == {"num_classes": 100, "image_shape": (32, 32, 3)}
    with pytest.raises(ValueError, match="Unknown dataset"):
        data.dataset_info("mnist_typo")


def test_image_folder(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    info = data.dataset_info(data.IMAGE_FOLDER, root)
    assert info["num_classes"] == 3 and info["class_names"] == ["boot", "coat", "shirt"]
    ds, count = data.load_image_folder(root, "train", (16, 16), info["class_names"])
    examples = list(ds.as_numpy_iterator())
    assert count == len(examples) == 12
    for x, y in examples:
        assert x.dtype == np.uint8 and x.shape == (16, 16, 3)
        assert abs(int(x.mean()) - 60 * (y + 1)) <= 2  # the label is the image's class
    assert sorted(int(y) for _, y in examples) == [0] * 4 + [1] * 4 + [2] * 4


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="DATA_DIR/train/<class>/<image>.*pass --data_dir"):
        data.dataset_info(data.IMAGE_FOLDER, str(tmp_path))
    root = write_image_folder(tmp_path / "a", splits=("train",))
    with pytest.raises(FileNotFoundError, match="No directory .*'test' split"):
        data.load_image_folder(root, "test", (16, 16), ["boot", "coat", "shirt"])
    root = write_image_folder(tmp_path / "b", classes=("boot", "coat", "hat"), splits=("test",))
    with pytest.raises(ValueError, match="classes the training split lacks: hat"):
        data.load_image_folder(root, "test", (16, 16), ["boot", "coat", "shirt"])
