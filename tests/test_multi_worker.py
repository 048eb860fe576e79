"""MotivatedModel.fit under MultiWorkerMirroredStrategy: 2 worker processes on loopback.

Plain Keras 3.15 fit fails under this strategy before the first step
(keras-team/keras#20585); MotivatedModel builds its state up front from one
replica's shard and owns its train function, so it runs.
"""

import json
import os
import signal
import sys

import keras
import numpy as np
import pytest
from testing_utils import csv_rows
from testing_utils import requires_fashion_mnist

from keras_motivation import preemption

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(os.path.dirname(HERE), "configs")


def _launch(script, args, envs, timeout=600):
    """len(envs) workers of tests/<script> on loopback, started by tools/launch_local_cluster.py's
    functions: [(return code, the last JSON line of the output, or the output's end on failure)]."""
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
    import launch_local_cluster

    procs = launch_local_cluster.start_workers([sys.executable, os.path.join(HERE, script), *args], len(envs), env=envs)
    results = launch_local_cluster.wait(procs, timeout=timeout, echo=False)
    # stderr is merged into the output: TensorFlow may log after the JSON line.
    return [
        (rc, [line for line in out.splitlines() if line.startswith("{")][-1] if rc == 0 else out[-3000:])
        for rc, out in results
    ]


def _run_workers(tmp_path, n=2, **env):
    envs = [{"WEIGHTS_NPZ": str(tmp_path / f"worker{i}.npz"), **env} for i in range(n)]
    results = _launch("multi_worker_run.py", [], envs)
    assert [rc for rc, _ in results] == [0] * n, results
    return [json.loads(line) for _, line in results]


@pytest.mark.xdist_group("mirrored_reference")
def test_two_workers_agree_and_match_mirrored(tmp_path, mirrored_reference):
    w0, w1 = _run_workers(tmp_path)
    assert w0["replicas"] == w1["replicas"] == 2
    # Every worker took the same branch at every step and made the same copies.
    assert w0["flags"] == w1["flags"]
    assert any(w0["flags"]) and not all(w0["flags"])
    assert w0["counters"] == w1["counters"]
    assert w0["digest"] == w1["digest"], "final weights differ between workers"
    # And they match a single-process 2-replica MirroredStrategy run of the
    # same model and data within plain Keras' own one-vs-two-replica drift.
    ref = mirrored_reference
    assert w0["flags"] == ref["flags_mirrored"]
    assert w0["counters"] == ref["counters_mirrored"]
    a = np.load(tmp_path / "worker0.npz")
    b = np.load(ref["weights_npz"])
    drift = max(float(np.max(np.abs(a[k] - b[k])) / (np.max(np.abs(b[k])) + 1e-12)) for k in a.files)
    assert drift < max(10 * ref["drift_plain_keras"], 1e-4), drift


# Slow (two worker processes, ~40 s): the joint step's exactness is in test_joint.py.
@pytest.mark.slow
def test_two_workers_agree_bit_for_bit_on_joint_steps(tmp_path):
    w0, w1 = _run_workers(tmp_path, JOINT="1")
    assert w0["replicas"] == w1["replicas"] == 2
    assert w0["flags"] == w1["flags"]
    assert any(w0["flags"]) and not all(w0["flags"])
    assert w0["counters"] == w1["counters"]
    assert w0["digest"] == w1["digest"], "final weights differ between workers"


# Slow (two worker processes, ~40 s).
@pytest.mark.slow
def test_two_workers_agree_bit_for_bit_on_a_ladder(tmp_path):
    w0, w1 = _run_workers(tmp_path, LADDER="1", JOINT="1")
    assert w0["replicas"] == w1["replicas"] == 2
    assert w0["flags"] == w1["flags"] and len(set(w0["flags"])) == 3
    assert w0["counters"] == w1["counters"]
    assert w0["digest"] == w1["digest"], "final weights differ between workers"


def _trainer_envs(tmp_path, tag, extra=({}, {})):
    """The environments of the trainer's 2 workers on loopback, each with its own TMPDIR (and `extra`)."""
    envs = []
    for i in range(2):
        tmpdir = tmp_path / f"{tag}_tmp{i}"
        tmpdir.mkdir()
        envs.append({"TMPDIR": str(tmpdir), **extra[i]})
    return envs


def _launch_trainer(workdir, tmp_path, tag, kill_after=None):
    """The trainer as 2 workers on loopback, each with its own TMPDIR."""
    extra = {"KILL_AFTER_EPOCH": str(kill_after)} if kill_after is not None else {}
    return _launch("trainer_worker_run.py", [CONFIGS, str(workdir)], _trainer_envs(tmp_path, tag, (extra, extra)))


def _motivated_flags(workdir):
    return [(int(r["step"]), r["motivated"]) for r in csv_rows(os.path.join(workdir, "batches.csv"))]


# Slow (six trainer processes, 90 s): by default test_two_workers_agree_and_match_mirrored covers
# multi-worker training, test_killed_mid_epoch_resumes_to_the_same_run resumption.
@pytest.mark.slow
@requires_fashion_mnist
def test_trainer_on_two_workers_writes_once_and_survives_losing_both(tmp_path):
    # Uninterrupted: 2 epochs.
    full = tmp_path / "full"
    results = _launch_trainer(full, tmp_path, "full")
    assert [rc for rc, _ in results] == [0, 0], results
    chief, other = (json.loads(line) for _, line in results)
    assert chief["replicas"] == other["replicas"] == 2
    assert chief["activations"] == other["activations"]
    # Only the chief wrote: one row per step in the shared logs, and the other
    # worker's temporary directory is gone.
    reference = _motivated_flags(full)
    assert [s for s, _ in reference] == list(range(1, chief["activations"]["steps"] + 1))
    assert os.path.exists(full / "summary.json") and os.path.exists(full / "final" / "base.keras")
    assert os.listdir(tmp_path / "full_tmp1") == []

    # Both workers die right after the first epoch's backup, and restart.
    resumed = tmp_path / "resumed"
    killed = _launch_trainer(resumed, tmp_path, "killed", kill_after=1)
    assert [rc for rc, _ in killed] == [17, 17], killed
    with open(resumed / "backup" / "state.json") as f:
        assert json.load(f)["epoch"] == 1
    assert not os.path.exists(resumed / "summary.json")
    results = _launch_trainer(resumed, tmp_path, "restarted")
    assert [rc for rc, _ in results] == [0, 0], results
    assert _motivated_flags(resumed) == reference
    assert json.loads(results[0][1])["activations"] == chief["activations"]


# Slow (six trainer processes): by default test_trainer.py's SIGTERM tests cover the stop on one process.
@pytest.mark.slow
@requires_fashion_mnist
def test_sigterm_to_one_worker_stops_both_at_one_step_and_the_rerun_is_the_uninterrupted_run(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
    import launch_local_cluster

    full = tmp_path / "full"
    results = _launch_trainer(full, tmp_path, "full")
    assert [rc for rc, _ in results] == [0, 0], results

    # SIGTERM to the worker that is not the chief, as a preempted VM of a pod gets it, during step 11.
    resumed = tmp_path / "resumed"
    envs = _trainer_envs(tmp_path, "preempted", ({}, {"PAUSE_AT_STEP": "11"}))
    script = os.path.join(HERE, "trainer_worker_run.py")
    procs = launch_local_cluster.start_workers([sys.executable, script, CONFIGS, str(resumed)], 2, env=envs)
    try:
        for line in procs[1].stdout:
            if line.strip() == "paused at step 11":
                break
        else:
            raise AssertionError(f"worker 1 ended with {procs[1].wait()} before step 11")
        procs[1].send_signal(signal.SIGTERM)
    finally:
        results = launch_local_cluster.wait(procs, timeout=600, echo=False)
    assert [rc for rc, _ in results] == [preemption.EXIT_CODE] * 2, results
    line = f"preempted: saved the run at step 11 of epoch 2 in {resumed}; rerun the same command to resume"
    assert all(line in out.splitlines() for _, out in results), results
    # Both stopped at step 11; the chief wrote the backup and the logs up to it.
    with open(resumed / "backup" / "state.json") as f:
        assert json.load(f)["steps"] == 11
    assert [s for s, _ in _motivated_flags(resumed)] == list(range(1, 12))
    assert not os.path.exists(resumed / "summary.json")

    results = _launch_trainer(resumed, tmp_path, "rerun")
    assert [rc for rc, _ in results] == [0, 0], results
    assert _motivated_flags(resumed) == _motivated_flags(full)
    a = keras.models.load_model(full / "final" / "motivated_model.keras")
    b = keras.models.load_model(resumed / "final" / "motivated_model.keras")
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6, err_msg=x.path)
