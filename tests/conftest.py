"""Shared test set-up: quiet TensorFlow, one thread pool, deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(autouse=True)
def _clear_keras_session():
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def deterministic():
    """Op determinism for tests that compare two runs (it also turns XLA off)."""
    import tensorflow as tf
    from tensorflow.python.framework import config

    tf.config.experimental.enable_op_determinism()
    yield
    config.disable_op_determinism()
