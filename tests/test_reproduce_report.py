"""The does-it-pay study reduced, from tools/pay_study.py through tools/report.py, on real data."""

import json
import os
import shutil
import sys

import numpy as np
import pytest
from testing_utils import TINY_MODEL_FLAG
from testing_utils import csv_rows
from testing_utils import requires_fashion_mnist
from testing_utils import tiny_model

from keras_motivation import weights_map as weights_map_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))


def _json(path):
    with open(path) as f:
        return json.load(f)


def _text(path):
    with open(path) as f:
        return f.read()


EXTRA = ["--train_size=256", "--batch_size=32", "--eval_size=128", TINY_MODEL_FLAG]


@requires_fashion_mnist
@pytest.mark.parametrize(
    "seeds, policy_names",
    [
        # One seed, the X-Y policy and its matched ExpB: 4 runs. Slow (4 trainer runs, 60 s):
        # by default test_readme_numbers.py rebuilds the report from the committed study.
        pytest.param((0,), ("k2-id-recalibrated", "ExpB:k2-id-recalibrated"), marks=pytest.mark.slow),
        # Means over seeds and a share schedule's label too: 10 runs.
        pytest.param((0, 1), ("k2-id-recalibrated", "ExpB:k2-id-recalibrated", "ramp-id"), marks=pytest.mark.slow),
    ],
    ids=["one_seed", "two_seeds"],
)
def test_reduced_study_and_report(tmp_path, seeds, policy_names):
    import pay_study
    import report

    out = tmp_path / "runs"
    policies = {name: pay_study.POLICIES[name] for name in policy_names}
    kwargs = dict(
        seeds=seeds, groups=("front", "policies"), front_epochs=(1,), dual_epochs=1, extra=EXTRA, policies=policies
    )
    done = pay_study.run(str(out), **kwargs)
    n = len(seeds)
    assert len(done) == n * (2 + len(policies))
    # Resumable: a second call finds every run finished and trains nothing.
    assert pay_study.run(str(out), **kwargs, log=lambda line: pytest.fail(f"trained again: {line}")) == done
    runs = out / "ep1"
    xy = [_json(runs / "k2-id-recalibrated" / f"seed{s}" / "summary.json") for s in seeds]
    expb = _json(runs / "ExpB:k2-id-recalibrated" / "seed0" / "config.json")
    per_epoch = max(1, round(sum(s["activations"]["motivated_steps"] for s in xy) / n))
    assert expb["condition"] == f"matched_random:per_epoch={per_epoch}"  # drawn from --seed
    assert (expb["differential_init"], expb["bn_statistics"]) == ("identity", "recalibrated")
    assert xy[0]["bn_statistics"] == "recalibrated" and set(xy[0]["statistics_check"]) == {
        "batches",
        "base",
        "motivated",
    }

    rows = report.write_report([str(out)], str(tmp_path / "report"))
    table = _text(tmp_path / "report" / "results.md")
    for name in (
        "ResNet-8-C",
        "ResNet-8-ResNet-14-B k=2 (identity, recalibrated)",
        "ResNet-14-C",
        "ExpB",
        *(["share 0.2→0.5→0.8"] if "ramp-id" in policies else []),
    ):
        assert name in table, name
    # The report's numbers are read back from the run directories.
    by_model = {r["model"]: r for r in rows}
    xc = [_json(runs / "X-C" / f"seed{s}" / "summary.json")["base"]["accuracy"] * 100 for s in seeds]
    assert by_model["ResNet-8-C"]["accuracy_mean"] == pytest.approx(sum(xc) / n)
    assert by_model["ResNet-8-C"]["seeds"] == n
    assert len(csv_rows(tmp_path / "report" / "results.csv")) == len(rows)
    # Does it pay: one row per dual policy, against the classical front.
    pays = _json(tmp_path / "report" / "pays.json")
    assert [p[0] for p in pays["front"]["base"]] == [1] and [p[0] for p in pays["front"]["motivated"]] == [1]
    policies = {r["policy"]: r for r in pays["policies"]}
    assert len(policies) == len(policy_names)
    k2 = policies["X-Y k=2 (identity, recalibrated)"]
    assert k2["training_tflops"] * 1e12 == pytest.approx(sum(s["training_flops"]["total"] for s in xy) / n)
    assert k2["pays"] == (k2["separate_tflops"] > k2["training_tflops"]) or k2["pays"] is None
    assert "| pays |" in _text(tmp_path / "report" / "pays.md")
    # Each model against its network trained alone for the same epochs (the front's runs, read back).
    yc = [_json(runs / "Y-C" / f"seed{s}" / "summary.json")["motivated"]["accuracy"] * 100 for s in seeds]
    assert k2["base_minus_x_c"] == pytest.approx(k2["base_mean"] - sum(xc) / n)
    assert k2["motivated_minus_y_c"] == pytest.approx(k2["motivated_mean"] - sum(yc) / n)
    assert "| base − X-C | motivated − Y-C |" in _text(tmp_path / "report" / "pays.md")
    # BatchNorm statistics as saved against recomputed, per dual arm.
    checks = {r["arm"]: r for r in _json(tmp_path / "report" / "statistics.json")}
    assert checks[k2["policy"]]["base_as_saved"] == pytest.approx(
        sum(100 * s["statistics_check"]["base"]["as_saved"] for s in xy) / n
    )
    for png in ("dynamics.png", "accuracy_vs_flops.png", "accuracy_vs_compute.png"):
        assert os.path.getsize(tmp_path / "report" / png) > 10_000


def test_front_interpolation_and_the_pay_rule():
    import pay_rule  # the rule, moved from report.py
    from pay_rule import FrontPoint

    # (epochs, compute, accuracy mean, sd, cpu, seeds)
    front = {
        "base": [
            FrontPoint(*p) for p in [(1, 1.0, 70.0, 0.5, 1, 3), (2, 2.0, 80.0, 0.5, 1, 3), (3, 3.0, 78.0, 0.5, 1, 3)]
        ],
        "motivated": [FrontPoint(*p) for p in [(1, 2.0, 75.0, 0.5, 1, 3), (2, 4.0, 85.0, 0.5, 1, 3)]],
    }
    assert pay_rule.reach(front["base"], 0.5) == pytest.approx(40.0)  # from chance (10%) at zero compute
    assert pay_rule.reach(front["base"], 1.5) == pytest.approx(75.0)
    assert pay_rule.reach(front["base"], 3.0) == pytest.approx(80.0)  # the best reachable, not the last point
    assert pay_rule.compute_to_reach(front["base"], 75.0) == pytest.approx(1.5)
    assert pay_rule.compute_to_reach(front["base"], 81.0) is None
    # Base 75% costs X-C 1.5; motivated 80% costs Y-C 3.0: separately 4.5.
    verdict = pay_rule.verdict(front, 4.0, 75.0, 80.0, 10.0)
    assert verdict["separate_compute"] == pytest.approx(4.5) and verdict["pays"] is True
    assert verdict["y_with_rest"] == pytest.approx(pay_rule.reach(front["motivated"], 2.5))
    assert pay_rule.verdict(front, 5.0, 75.0, 80.0, 10.0)["pays"] is False
    # Beyond the front the separate cost is a lower bound: it proves only a yes.
    assert pay_rule.verdict(front, 10.0, 75.0, 90.0, 10.0)["pays"] is None
    assert pay_rule.verdict(front, 4.0, 75.0, 90.0, 10.0)["pays"] is True


def test_small_model_free_within_the_tolerance_of_x_c():
    import pay_rule
    from pay_rule import FrontPoint

    xc = FrontPoint(epochs=2, compute=2.0, accuracy=80.0, sd=0.5, cpu_s=1, seeds=3)
    assert pay_rule.SMALL_MODEL_TOLERANCE == 0.3
    # The motivated model at least Y-C with all the compute (85), the base at most 0.3 points below X-C.
    assert pay_rule.small_model_free(79.75, 0.0, 85.0, 0.0, 85.0, xc) == (True, False)
    assert pay_rule.small_model_free(79.6, 0.0, 85.0, 0.0, 85.0, xc) == (False, False)
    assert pay_rule.small_model_free(80.0, 0.0, 84.9, 0.0, 85.0, xc) == (False, False)
    # One seed sd moving the base across its line: within noise.
    assert pay_rule.small_model_free(79.8, 0.2, 85.0, 0.0, 85.0, xc) == (True, True)
    assert pay_rule.small_model_free(80.0, 0.0, 86.0, 2.0, 85.0, xc) == (True, True)
    # No X-C of the same epochs: never free.
    assert pay_rule.small_model_free(90.0, 0.0, 90.0, 0.0, 85.0, None) == (False, False)


def test_arms_parse_and_reject_unknown_names():
    import reproduce

    arms = reproduce.parse_arms(["X-C", "ExpB", "X-Y"], ["mine=--k=3 --differential_init=identity"])
    assert list(arms) == ["X-C", "X-Y", "mine", "ExpB"]  # matched arms after the arms they match
    assert arms["mine"] == ["--k=3", "--differential_init=identity"]
    with pytest.raises(SystemExit, match="needs the runs of arm X-Y"):
        reproduce.parse_arms(["ExpB"])
    with pytest.raises(SystemExit, match="Unknown arm 'bogus'"):
        reproduce.parse_arms(["bogus"])


@pytest.mark.parametrize(
    "condition, expected",
    [
        ("never", "X-C"),
        ("always", "Y-C"),
        ("consecutive", "X-Y k=2 (identity, recalibrated)"),
        ("ema", "X-Y ema (identity, recalibrated)"),
        ("random", "ExpA (identity, recalibrated)"),
        ("matched_random:per_epoch=12", "ExpB 12/epoch (identity, recalibrated)"),
        ("random_share:share=[0.2,0.5,0.8]", "X-Y share 0.2→0.5→0.8 (identity, recalibrated)"),
        ("retired_condition:x=1", "X-Y retired_condition (identity, recalibrated)"),
    ],
)
def test_arm_labels(condition, expected):
    import report

    config = {"condition": condition, "k": 2, "differential_init": "identity", "bn_statistics": "recalibrated"}
    assert report.arm_of(config) == expected
    # Runs written before the start and the BatchNorm option were flags: the paper's.
    assert report.arm_of({"condition": condition, "k": 2}) == expected.replace(
        "identity, recalibrated", "paper, shared"
    )


STUDY = os.path.join(ROOT, "tools", "examples", "pay_study")
TUNED = os.path.join(ROOT, "tools", "examples", "pay_study_tuned")


def test_classical_arm_names_are_the_conditions_labels():
    import report

    from keras_motivation import conditions

    assert (report.X_C, report.Y_C) == (conditions.Never.label, conditions.Always.label)


def test_every_column_of_the_results_says_what_it_holds():
    import report

    rows = report.rows_for(report.find_runs([STUDY]))
    by_model = {(r["experiment"], r["model"]): r for r in rows}
    ep3 = "resnet8:resnet14 fashion_mnist_idx 3 ep 20000 ex"
    xc, yc = by_model[(ep3, "ResNet-8-C")], by_model[(ep3, "ResNet-14-C")]
    b = by_model[(ep3, "ResNet-8-ResNet-14-B k=2 (identity, recalibrated)")]
    m = by_model[(ep3, "ResNet-8-ResNet-14-M k=2 (identity, recalibrated)")]
    # Forward FLOPs: each model's own; the dual run's F_X-Y in its own column.
    assert b["forward_flops"] == xc["forward_flops"] == 18850716
    assert m["forward_flops"] == yc["forward_flops"] == 40637852
    seeds = [_json(os.path.join(STUDY, "ep3", "k2-id-recalibrated", f"seed{s}", "summary.json")) for s in range(3)]
    mean_dual = sum(s["flops"]["dual_training_average"] for s in seeds) / 3
    assert b["dual_forward_flops"] == m["dual_forward_flops"] == pytest.approx(mean_dual)
    assert xc["dual_forward_flops"] is None and yc["dual_forward_flops"] is None
    # ACC/MFLOP of X-Y-B is the paper's: at F_X-Y against X-C.
    assert b["acc_per_mflop"] == pytest.approx(
        (b["accuracy_mean"] - xc["accuracy_mean"]) / ((mean_dual - xc["forward_flops"]) / 1e6)
    )
    table = report.markdown(rows)
    assert table.count(report.MARKDOWN_HEAD) == len({r["experiment"] for r in rows})
    for column in ("forward MFLOPs per image", "F_X-Y: mean forward MFLOPs per training pass", "mean ± sd over seeds"):
        assert column in report.MARKDOWN_HEAD
    assert f"**{ep3}**, accuracy on the test split" in table
    line = next(row for row in table.splitlines() if row.startswith("| ResNet-8-ResNet-14-B k=2 (identity, recal"))
    assert line.split(" | ")[4:6] == ["18.85", f"{mean_dual / 1e6:.2f}"]


def test_one_seed_shows_no_spread(tmp_path):
    import report

    # An arm of one seed beside one of three, from the committed runs.
    for arm, seeds in (("Y-C-lr0.4", ("seed0",)), ("X-C-lr0.4", ("seed0", "seed1", "seed2"))):
        for seed in seeds:
            shutil.copytree(os.path.join(TUNED, "ep3", arm, seed), tmp_path / "ep3" / arm / seed)
    rows = report.rows_for(report.find_runs([str(tmp_path)]))
    assert sorted(r["seeds"] for r in rows) == [1, 3]
    one = [r for r in rows if r["seeds"] == 1]
    assert one and all(r["accuracy_std"] is None for r in one)
    for line in report.markdown(rows).splitlines():
        if line.startswith("| ") and line.split(" | ")[1] == "1":
            assert "±" not in line, line
        elif line.startswith("| ") and line.split(" | ")[1] == "3":
            assert "±" in line, line
    assert report.fmt_mean_sd(85.5, None) == "85.50" and report.fmt_mean_sd(85.5, 0.0) == "85.50 ± 0.00"


def test_written_lists_every_file(tmp_path, capsys):
    import report

    out = tmp_path / "report"
    report.main([STUDY, f"--out={out}"])
    written = capsys.readouterr().out.strip().splitlines()[-1]
    assert written.startswith("written: ")
    listed = written[len("written: ") :].split(", ")
    on_disk = sorted(str(p) for p in out.rglob("*") if p.is_file())
    assert sorted(listed) == on_disk and len(on_disk) == 9


def test_report_help_is_quiet_and_names_every_argument():
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "report.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0 and run.stderr == "", run.stderr
    text = " ".join(run.stdout.split())
    assert "--out OUT the folder the reports are written to" in text, run.stdout
    for name in ("runs trainer workdirs", "pays.md", "statistics.md", "results.md"):
        assert name in text, name
    # Importing the tool starts no TensorFlow: only writing a report does.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, 'tools'); import report; print('tensorflow' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert probe.stdout.strip() == "False", probe.stderr[-2000:]


def test_study_runs_only_the_named_arms_at_the_named_budgets(tmp_path, monkeypatch):
    import pay_study
    import reproduce

    calls = []

    def run_arms(flagfile, out, seeds, specs, epochs, extra=(), log=print):
        calls.append((os.path.basename(out), epochs, list(specs), list(seeds)))
        return []

    monkeypatch.setattr(reproduce, "run_arms", run_arms)
    arms = ["joint-lr0.1", "grow0.45-joint-paper-rewarm0.1-lr0.1"]
    pay_study.run(str(tmp_path), seeds=(1,), groups=("joint",), only=arms, epochs=[3], log=None)
    assert calls == [("ep3", 3, arms, [1])]
    calls.clear()
    pay_study.run(str(tmp_path), seeds=(1,), groups=("joint",), only=arms[:1], log=None)
    assert [(c[0], c[2]) for c in calls] == [("ep3", arms[:1]), ("ep6", arms[:1])]


def test_study_trains_another_pair_when_asked(tmp_path, monkeypatch):
    import pay_study
    import reproduce

    extras = []
    monkeypatch.setattr(reproduce, "run_arms", lambda *a, extra=(), log=print, **k: extras.append(list(extra)) or [])
    common = ["--out", str(tmp_path), "--groups=joint", "--arms=joint-lr0.1", "--epochs=3", "--seeds=0"]
    pay_study.main([*common, "--pair=resnet8:resnet20"])
    pay_study.main(common)
    assert extras == [[*pay_study.STUDY_FLAGS, "--pair=resnet8:resnet20"], [*pay_study.STUDY_FLAGS]]
    with pytest.raises(SystemExit, match="Unknown --pair 'resnet8:nope': use one of "):
        pay_study.main([*common, "--pair=resnet8:nope"])
    assert len(extras) == 2, "a bad pair starts no run"
    pay_study.main([*common, "--pair=resnet8:resnet8p14:resnet8p20"])
    assert extras[-1] == [*pay_study.STUDY_FLAGS, "--pair=resnet8:resnet8p14:resnet8p20"]
    with pytest.raises(SystemExit, match="must be of one family"):
        pay_study.main([*common, "--pair=resnet8:resnet8p14:vit_tiny"])
    assert len(extras) == 3, "a bad ladder starts no run"


def test_study_trains_solo_twins_of_another_pair_at_another_width(tmp_path, monkeypatch):
    import pay_study
    import reproduce

    from keras_motivation import config as config_lib

    calls = []
    monkeypatch.setattr(
        reproduce,
        "run_arms",
        lambda flagfile, out, seeds, specs, epochs, extra=(), log=print: (
            calls.append((os.path.basename(out), list(specs), list(extra))) or []
        ),
    )
    common = ["--out", str(tmp_path), "--groups=solo", "--arms=Y-C-lr0.1,X-C-lr0.2", "--seeds=0"]
    pay_study.main([*common, "--pair=resnet8:resnet32", "--model_kwargs=width=8"])
    extra = [*pay_study.STUDY_FLAGS, "--pair=resnet8:resnet32", "--model_kwargs=width=8"]
    assert calls == [("ep6", ["X-C-lr0.2", "Y-C-lr0.1"], extra)]
    # The extra flags come after the quickstart's flagfile, as reproduce.run_arms passes them: they win.
    config = config_lib.config_from_args(["prog", f"--flagfile={pay_study.FLAGFILE}", *calls[0][2]])
    assert (config.pair, config.model_kwargs) == ("resnet8:resnet32", {"width": 8})
    assert "solo" not in pay_study.GROUPS, "the default study does not grow by the solo runs"


def test_study_trains_a_network_with_its_own_recipe_at_its_own_rates(tmp_path, monkeypatch):
    """--flags after the study's (an arm's own flags still win); --rates: the solo sweep's rates, and every
    joint arm at each of them, its name and flag rewritten."""
    import pay_study
    import reproduce

    from keras_motivation import config as config_lib

    calls = []
    monkeypatch.setattr(
        reproduce,
        "run_arms",
        lambda flagfile, out, seeds, specs, epochs, extra=(), log=print: (
            calls.append((os.path.basename(out), dict(specs), list(extra))) or []
        ),
    )
    arm = pay_study.DEFAULT_ARM.replace("-lr0.1", "-lr0.001")
    recipe = ["--flags=--optimizer=adamw --warmup_epochs=0.5", "--rates=0.001,0.002"]
    common = ["--out", str(tmp_path), "--epochs=6", "--seeds=0", "--pair=vit_tiny_d2:vit_tiny_d4", *recipe]
    pay_study.main([*common, "--groups=solo,joint", f"--arms=X-C-lr0.002,X-C-lr0.1,{arm}"])
    (_, joint, extra), (_, solo, _) = calls
    assert list(solo) == ["X-C-lr0.002"] and list(joint) == [arm]
    assert extra[-2:] == ["--optimizer=adamw", "--warmup_epochs=0.5"]
    argv = ["prog", f"--flagfile={pay_study.FLAGFILE}", *extra, *joint[arm]]
    config = config_lib.config_from_args(argv)
    assert (config.optimizer, config.warmup_epochs, config.learning_rate) == ("adamw", 0.5, 0.001)
    assert config.condition == "growth:epochs=0.45" and config.joint_base_weight == 2


@pytest.mark.parametrize(
    "study, epochs, arm",
    [
        ("pay_study", 3, "k2-id-recalibrated"),
        ("pay_study", 3, "X-C"),
        ("pay_study_tuned", 3, "defaults-k3-lr0.1"),
        ("pay_study_tuned", 3, "X-C-lr0.4"),
        ("pay_study_tuned", 6, "grow0.45-joint-paper-bw2-rewarm0.1-recalibrated-lr0.1"),
    ],
)
def test_the_study_runs_again_what_was_committed(study, epochs, arm):
    """The quickstart flagfile trains another policy now: the study's own flags give the committed runs' config."""
    import pay_study

    from keras_motivation import config as config_lib

    arms = {**pay_study.BN, **pay_study.FRONT, **pay_study.POLICIES, **pay_study.JOINT}
    arms.update(
        {
            pay_study.lr_arm(a, lr): pay_study._with_lr(f, lr)
            for a, f in pay_study.FRONT.items()
            for lr in pay_study.LEARNING_RATES
        }
    )
    with open(os.path.join(ROOT, "tools", "examples", study, f"ep{epochs}", arm, "seed0", "config.json")) as f:
        committed = config_lib.TrainConfig.from_json(f.read())
    argv = ["reproduce", f"--flagfile={pay_study.FLAGFILE}", f"--epochs={epochs}", *pay_study.STUDY_FLAGS]
    again = config_lib.config_from_args([*argv, "--seed=0", f"--workdir={committed.workdir}", *arms[arm]])
    assert not committed.incompatibilities(again), committed.incompatibilities(again)


def test_gamma_table_keeps_each_runs_gammas_beside_its_summary(tmp_path):
    """The table reads a final model where there is one and writes its means to gammas.json, which
    stands in for the model once it is gone (final models are not committed)."""
    import pay_study
    import pay_tables

    arm = tmp_path / "ep3" / "joint-lr0.1"
    committed = os.path.join(TUNED, "ep3", "joint-lr0.1")
    for seed in ("seed0", "seed1"):
        os.makedirs(arm / seed)
        shutil.copy(os.path.join(committed, seed, "summary.json"), arm / seed)
    model = tiny_model()
    rows = weights_map_lib.branch_gammas(model.weights_map)
    assert any(d for *_, d, _ in rows) and any(not d for *_, d, _ in rows)
    os.makedirs(arm / "seed0" / "final")
    model.save(str(arm / "seed0" / "final" / "motivated_model.keras"))
    with open(arm / "seed1" / pay_study.GAMMAS_FILE, "w") as f:
        json.dump({"differential": 0.5, "shared": 1.5}, f)

    line = pay_tables.gamma_table(str(tmp_path)).splitlines()[-1].split(" | ")
    written = _json(arm / "seed0" / pay_study.GAMMAS_FILE)
    np.testing.assert_allclose(written["differential"], np.mean([g for *_, d, g in rows if d]), rtol=1e-6)
    np.testing.assert_allclose(written["shared"], np.mean([g for *_, d, g in rows if not d]), rtol=1e-6)
    assert line[:3] == ["| joint-lr0.1", "3", "2"]
    assert float(line[3]) == pytest.approx((written["differential"] + 0.5) / 2, abs=5e-4)
    assert float(line[4]) == pytest.approx((written["shared"] + 1.5) / 2, abs=5e-4)
    # The final model gone, the table is the same.
    shutil.rmtree(arm / "seed0" / "final")
    assert pay_tables.gamma_table(str(tmp_path)).splitlines()[-1].split(" | ") == line


def test_the_tools_read_runs_through_one_reader_and_one_mean_sd(tmp_path):
    """tools/runs.py: a finished run, the runs under a folder, a study's runs by budget and arm; mean ± sd."""
    import pay_tables
    import report
    import runs

    arm = os.path.join(TUNED, "ep3", "X-C-lr0.4")
    seeds = sorted(os.listdir(arm))
    run = runs.read_run(os.path.join(arm, seeds[0]))
    assert run["summary"]["pair"] == run["config"]["pair"] == "resnet8:resnet14"
    os.makedirs(tmp_path / "unfinished")
    assert runs.read_run(str(tmp_path / "unfinished")) is None
    study = runs.study_runs(TUNED)
    assert [r["dir"] for r in study[(3, "X-C-lr0.4")]] == [os.path.join(arm, s) for s in seeds]
    assert pay_tables.summaries(TUNED)[(3, "X-C-lr0.4")] == [r["summary"] for r in study[(3, "X-C-lr0.4")]]
    assert {r["dir"] for r in report.find_runs([arm])} == {os.path.join(arm, s) for s in seeds}
    assert runs.mean_sd([1.0, 3.0, None, float("nan")]) == (2.0, pytest.approx(2**0.5))
    assert runs.mean_sd([2.0]) == (2.0, None) and runs.mean_sd([]) == (None, None)
    assert runs.fmt_mean_sd(2.0, 2**0.5) == "2.00 ± 1.41" and runs.fmt_mean_sd(None, None) == ""


def test_no_other_tool_reads_a_runs_summary_or_computes_a_spread():
    """tools/runs.py is the tools' one reader of run directories and one mean ± sd: no other tool opens or globs
    a summary.json by name, or computes a standard deviation itself."""
    import ast

    tools = os.path.join(ROOT, "tools")
    found = []
    for name in sorted(n for n in os.listdir(tools) if n.endswith(".py") and n != "runs.py"):
        with open(os.path.join(tools, name), encoding="utf-8") as f:
            tree = ast.parse(f.read(), name)
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            function = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            reads = function in ("open", "glob", "iglob") and any(
                isinstance(c, ast.Constant) and c.value == "summary.json" for c in ast.walk(call)
            )
            if reads or function in ("stdev", "pstdev", "std", "nanstd"):
                found.append(f"{name}:{call.lineno} {function}")
    assert found == [], "read through tools/runs.py (read_run, study_runs, mean_sd, fmt_mean_sd)"
