"""summary.py: the motivation statistics against counted oracles, old summaries, speed-up, the closing text."""

import itertools
import json
import os

import pytest

from keras_motivation import summary
from keras_motivation.config import TrainConfig

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "examples")


def _share_of_permutations(k, triggers):
    """Exact probability, counted over every order of the k+2 distinct i.i.d. losses before a batch:
    motivated when the last k+1 fell strictly; a trigger when the streak did not already hold one
    batch earlier (the first k+1 did not fall strictly)."""
    hits = total = 0
    for order in itertools.permutations(range(k + 2)):
        total += 1
        last = order[1:]
        streak = all(a > b for a, b in zip(last, last[1:]))
        earlier = all(a > b for a, b in zip(order[:-1], order[1:-1]))
        hits += streak and (not earlier if triggers else True)
    return hits / total


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_noise_levels_match_counting_every_order(k):
    assert summary.noise_motivated_share(k) == pytest.approx(_share_of_permutations(k, triggers=False))
    assert summary.noise_triggers_per_step(k) == pytest.approx(_share_of_permutations(k, triggers=True))


def test_motivation_statistics_from_counters():
    counters = {"steps": 40, "motivated_steps": 10, "switches": 8, "activations": 4}
    stats = summary.motivation_statistics(counters, "consecutive", 2)
    assert stats["motivated_share"] == 0.25
    assert stats["triggers_per_step"] == 0.1
    assert stats["mean_activation_length"] == 2.5
    assert stats["noise_motivated_share"] == pytest.approx(1 / 6)
    assert {k: stats[k] for k in counters} == counters
    # The noise level is the consecutive condition's only; no step gives a share of 0.
    other = summary.motivation_statistics({**counters, "steps": 0, "motivated_steps": 0, "activations": 0}, "ema", 2)
    assert other["motivated_share"] == 0 and other["mean_activation_length"] == 0
    assert "noise_motivated_share" not in other and "activation_rate" not in other


def test_committed_summaries_are_read_under_the_old_names():
    paths = []
    for dirpath, _, names in os.walk(EXAMPLES):
        paths += [os.path.join(dirpath, n) for n in names if n == "summary.json"]
    assert paths
    for path in paths:
        with open(path) as f:
            activations = json.load(f)["activations"]
        share = summary.motivated_share(activations)
        assert share == activations.get("motivated_share", activations.get("activation_rate"))
        assert share == pytest.approx(activations["motivated_steps"] / activations["steps"])
    assert summary.motivated_share({"noise_activation_rate": 0.5}, "noise_motivated_share") == 0.5
    assert summary.motivated_share({"steps": 3}) is None


def test_speedup_from_flops_and_wall_clock():
    modes = {
        "motivated": {"seconds": 2.0, "batches": 4, "seconds_per_batch": 0.5},
        "base": {"seconds": 3.0, "batches": 12, "seconds_per_batch": 0.25},
    }
    out = summary.speedup({"flops": {"motivated": 300, "dual_training_average": 150}, "wall_clock_per_mode_s": modes})
    assert out["predicted_from_flops"] == 2.0
    # The motivated model alone: 16 batches at 0.5 s, against 5 s spent.
    assert out["measured_wall_clock"] == pytest.approx(16 * 0.5 / 5.0)
    never = {"motivated": {"seconds": 0.0, "batches": 0, "seconds_per_batch": None}, "base": modes["base"]}
    assert summary.speedup({"wall_clock_per_mode_s": never}) == {}


def test_describe_names_the_share_and_every_file(tmp_path):
    config = TrainConfig(workdir=str(tmp_path))
    text = summary.describe(
        config, {"final": {"accuracy": 0.8, "motivated_accuracy": 0.85}, "activations": {"motivated_share": 0.125}}
    )
    assert "base accuracy 0.8000, motivated accuracy 0.8500" in text
    assert "motivated share 0.125 of the steps" in text
    for name in ("summary.json", "history.csv", "batches.csv", "final", "tensorboard"):
        assert os.path.join(str(tmp_path), name) in text
    # An old summary gives the same line.
    old = summary.describe(config, {"final": {}, "activations": {"activation_rate": 0.125}})
    assert "motivated share 0.125 of the steps" in old


def test_flops_of_a_joint_run_count_both_models_on_each_motivated_step():
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from testing_utils import tiny_pair

    import keras_motivation as km
    from keras_motivation import flops as flops_lib

    counters = {"steps": 10, "motivated_steps": 4, "switches": 2, "activations": 1, "recalibration_batches": 0}
    out = {}
    for joint in (None, km.JointStep()):
        base, motivated = tiny_pair()
        model = km.MotivatedModel(base, motivated, joint=joint)
        out[joint is not None] = summary.flops_summary(model, counters, batch_size=8)["flops"]
    fx, fy = out[False]["base"], out[False]["motivated"]
    assert out[False]["training_total"] == flops_lib.training_flops(fx, 6 * 8) + flops_lib.training_flops(fy, 4 * 8)
    assert out[True]["training_total"] == pytest.approx(out[False]["training_total"] + 3 * fx * 4 * 8)
    assert out[True]["dual_training_average"] == pytest.approx((6 * fx + 4 * (fx + fy)) / 10)
