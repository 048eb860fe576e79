"""MotivatedModel under MirroredStrategy on 2 logical CPU devices."""

import numpy as np
import pytest
from testing_utils import run_json_script


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


# Both tests share the session's reference run: keep them on one xdist worker.
@pytest.mark.xdist_group("mirrored_reference")
def test_mirrored_run_matches_single_device(mirrored_reference):
    _check(mirrored_reference)


@pytest.mark.xdist_group("mirrored_reference")
def test_mirrored_with_steps_per_execution(mirrored_reference, tmp_path):
    npz = str(tmp_path / "weights.npz")
    r = run_json_script("mirrored_run.py", env={"STEPS_PER_EXECUTION": "3", "MIRRORED_ONLY": "1", "WEIGHTS_NPZ": npz})
    # Three steps per call: the same run as one step per call.
    assert r["replicas"] == 2
    assert r["counters_mirrored"] == mirrored_reference["counters_mirrored"]
    a, b = np.load(npz), np.load(mirrored_reference["weights_npz"])
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
