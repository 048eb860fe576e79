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


@pytest.fixture(scope="session")
def mirrored_reference(tmp_path_factory):
    """One 2-replica MirroredStrategy run (tests/mirrored_run.py), shared by tests."""
    import json
    import subprocess
    import sys

    npz = str(tmp_path_factory.mktemp("mirrored") / "weights.npz")
    script = os.path.join(os.path.dirname(__file__), "mirrored_run.py")
    env = {**os.environ, "STEPS_PER_EXECUTION": "1", "WEIGHTS_NPZ": npz}
    out = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["weights_npz"] = npz
    return result
