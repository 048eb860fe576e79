"""summary.py: the motivation statistics against counted oracles, old summaries, speed-up, the closing text."""

import itertools
import json
import os

import pytest

from keras_motivation import summary
from keras_motivation import summary_json
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
        share = summary_json.motivated_share(activations)
        assert share == activations.get("motivated_share", activations.get("activation_rate"))
        assert share == pytest.approx(activations["motivated_steps"] / activations["steps"])
    assert summary_json.motivated_share({"noise_activation_rate": 0.5}, "noise_motivated_share") == 0.5
    assert summary_json.motivated_share({"steps": 3}) is None


def test_committed_summaries_are_read_by_model_and_unit():
    """Summaries before schema 2 keep the base's numbers under "final" and the FLOPs under "flops"; the readers
    give them by model, and read schema 2's sections by model too (both kinds are committed)."""
    paths = []
    for dirpath, _, names in os.walk(EXAMPLES):
        paths += [os.path.join(dirpath, n) for n in names if n == "summary.json"]
    olds = []
    for path in paths:
        with open(path) as f:
            committed = json.load(f)
        if "schema" in committed:
            assert committed["schema"] == 2, path
            for model in ("base", "motivated"):
                assert summary_json.accuracy(committed, model) == committed[model]["accuracy"]
                assert summary_json.forward_flops(committed, model) == committed[model]["forward_flops_per_image"]
            assert summary_json.training_flops(committed, "total") == committed["training_flops"]["total"]
        else:
            olds.append(committed)
    assert olds, "no summary from before schema 2 is committed: the reading of the old layout is untested"
    for old in olds:
        assert summary_json.accuracy(old, "base") == old["final"]["accuracy"]
        assert summary_json.accuracy(old, "motivated") == old["final"]["motivated_accuracy"]
        assert summary_json.forward_flops(old, "base") == old["flops"]["base"]
        assert summary_json.forward_flops(old, "motivated") == old["flops"]["motivated"]
        assert summary_json.training_flops(old, "total") == old["flops"]["training_total"]
        assert summary_json.training_flops(old, "average_forward_per_image") == old["flops"]["dual_training_average"]
        entry = summary_json.model_entry(old, "motivated")
        assert entry["loss"] == old["final"]["motivated_loss"]
        assert entry["best_epoch_accuracy"] == old["best"]["motivated_accuracy"]
        assert entry["forward_macs_per_image"] == old["flops"]["motivated_macs"]
    new = {
        "schema": 2,
        "base": {"accuracy": 0.8, "forward_flops_per_image": 10},
        "motivated": {"accuracy": 0.9, "forward_flops_per_image": 20},
        "training_flops": {"total": 5.0},
    }
    assert summary_json.accuracy(new, "motivated") == 0.9 and summary_json.forward_flops(new, "base") == 10
    assert summary_json.training_flops(new) == 5.0 and summary_json.training_flops(new, "motivated_alone") is None


def test_speedup_from_flops_and_wall_clock():
    modes = {
        "motivated": {"seconds": 2.0, "batches": 4, "seconds_per_batch": 0.5},
        "base": {"seconds": 3.0, "batches": 12, "seconds_per_batch": 0.25},
    }
    out = summary.speedup({"flops": {"motivated": 300, "dual_training_average": 150}, "wall_clock_per_mode_s": modes})
    assert out["predicted_from_flops"] == 2.0
    new = {
        "schema": 2,
        "motivated": {"forward_flops_per_image": 300},
        "training_flops": {"average_forward_per_image": 150},
        "wall_clock_per_mode_s": modes,
    }
    assert summary.speedup(new)["predicted_from_flops"] == 2.0
    # The motivated model alone: 16 batches at 0.5 s, against 5 s spent.
    assert out["measured_wall_clock"] == pytest.approx(16 * 0.5 / 5.0)
    never = {"motivated": {"seconds": 0.0, "batches": 0, "seconds_per_batch": None}, "base": modes["base"]}
    assert summary.speedup({"wall_clock_per_mode_s": never}) == {}
    # A ladder: the models between take their time and their steps too (4 more batches, 1 s more).
    ladder = {**modes, "rung1": {"seconds": 1.0, "batches": 4, "seconds_per_batch": 0.25}}
    assert summary.speedup({"wall_clock_per_mode_s": ladder})["measured_wall_clock"] == pytest.approx(20 * 0.5 / 6.0)


def test_a_ladders_closing_lines_say_every_model(tmp_path):
    from keras_motivation import trainer

    config = TrainConfig(workdir=str(tmp_path), pair="resnet8:resnet14:resnet20")
    rung1 = {"architecture": "resnet14", "parameters": 1, "forward_flops_per_image": 1, "accuracy": 0.5}
    text = summary.describe(config, _schema2(pair=config.pair, rung1=rung1))
    assert "forward and backward, every model (" in text and "(every model in one MotivatedModel" in text
    assert [line.split()[0] for line in text.splitlines()[1:4]] == ["base", "rung1", "motivated"]
    assert trainer.resume_line("w", 12, 6, 2, models=3).endswith("evaluating every model again")
    assert trainer.resume_line("w", 12, 6, 2).endswith("evaluating both models again")


def _schema2(**extra):
    return {
        "schema": 2,
        "pair": "resnet8:resnet14",
        "evaluation": {"split": "test", "images": 10000},
        "base": {
            "architecture": "resnet8",
            "parameters": 78042,
            "forward_flops_per_image": 18850716,
            "accuracy": 0.8547,
        },
        "motivated": {
            "architecture": "resnet14",
            "parameters": 175130,
            "forward_flops_per_image": 40637852,
            "accuracy": 0.8557,
        },
        "training_flops": {"total": 4.50e12, "motivated_alone": 7.30e12},
        "activations": {"steps": 468, "motivated_share": 0.2222},
        "wall_clock_s": 221.3,
        "cpu_time_s": 128.8,
        **extra,
    }


def test_describe_puts_both_models_side_by_side_with_units_and_every_file(tmp_path):
    config = TrainConfig(workdir=str(tmp_path))
    lines = summary.describe(config, _schema2()).splitlines()
    # A table: the split and its size in the heading, each model's architecture, parameters, forward MFLOPs.
    head, base, motivated = lines[:3]
    assert head.split() == [
        "model",
        "architecture",
        "parameters",
        "forward",
        "MFLOPs",
        "per",
        "image",
        "accuracy",
        "on",
        "test",
        "(10,000",
        "images)",
    ]
    assert base.split() == ["base", "resnet8", "78,042", "18.85", "85.47%"]
    assert motivated.split() == ["motivated", "resnet14", "175,130", "40.64", "85.57%"]
    assert len({line.index("%") for line in (base, motivated)}) == 1  # the columns line up
    text = "\n".join(lines)
    assert "468 steps, 3 min 41 s of wall-clock (2 min 9 s of CPU time); motivated share 0.222 of the steps" in text
    assert "4.50 TFLOPs forward and backward, both models (the motivated model alone for the same steps: 7.30" in text
    for name in ("summary.json", "history.csv", "batches.csv", "final", "tensorboard"):
        assert os.path.join(str(tmp_path), name) in text
    assert "motivated_model.keras (both models in one MotivatedModel: import keras_motivation first)" in text
    assert "stopped" not in text
    stopped = summary.describe(config, _schema2(stopped="non-finite loss at step 7 (TerminateOnNaN)"))
    assert "stopped:     non-finite loss at step 7 (TerminateOnNaN)" in stopped
    # A summary written before schema 2 gives the same table, from its old keys.
    old = {
        "pair": "resnet8:resnet14",
        "final": {"accuracy": 0.8547, "motivated_accuracy": 0.8557},
        "flops": {"base": 18850716, "motivated": 40637852, "training_total": 4.5e12},
        "activations": {"activation_rate": 0.125, "steps": 8},
    }
    old_lines = summary.describe(config, old).splitlines()
    assert old_lines[0].split()[-3:] == ["accuracy", "on", "test"]  # the config's split; its size unknown
    assert old_lines[1].split() == ["base", "resnet8", "-", "18.85", "85.47%"]
    assert "motivated share 0.125 of the steps" in "\n".join(old_lines)


def test_flops_of_a_joint_run_count_both_models_on_each_motivated_step():
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from testing_utils import tiny_pair

    import keras_motivation as km
    from keras_motivation import flops as flops_lib

    counters = {"steps": 10, "motivated_steps": 4, "switches": 2, "activations": 1, "recalibration_batches": 0}
    out = {}
    # The two-pass joint step; the shared forward's count is the next test's.
    for joint in (None, km.JointStep(shared_forward=False)):
        base, motivated = tiny_pair()
        model = km.MotivatedModel(base, motivated, joint=joint)
        out[joint is not None] = summary.flops_summary(model, counters, batch_size=8)
    fx, fy = (out[False][m]["forward_flops_per_image"] for m in ("base", "motivated"))
    assert out[False]["base"]["forward_macs_per_image"] == fx // 2
    t, joint = out[False]["training_flops"], out[True]["training_flops"]
    assert t["total"] == flops_lib.training_flops(fx, 6 * 8) + flops_lib.training_flops(fy, 4 * 8)
    assert joint["total"] == pytest.approx(t["total"] + 3 * fx * 4 * 8)
    assert joint["average_forward_per_image"] == pytest.approx((6 * fx + 4 * (fx + fy)) / 10)


def test_flops_of_a_shared_forward_joint_run_count_the_bases_tail_on_its_share():
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from testing_utils import tiny_pair

    import keras_motivation as km
    from keras_motivation import flops as flops_lib

    counters = {"steps": 10, "motivated_steps": 4, "switches": 2, "activations": 1, "recalibration_batches": 0}
    base, motivated = tiny_pair()
    model = km.MotivatedModel(base, motivated, joint=km.JointStep(base_share=0.5))
    tail = flops_lib.count_flops(model.shared_forward.tail)
    out = summary.flops_summary(model, counters, batch_size=8)
    fx, fy = (out[m]["forward_flops_per_image"] for m in ("base", "motivated"))
    # The one-stage tiny pair is a prefix pair: the base's tail is its head, a sliver of the base.
    assert 0 < tail < fx / 10
    assert out["training_flops"]["average_forward_per_image"] == pytest.approx((6 * fx + 4 * (fy + 0.5 * tail)) / 10)


def test_recalibration_flops_count_what_each_recomputation_ran():
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import keras
    from testing_utils import random_data
    from testing_utils import tiny_pair

    import keras_motivation as km
    from keras_motivation import flops as flops_lib

    base, motivated = tiny_pair()
    model = km.MotivatedModel(base, motivated, "resnet_depth", km.conditions.Growth(epochs=0.5), joint=True)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    x, y = random_data(128)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    # The end of the fit recomputed both models' statistics in one pass of the motivated model and the base's
    # tail (a prefix pair) from the 8 batches there are: after the last step, so it counts as training.
    counters = model.counters()
    assert counters["recalibration_batches"] == 8
    out = summary.flops_summary(model, counters, batch_size=16)
    fx, fy = (out[m]["forward_flops_per_image"] for m in ("base", "motivated"))
    tail = flops_lib.count_flops(model.shared_forward.tail)
    t = out["training_flops"]
    assert t["recalibration"] == 8 * 16 * (fy + tail) and t["recalibration_for_validation"] == 0
    # Batches counted before this process (a resumed run's) cost every model's pass, and served validation.
    earlier = {**counters, "recalibration_batches": 8 + 5}
    t = summary.flops_summary(model, earlier, batch_size=16)["training_flops"]
    assert t["recalibration"] == 8 * 16 * (fy + tail) and t["recalibration_for_validation"] == 5 * 16 * (fx + fy)
