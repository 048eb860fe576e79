"""tools/bench.py runs end to end and writes its JSON (a smoke test: timings are not asserted)."""

import json
import os
import sys

import pytest
from testing_utils import requires_fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import bench_tables  # noqa: E402


def test_bench_writes_every_measure(tmp_path):
    import bench

    out = tmp_path / "bench.json"
    result = bench.main(
        [
            # Tiny dense models: every variant is traced once, and eight ResNet pairs took a minute.
            "--model=tiny_dense",
            "--image_size=4",
            "--batch_size=8",
            "--steps=4",
            "--repeats=1",
            "--switches=2",
            f"--out={out}",
        ]
    )
    on_disk = json.loads(out.read_text())
    for key in (
        "a_never_vs_plain_base",
        "b_always_vs_plain_motivated",
        "c_switch_one_way_in_base_steps",
        "d_measured_vs_predicted",
        "e_pipeline_vs_base_model",
        "machine",
        "raw_seconds",
    ):
        assert key in on_disk, key
    assert on_disk["d_counts_per_epoch"]["steps"] == 4
    assert on_disk["cpu_time"]["paired"]["f_update_only_vs_plain_base"] > 0
    assert on_disk["cpu_time"]["paired"]["h_recalibrated_vs_private_per_epoch"] > 0
    assert result["a_never_vs_plain_base"] > 0 and result["c_switch_pair_s"] > 0
    # Every kind but the third model's (those need --third).
    assert on_disk["complete"] and on_disk["kinds"] == list(bench.DEFAULT_KINDS)


def test_the_third_models_kinds_need_a_third_model(tmp_path):
    import bench

    with pytest.raises(SystemExit, match="--kinds=plain_third needs --third=NAME"):
        bench.main(["--model=tiny_dense", "--image_size=4", "--batch_size=8", "--steps=2", "--kinds=plain_third"])


def test_bench_times_some_variants_only_and_mixed_precision(tmp_path):
    import bench
    import keras

    out = tmp_path / "bench.json"
    bench.main(
        [
            "--model=tiny_dense",
            "--image_size=4",
            "--batch_size=8",
            "--steps=3",
            "--repeats=1",
            "--switches=1",
            "--kinds=recalibrated,condition",
            "--settings=default:1,default:2",
            "--mixed_precision",
            f"--out={out}",
        ]
    )
    assert keras.mixed_precision.global_policy().name == "float32"  # as it was
    on_disk = json.loads(out.read_text())
    assert on_disk["complete"] and list(on_disk["settings"]) == ["default:1", "default:2"]
    one = on_disk["settings"]["default:1"]
    assert one["kinds"] == ["condition", "recalibrated"] and one["precision"] == "mixed_float16"
    assert set(one["cpu_time"]["paired"]) == {
        "h_recalibrated_vs_private_per_epoch",
        "h_recalibrated_vs_private_per_fit",
    }
    assert "a_never_vs_plain_base" not in one and "e_pipeline_vs_base_model" not in one
    assert one["d_counts_per_epoch"]["steps"] == 3
    # The table shows the measures taken, and no column of those not taken.
    head = bench.main(["--table", str(out)]).splitlines()[0]
    assert "default BatchNorm option / private, per epoch" in head and "`Never` / plain" not in head
    with pytest.raises(SystemExit, match="--kinds: unknown"):
        bench.main(["--kinds=never,nope"])


def _fake_result(scale=1.0):
    """One setting's result from made-up epoch times (two repeats), through bench's own computation."""
    import bench

    times = {k: [scale * (i + 1), scale * (i + 1.5)] for i, k in enumerate(bench.KINDS)}
    # The epochs alone: a tenth less than the one-epoch fits.
    times.update({k + bench_tables.IN_EPOCH: [0.9 * t for t in times[k]] for k in bench.KINDS})
    count = {"steps": 10, "motivated_steps": 4, "switches": 2, "activations": 1}
    clock = bench_tables.clock_results(times, [0.1, 0.3], count, steps=10, images=80)
    return {
        **clock,
        "cpu_time": clock,
        "d_counts_per_epoch": count,
        "e_pipeline_images_per_s": 500.0,
        "e_pipeline_vs_base_model": 12.5,
        "args": {"model": "tiny_dense", "strategy": "default", "steps_per_execution": 1},
    }


def test_every_measure_is_computed_where_the_renderers_read_it():
    import statistics

    import bench

    r = _fake_result()
    clock = bench_tables.clock_results(
        {k + suffix: [1.0, 2.0] for k in bench.KINDS for suffix in ("", bench_tables.IN_EPOCH)},
        [0.1],
        {"steps": 2, "motivated_steps": 1, "switches": 1},
        2,
        16,
    )
    # Per clock: the ratios of medians (and times) at the top level, the paired ratios under "paired";
    # the run's figures ((e)) are not a clock's.
    assert [k for k in clock if k not in ("images_per_s", "ms_per_step", "paired")] == [
        m.key for m in bench_tables.MEASURES if m.per_clock and m.median
    ]
    assert list(clock["paired"]) == [m.key for m in bench_tables.MEASURES if m.paired]
    assert not any(m.key in clock for m in bench_tables.MEASURES if not m.per_clock)
    # The figures against the rules written out: medians of plain_base 1.25, never 2.25, always 4.25, ...
    med = {k: statistics.median(v) for k, v in zip(bench.KINDS, ([i + 1, i + 1.5] for i in range(len(bench.KINDS))))}
    assert r["a_never_vs_plain_base"] == med["never"] / med["plain_base"]
    assert r["c_switch_one_way_in_base_steps"] == 0.2 / 2 / (med["never"] / 10)
    predicted = 6 * med["never"] / 10 + 4 * med["always"] / 10 + 2 * 0.2 / 2
    assert r["d_predicted_epoch_s"] == predicted and r["d_measured_vs_predicted"] == med["condition"] / predicted
    as_plain = [(6 * b + 4 * m) / 10 for b, m in ((1, 3), (1.5, 3.5))]
    assert r["paired"]["d_condition_vs_plain_steps"] == statistics.median(c / p for c, p in zip((5, 5.5), as_plain))
    assert "f_update_only_vs_plain_base" not in r  # paired only
    assert r["paired"]["f_update_only_vs_plain_base"] == statistics.median((6 / 1, 6.5 / 1.5))
    # (g): the joint epoch (7, 7.5) against the sum of the two plain fits' epochs ((1 + 3), (1.5 + 3.5)).
    assert r["paired"]["g_joint_vs_plain_both"] == statistics.median((7 / 4, 7.5 / 5))
    # (h): the recalibrated epochs (8, 8.5) against the private condition's (5, 5.5), alone and as fits.
    assert r["paired"]["h_recalibrated_vs_private_per_fit"] == statistics.median((8 / 5, 8.5 / 5.5))
    assert r["paired"]["h_recalibrated_vs_private_per_epoch"] == pytest.approx(statistics.median((8 / 5, 8.5 / 5.5)))
    assert r["h_recalibrated_vs_private_per_epoch"] == pytest.approx(med["recalibrated"] / med["condition"])
    assert set(r["ms_per_step"]) == set(bench.KINDS)  # the fits' times; the epochs alone are not a kind


def test_renderers_read_the_table_of_measures():
    text = bench_tables.markdown(_fake_result())
    for m in bench_tables.MEASURES:
        if m.label:
            assert f"| {m.label} |" in text, m.key
    assert "| (f) k-condition's update alone, no switch / plain fit of the base | 5.167 | 5.167 |" in text
    for table, columns in (
        (bench_tables.range_table([_fake_result(), _fake_result(2.0)]), bench_tables.TABLE_COLUMNS),
        (bench_tables.summary_markdown({"default:1": _fake_result()}), bench_tables.SUMMARY_COLUMNS),
    ):
        head, rule, row = table.splitlines()
        assert head.count("|") == rule.count("|") == row.count("|"), table
        assert all(f"| {c.header} |" in head for c in columns)
    # The range over two runs; a run from before (f) leaves its cell empty, and a table of runs that all
    # lack it has no such column.
    old = _fake_result()
    del old["cpu_time"]["paired"]["f_update_only_vs_plain_base"]
    row = bench_tables.range_table([old, _fake_result()]).splitlines()[2].split(" | ")
    assert (
        row[[c.header for c in bench_tables.TABLE_COLUMNS].index("its update alone, no switch / plain base") + 2] == ""
    )
    assert "its update alone" not in bench_tables.range_table([old]).splitlines()[0]
    cells = bench_tables.range_table([_fake_result(), _fake_result(2.0)]).splitlines()[2].split(" | ")
    assert cells[1:4] == ["2", "125-250", "225-450"]  # runs, then ms/step of the plain base and of Never


def test_bench_builds_registry_pairs_with_their_model_arguments():
    import bench

    args = bench.parse_args(["--pair=vit_tiny_d2:vit_tiny_d4", "--patch_size=7", "--image_size=28", "--channels=1"])
    assert bench.model_kwargs(args) == {"patch_size": 7}
    model = bench.build(args, "joint")
    # The ViT depth pair at patch 7: 16 tokens, and the joint step's one forward pass.
    assert model.motivated.input_shape == (None, 28, 28, 1) and model.shared_forward is not None
    assert bench.model_kwargs(bench.parse_args(["--width=8"])) == {"width": 8}


# -- whole runs (tools/bench_run.py, `bench.py whole_run`) -------------------------------------------------------


def _whole_run_result(alone="largest"):
    """A whole-run result as bench_run writes it: 3 repeats, the trainer and each reference network."""
    arms = {"trainer": ([110.0, 100.0, 130.0], [150.0, 140.0, 160.0])}
    arms["plain:resnet8p14"] = ([100.0, 120.0, 100.0], [150.0, 150.0, 150.0])
    if alone == "all":
        arms["plain:resnet8"] = ([50.0, 50.0, 50.0], [60.0, 60.0, 60.0])
    breakdown = {
        "wall_clock_s": {"train_steps": 80.0, "validation": 10.0, "finish": 2.0, "total": 100.0},
        "cpu_time_s": {"train_steps": 120.0, "validation": 15.0, "finish": 3.0, "total": 140.0},
    }
    reported = {
        "accuracy": 0.9,
        "time_breakdown": breakdown,
        "training_flops": {"total": 9.0, "motivated_alone": 10.0, "recalibration_for_validation": 0.5},
        "forward_flops": {"base": 20.0, "motivated": 40.0},
    }
    return {
        "args": {"pair": "resnet8:resnet8p14", "epochs": 3, "alone": alone},
        "arms": {k: {"wall_s": w, "cpu_s": c, "reported": [reported] * 3} for k, (w, c) in arms.items()},
        "load": [{"order": list(arms), "before": [1.0, 1.0, 1.0], "after": [2.5, 1.0, 1.0]}] * 3,
    }


def test_whole_run_ratios_are_paired_per_repeat_with_their_range():
    import bench_run

    r = _whole_run_result()
    ratios = bench_run.ratios(r)
    assert ratios["wall_s"]["each"] == [1.1, 100 / 120, 1.3]
    assert ratios["wall_s"]["median"] == 1.1 and ratios["wall_s"]["min"] == 100 / 120
    assert ratios["cpu_s"]["median"] == 1.0 and ratios["cpu_s"]["max"] == 160 / 150
    # Against every network trained alone: the sum of their plain fits.
    both = bench_run.ratios(_whole_run_result("all"))
    assert both["cpu_s"]["each"] == [150 / 210, 140 / 210, 160 / 210]
    # Training FLOPs with the recomputation for validation, against the networks alone for the same steps.
    assert bench_run.flops_ratio(r) == pytest.approx(9.5 / 10.0)
    assert bench_run.flops_ratio(_whole_run_result("all")) == pytest.approx(9.5 / 15.0)


def test_whole_run_table_prints_from_json(tmp_path):
    import bench
    import bench_run

    r = _whole_run_result()
    r["ratios"], r["training_flops_ratio"] = bench_run.ratios(r), bench_run.flops_ratio(r)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(r))
    table = bench.main(["whole_run", "--table", str(path)])
    lines = table.splitlines()
    assert lines[0] == "| resnet8:resnet8p14, 3 epochs | trainer | resnet8p14 plain `fit` | trainer / plain |"
    assert "| CPU s, process | 150 | 150 | 1.00 (0.93-1.07) |" in lines
    assert "| wall-clock s, process | 110 | 100 | 1.10 (0.83-1.30) |" in lines
    assert "| load average (1 min) | 1.0-2.5 |  |  |" in lines
    assert "| CPU s: train steps | 120.0 | 120.0 |  |" in lines
    assert "| CPU s: before and after the run | 10.0 | 10.0 |  |" in lines


def test_whole_run_arms_run_the_trainer_and_plain_fits(tmp_path):
    import bench_run

    args = bench_run.parse_args(["--pair=resnet8:resnet8p14:resnet8p20", "--learning_rate=0.05", "--alone=all"])
    commands = bench_run.arms(args)
    assert list(commands) == ["trainer", "plain:resnet8", "plain:resnet8p14", "plain:resnet8p20"]
    assert commands["trainer"][1:3] == ["-m", "keras_motivation.train"]
    assert "--learning_rate=0.05" in commands["trainer"] and "--epochs=3" in commands["plain:resnet8p20"]
    assert commands["plain:resnet8p20"][2:4] == ["plain_fit", "resnet8p20"]
    assert list(bench_run.arms(bench_run.parse_args([]))) == ["trainer", "plain:resnet8p14"]


@requires_fashion_mnist
def test_the_plain_fit_trains_the_network_alone_with_the_trainers_data_and_recipe(tmp_path):
    import bench_run

    flags = ["--flagfile=configs/quickstart.flags", "--pair=resnet8:resnet8p14", "--epochs=1", "--train_size=256"]
    flags += ["--eval_size=128", "--batch_size=64", "--model_kwargs=width=4", f"--workdir={tmp_path}"]
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        bench_run.plain_fit("resnet8p14", flags)
    finally:
        os.chdir(cwd)
    out = json.loads((tmp_path / "plain.json").read_text())
    assert out["network"] == "resnet8p14" and out["steps"] == 4 and 0 <= out["accuracy"] <= 1
    phases = out["time_breakdown"]["cpu_time_s"]
    assert phases["train_steps"] > 0 and phases["validation"] > 0 and phases["statistics"] == 0
    assert out["time_breakdown"]["steps"] == 4
