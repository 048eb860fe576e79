"""Shared test set-up: quiet TensorFlow, one thread pool, deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402
from testing_utils import configure_grappler  # noqa: E402

configure_grappler()


@pytest.fixture(autouse=True)
def _clear_keras_session():
    # Without Python's full garbage collection (free_memory=False): it took 1-5 s before every test,
    # growing with the process; the collector still runs on its own.
    keras.utils.clear_session(free_memory=False)
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
    from testing_utils import run_json_script

    npz = str(tmp_path_factory.mktemp("mirrored") / "weights.npz")
    result = run_json_script("mirrored_run.py", env={"STEPS_PER_EXECUTION": "1", "WEIGHTS_NPZ": npz})
    result["weights_npz"] = npz
    return result
