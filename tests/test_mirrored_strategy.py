"""MotivatedModel under MirroredStrategy on 2 logical CPU devices."""

import json
import os
import subprocess
import sys

import numpy as np


def _check(r):
    assert r["replicas"] == 2
    # Same activation sequence, driven by the loss all-reduced across replicas.
    assert r["flags_mirrored"] == r["flags_single"]
    assert any(r["flags_single"]) and not all(r["flags_single"])
    assert r["counters_mirrored"] == r["counters_single"]
    np.testing.assert_allclose(r["losses_mirrored"], r["losses_single"], rtol=1e-3)
    # Weights agree within float tolerance; the scale is plain Keras' own
    # drift between one and two replicas on the same model and data.
    assert r["drift_motivated"] < max(10 * r["drift_plain_keras"], 1e-4), r


def test_mirrored_run_matches_single_device(mirrored_reference):
    _check(mirrored_reference)


def test_mirrored_with_steps_per_execution():
    script = os.path.join(os.path.dirname(__file__), "mirrored_run.py")
    env = {**os.environ, "STEPS_PER_EXECUTION": "3"}
    out = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    _check(json.loads(out.stdout.strip().splitlines()[-1]))
