"""The trainer's console: no TensorFlow start-up noise, progress per epoch, the final lines."""

import os
import subprocess

from testing_utils import quickstart_command
from testing_utils import repository_env
from testing_utils import requires_fashion_mnist

NOISE = (
    "absl::InitializeLog",
    "port.cc",
    "oneDNN",
    "cpu_feature_guard",
    "To enable the following instructions",
    "devices.cc",
    "single_machine.cc",
    "deprecat",
    "Instructions for updating",
)


def trainer(args, workdir, env_extra=None, timeout=600):
    """`python -m keras_motivation.train ...` as a user types it (no TF_CPP_MIN_LOG_LEVEL of ours)."""
    env = repository_env({k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    env.update(env_extra or {})
    return subprocess.run(
        quickstart_command(workdir, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(workdir.parent),
    )


@requires_fashion_mnist
def test_trainer_console_is_clean_with_progress_and_final_lines(tmp_path):
    out = trainer([], tmp_path / "run")
    assert out.returncode == 0, out.stderr[-3000:]
    console = out.stdout + out.stderr
    for noise in NOISE:
        assert noise not in console, (noise, console[-3000:])
    lines = out.stdout.splitlines()
    # Not a terminal: one progress line per epoch (Keras verbose=2).
    assert sum("val_motivated_accuracy" in line for line in lines) == 2, out.stdout
    # The closing lines: both models side by side (the split and its size named), what the run cost, the files.
    head, base, motivated, training, compute = lines[-10:-5]
    assert head.split()[:3] == ["model", "architecture", "parameters"]
    assert head.endswith("accuracy on test (128 images)")
    assert base.split()[:2] == ["base", "resnet8"] and motivated.split()[:2] == ["motivated", "resnet14"]
    assert base.endswith("%") and motivated.endswith("%")
    assert training.startswith("training:    8 steps, ") and "motivated share" in training
    assert compute.startswith("compute:     ") and "FLOPs forward and backward" in compute
    assert lines[-5] == f"summary:     {tmp_path / 'run' / 'summary.json'}"
    assert lines[-3].startswith("models:      ") and lines[-3].endswith(
        "base.keras, motivated.keras (keras.models.load_model)"
    )
    assert "motivated_model.keras" in lines[-2] and lines[-1].startswith("tensorboard: ")


def test_the_users_own_log_level_wins(tmp_path):
    # Stops after TensorFlow's import (an unknown pair): the start-up lines show
    # when the user asks for every log.
    out = trainer(["--pair=nope:nope"], tmp_path / "run", env_extra={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert out.returncode == 1
    # TensorFlow's start-up lines: which ones depends on the CPU (oneDNN's line only where it is on; the
    # CPU feature guard's where the binary could use more instructions); every one is an absl-logged I/W line.
    assert "oneDNN custom operations" in out.stderr or "cpu_feature_guard" in out.stderr, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1].startswith("error: Unknown --pair 'nope:nope'")
    quiet = trainer(["--pair=nope:nope"], tmp_path / "run")
    assert quiet.stderr.strip().splitlines() == [quiet.stderr.strip().splitlines()[-1]], quiet.stderr
