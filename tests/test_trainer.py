"""The trainer: quickstart on real data, resumption, transfer, bad input."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
from testing_utils import PAPERS_TRIGGER_FLAGS
from testing_utils import STUDY_FLAGFILE
from testing_utils import TINY_MODEL_FLAG
from testing_utils import csv_rows
from testing_utils import repository_env
from testing_utils import requires_fashion_mnist
from testing_utils import run_json_script
from testing_utils import write_image_folder

from keras_motivation import callbacks as callbacks_lib
from keras_motivation import config as config_lib
from keras_motivation import preemption
from keras_motivation import summary as summary_lib
from keras_motivation import trainer
from keras_motivation.config import ConfigError

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(os.path.dirname(HERE), "configs")


def tiny_args(workdir, *extra):
    """The trainer's flags of `tiny`."""
    return [
        f"--flagfile={STUDY_FLAGFILE}",
        *PAPERS_TRIGGER_FLAGS,
        "--train_size=256",
        "--eval_size=512",
        "--batch_size=32",
        "--epochs=2",
        TINY_MODEL_FLAG,
        "--verbose=0",
        f"--workdir={workdir}",
        *extra,
    ]


def tiny(workdir, *extra):
    """The studies' config (the quickstart's former one: ResNet-8 -> ResNet-14) shrunk to seconds: 256 images
    (8 steps per epoch), width 4, 2 epochs, 512 test images."""
    return config_lib.config_from_args(["train", *tiny_args(workdir, *extra)])


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """One deterministic quickstart run, shared: the workdir test reads it, the
    resumption test compares against it, the refusal test must leave it untouched."""
    from tensorflow.python.framework import config as tf_config

    config = tiny(tmp_path_factory.mktemp("quickstart") / "run", "--deterministic")
    try:
        summary = trainer.run(config)
    finally:
        tf_config.disable_op_determinism()
    return config, summary


@requires_fashion_mnist
@pytest.mark.xdist_group("quickstart")
def test_quickstart_writes_the_workdir(quickstart):
    config, summary = quickstart
    w = config.workdir
    for name in (
        "config.json",
        "summary.json",
        "history.csv",
        "batches.csv",
        "backup/state.weights.h5",
        "final/base.keras",
        "final/motivated.keras",
        "final/motivated_model.keras",
    ):
        assert os.path.exists(os.path.join(w, name)), name
    assert os.listdir(os.path.join(w, "tensorboard"))
    with open(os.path.join(w, "summary.json")) as f:
        on_disk = json.load(f)
    assert on_disk == json.loads(json.dumps(summary))
    # Every number says whose it is: the evaluation split and its size, each model's own entry.
    assert summary["schema"] == 2 and summary["evaluation"] == {"split": "test", "images": 512}
    assert not {"final", "best", "flops"} & set(summary), "the keys before schema 2, which did not say whose"
    undocumented = [key for key in summary if not re.search(rf"(^|[\s\"(]){key}\b", summary_lib.__doc__, re.M)]
    assert not undocumented, f"summary.json keys not in summary.py's schema: {undocumented}"
    for name, architecture in (("base", "resnet8"), ("motivated", "resnet14")):
        entry = summary[name]
        assert entry["architecture"] == architecture
        assert entry["parameters"] == keras.models.load_model(os.path.join(w, "final", f"{name}.keras")).count_params()
        assert {"accuracy", "loss", "best_epoch_accuracy", "forward_flops_per_image", "forward_macs_per_image"} <= set(
            entry
        )
        assert 0 <= entry["accuracy"] <= 1 and entry["forward_flops_per_image"] == 2 * entry["forward_macs_per_image"]
    assert summary["base"]["parameters"] < summary["motivated"]["parameters"]
    assert summary["resumed_from_step"] == 0
    assert summary["activations"]["steps"] == 2 * (256 // 32)
    assert summary["activations"]["noise_motivated_share"] == pytest.approx(1 / 6)
    # Costs the paper leaves out: backward passes, and the switches themselves.
    flops = {
        "base": summary["base"]["forward_flops_per_image"],
        "motivated": summary["motivated"]["forward_flops_per_image"],
        **summary["training_flops"],
    }
    assert flops["base"] < flops["average_forward_per_image"] < flops["motivated"]
    # The default recalibrated BatchNorm statistics: the paper's alternation trains each model's weights
    # without its own pass, so both are stale at each of the 2 epoch ends: a forward pass of each model over
    # the 8 training batches there are (or one of the motivated model and the base's tail on its shared trunk,
    # where the two trunks hold the same weights); the last one makes the saved models and counts as training.
    assert summary["bn_statistics"] == "recalibrated"
    assert summary["activations"]["recalibration_batches"] == 2 * 8
    for recomputed in (flops["recalibration"], flops["recalibration_for_validation"]):
        assert 8 * 32 * flops["motivated"] < recomputed <= 8 * 32 * (flops["base"] + flops["motivated"])
    # Where the time went: the phases add up to the run's.
    breakdown = summary["time_breakdown"]
    for clock in ("wall_clock_s", "cpu_time_s"):
        phases = breakdown[clock]
        assert min(phases.values()) >= -0.05, phases  # the rest of fit is a difference: rounding only
        assert sum(v for k, v in phases.items() if k != "total") == pytest.approx(phases["total"], abs=0.01)
        assert phases["train_steps"] > 0 and phases["validation"] > 0 and phases["statistics"] > 0
    assert breakdown["steps"] == 16 and breakdown["process_cpu_before_run_s"] > 0
    # The final evaluation is the last epoch's validation, which nothing changed since.
    last = csv_rows(os.path.join(w, "history.csv"))[-1]
    assert summary["base"]["accuracy"] == pytest.approx(float(last["val_accuracy"]), abs=1e-6)
    assert flops["total"] == pytest.approx(
        flops["recalibration"]
        + 3
        * 32
        * (
            flops["base"] * (16 - summary["activations"]["motivated_steps"])
            + flops["motivated"] * summary["activations"]["motivated_steps"]
        )
    )
    assert 0 < summary["switch_seconds"] < 1
    assert summary["time_in_switches_s"] == pytest.approx(
        summary["switch_seconds"] * summary["activations"]["switches"]
    )
    assert len(csv_rows(os.path.join(w, "history.csv"))) == 2
    batches = csv_rows(os.path.join(w, "batches.csv"))
    assert [int(r["step"]) for r in batches] == list(range(1, 17))
    assert sum(int(r["motivated"]) for r in batches) == summary["activations"]["motivated_steps"]
    # The final base model is the trained one.
    base = keras.models.load_model(os.path.join(w, "final", "base.keras"))
    assert base.count_params() < keras.models.load_model(os.path.join(w, "final", "motivated.keras")).count_params()
    text = summary_lib.describe(config, summary)
    assert "summary.json" in text and "tensorboard" in text


class Killed(Exception):
    pass


def _killed_at_step(config, step, monkeypatch):
    """Runs `config` until its `step`-th step is logged, then kills it (as a crash would, no save)."""
    original = callbacks_lib.BatchLog.on_train_batch_end

    def kill(self, batch, logs=None):
        original(self, batch, logs)
        if self.model.counters()["steps"] == step:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(callbacks_lib.BatchLog, "on_train_batch_end", kill)
        with pytest.raises(Killed):
            trainer.run(config)


@requires_fashion_mnist
@pytest.mark.xdist_group("quickstart")
def test_killed_mid_epoch_resumes_to_the_same_run(tmp_path, monkeypatch, deterministic, quickstart, capsys):
    full_config, full = quickstart  # uninterrupted, backed up at epoch ends only
    # --backup_every may change on resume: it does not change what is trained.
    config = tiny(tmp_path / "resumed", "--deterministic", "--backup_every=3")
    _killed_at_step(config, 12, monkeypatch)
    with open(tmp_path / "resumed" / "backup" / "state.json") as f:
        state = json.load(f)
    # Backups at steps 3, 6, 8 (epoch end) and 9: every 3 steps counted from the start of the run, not
    # from the last epoch end (which gave 11); the kill at step 12 comes before its backup.
    assert {k: state[k] for k in ("steps", "epoch", "batch")} == {"steps": 9, "epoch": 1, "batch": 1}
    assert state["cpu_time_s"] > 0 and state["wall_clock_s"] > 0
    capsys.readouterr()
    resumed = trainer.run(config)
    # One line says where the run resumes; the summary keeps it.
    assert capsys.readouterr().out.splitlines() == [
        f"resuming {tmp_path / 'resumed'} from step 9 of 16 (epoch 2 of 2, after its batch 1 of 8)"
    ]
    assert resumed["resumed_from_step"] == 9
    # The resumed run's time includes the interrupted run's.
    assert resumed["cpu_time_s"] > state["cpu_time_s"] and resumed["wall_clock_s"] > state["wall_clock_s"]

    a = csv_rows(os.path.join(full_config.workdir, "batches.csv"))
    b = csv_rows(tmp_path / "resumed" / "batches.csv")
    assert [r["step"] for r in b] == [r["step"] for r in a]
    assert [r["motivated"] for r in b] == [r["motivated"] for r in a]
    assert any(int(r["motivated"]) for r in a)
    np.testing.assert_allclose([float(r["batch_loss"]) for r in b], [float(r["batch_loss"]) for r in a], rtol=1e-5)
    assert resumed["activations"] == full["activations"]
    wa = keras.models.load_model(os.path.join(full_config.workdir, "final", "motivated_model.keras"))
    wb = keras.models.load_model(tmp_path / "resumed" / "final" / "motivated_model.keras")
    for x, y in zip(wa.weights, wb.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6, err_msg=x.path)
    # The same command on the finished workdir says so, trains nothing and evaluates both models again.
    again = trainer.run(config)
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'resumed'} already holds a finished run (16 of 16 steps): nothing left to train; "
        "evaluating both models again"
    ]
    trained = ("steps", "motivated_steps", "switches", "activations")
    assert {k: again["activations"][k] for k in trained} == {k: resumed["activations"][k] for k in trained}
    assert again["resumed_from_step"] == 16
    assert again["base"]["accuracy"] == pytest.approx(resumed["base"]["accuracy"])


@requires_fashion_mnist
def test_a_joint_run_killed_mid_epoch_resumes_to_the_same_run(tmp_path, monkeypatch, deterministic):
    """Joint steps (and the base's own BatchNorm statistics they move) come back from a mid-epoch backup."""
    full, rungs = _killed_mid_epoch_and_resumed(tmp_path, monkeypatch, "--joint")
    # The shared forward pass (the trainer's default) moves the base's trunk statistics by the rule in
    # engine/shared_forward.py: the backup must bring those back too.
    assert full["joint"] == {
        "base_weight": 1.0,
        "weights": None,
        "equilibrium": False,
        "distillation": 0.0,
        "distillation_teachers": "largest",
        "base_share": 1.0,
        "shared_forward": True,
    }
    assert 0 < sum(int(r) for r in rungs) < len(rungs)


# Slow (about 30 s): a pair killed mid-epoch is test_a_joint_run_killed_mid_epoch_resumes_to_the_same_run, a ladder
# resumed from its backup test_ladder.py's test_a_ladder_stopped_after_an_epoch_resumes_to_the_same_run.
@pytest.mark.slow
@requires_fashion_mnist
def test_a_ladder_killed_mid_epoch_resumes_to_the_same_run(tmp_path, monkeypatch, deterministic):
    """Three models, joint steps over the joined rungs: a crash mid-epoch resumes from the backup to the same run."""
    _, rungs = _killed_mid_epoch_and_resumed(tmp_path, monkeypatch, "--pair=resnet8:resnet14:resnet20", "--joint")
    assert set(rungs) == {"0", "1", "2"}


def _killed_mid_epoch_and_resumed(tmp_path, monkeypatch, *flags):
    """A run killed at step 11 and resumed from its step-9 backup against the uninterrupted run: the same modes,
    losses, counters and final weights. Returns (the uninterrupted run's summary, its rung per step)."""
    flags = ("--deterministic", "--k=1", "--backup_every=3", *flags)
    full = trainer.run(tiny(tmp_path / "full", *flags))
    _killed_at_step(tiny(tmp_path / "resumed", *flags), 11, monkeypatch)
    resumed = trainer.run(tiny(tmp_path / "resumed", *flags))
    assert resumed["resumed_from_step"] == 9
    a, b = (csv_rows(tmp_path / run / "batches.csv") for run in ("full", "resumed"))
    assert [r["motivated"] for r in b] == [r["motivated"] for r in a]
    np.testing.assert_allclose([float(r["batch_loss"]) for r in b], [float(r["batch_loss"]) for r in a], rtol=1e-5)
    assert resumed["activations"] == full["activations"]
    wa, wb = (
        keras.models.load_model(tmp_path / run / "final" / "motivated_model.keras") for run in ("full", "resumed")
    )
    for x, y in zip(wa.weights, wb.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6, err_msg=x.path)
    return full, [r["motivated"] for r in a]


def _stopped_by_sigterm(workdir, at_step, *flags):
    """The tiny run as `python -m keras_motivation.train` (tests/trainer_signal_run.py) sent SIGTERM once
    `at_step` steps are trained, as if it came during the call that ends there: (return code, the lines of
    its output after the pause)."""
    env = repository_env({**os.environ, "PAUSE_AT_STEP": str(at_step)})
    with open(workdir.parent / f"{workdir.name}.stderr", "w+") as err:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "trainer_signal_run.py"), *tiny_args(workdir, *flags)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
        try:
            line = proc.stdout.readline()
            if line.strip() != f"paused at step {at_step}":
                proc.wait(timeout=60)
                err.seek(0)
                raise AssertionError(f"{line!r}, return code {proc.returncode}: {err.read()[-3000:]}")
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        assert proc.returncode == preemption.EXIT_CODE, (proc.returncode, out, err.read()[-3000:])
    return out.splitlines()


def _assert_same_run(reference, workdir):
    """The run in `workdir` logged the same batches and epochs and ended with the same weights as
    `reference`'s, each logged once."""
    a = csv_rows(os.path.join(reference, "batches.csv"))
    b = csv_rows(os.path.join(workdir, "batches.csv"))
    for field in ("step", "epoch", "motivated"):
        assert [r[field] for r in b] == [r[field] for r in a], field
    for field in ("batch_loss", "learning_rate"):
        np.testing.assert_allclose([float(r[field]) for r in b], [float(r[field]) for r in a], rtol=1e-5)
    assert [r["epoch"] for r in csv_rows(os.path.join(workdir, "history.csv"))] == ["0", "1"]
    wa = keras.models.load_model(os.path.join(reference, "final", "motivated_model.keras"))
    wb = keras.models.load_model(os.path.join(workdir, "final", "motivated_model.keras"))
    for x, y in zip(wa.weights, wb.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6, err_msg=x.path)


def _preempted_then_rerun(tmp_path, reference, at_step, *flags):
    workdir = tmp_path / "run"
    lines = _stopped_by_sigterm(workdir, at_step, "--deterministic", *flags)
    assert lines == [
        f"preempted: saved the run at step {at_step} of epoch 2 in {workdir}; rerun the same command to resume"
    ]
    with open(workdir / "backup" / "state.json") as f:
        assert json.load(f)["steps"] == at_step
    assert [int(r["step"]) for r in csv_rows(workdir / "batches.csv")][-1] == at_step
    assert not os.path.exists(workdir / "summary.json")
    # The logs are flushed: epoch 0's row, and (one step per call) TensorBoard's batch scalars of step 10
    # (written every 10 calls).
    assert [r["epoch"] for r in csv_rows(workdir / "history.csv")] == ["0"]
    if at_step >= 10 and "--steps_per_execution=4" not in flags:
        (events,) = (workdir / "tensorboard" / "train").iterdir()
        assert "batch_batch_loss" in events.read_bytes().decode("latin-1")
    # The same command again (in this process: the rerun needs no signal).
    trainer.run(tiny(workdir, "--deterministic", *flags))
    _assert_same_run(reference, workdir)


@requires_fashion_mnist
@pytest.mark.xdist_group("quickstart")
def test_sigterm_mid_epoch_saves_the_run_and_the_rerun_is_the_uninterrupted_run(tmp_path, deterministic, quickstart):
    _preempted_then_rerun(tmp_path, quickstart[0].workdir, 11)


@pytest.fixture(scope="module")
def four_steps_per_call(tmp_path_factory):
    """The quickstart run with --steps_per_execution=4, uninterrupted: its workdir."""
    from tensorflow.python.framework import config as tf_config

    config = tiny(tmp_path_factory.mktemp("four_steps_per_call") / "run", "--deterministic", "--steps_per_execution=4")
    try:
        trainer.run(config)
    finally:
        tf_config.disable_op_determinism()
    return config.workdir


@requires_fashion_mnist
@pytest.mark.xdist_group("four_steps_per_call")
def test_sigterm_during_a_call_of_several_steps_saves_at_its_end(tmp_path, deterministic, four_steps_per_call):
    # Calls end at steps 4, 8, 12 and 16: the signal during the third stops at 12, mid-epoch.
    _preempted_then_rerun(tmp_path, four_steps_per_call, 12, "--steps_per_execution=4")


@requires_fashion_mnist
@pytest.mark.xdist_group("quickstart")
def test_incompatible_workdir_is_refused_untouched(quickstart):
    workdir = quickstart[0].workdir
    before = {p: os.path.getmtime(os.path.join(workdir, p)) for p in os.listdir(workdir)}
    with pytest.raises(ConfigError, match="different config.*learning_rate"):
        trainer.run(tiny(workdir, "--deterministic", "--learning_rate=0.2"))
    after = {p: os.path.getmtime(os.path.join(workdir, p)) for p in os.listdir(workdir)}
    assert before == after


@requires_fashion_mnist
@pytest.mark.xdist_group("quickstart")
def test_a_corrupt_backup_is_refused_with_one_line(tmp_path, quickstart):
    workdir = tmp_path / "run"
    shutil.copytree(quickstart[0].workdir, workdir)
    weights = workdir / "backup" / "state.weights.h5"
    whole = weights.read_bytes()
    weights.write_bytes(whole[: len(whole) // 3])  # a backup cut short

    def files_of_the_run():  # all but the lock, which the second refusal takes and releases
        return {p: os.path.getmtime(os.path.join(workdir, p)) for p in os.listdir(workdir) if p != ".lock"}

    before = files_of_the_run()
    with pytest.raises(preemption.BackupError) as err:
        trainer.run(tiny(workdir, "--deterministic"))
    message = str(err.value)
    assert message.startswith(f"the backup {weights} cannot be read (")
    assert message.endswith(
        "the run was not started; restore the backup, or pass --resume=false to train from the start"
    )
    assert "\n" not in message
    # An HDF5 file that is no backup of this model: refused when loading it.
    with h5py.File(weights, "w") as f:
        f["x"] = np.zeros(3)
    before = files_of_the_run()
    with pytest.raises(preemption.BackupError, match=f"the backup {weights} cannot be loaded .*: the run was not"):
        trainer.run(tiny(workdir, "--deterministic"))
    assert files_of_the_run() == before


def test_unknown_pair_fails_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="Unknown --pair 'resnet9:resnet99'.*resnet20:resnet32"):
        trainer.run(tiny(tmp_path / "run", "--pair=resnet9:resnet99"))
    assert not os.path.exists(tmp_path / "run")


def test_missing_dataset_offline_says_what_to_run(tmp_path):
    from keras_motivation import data

    with pytest.raises(data.DatasetUnavailableError, match="tfds build cifar10"):
        trainer.run(tiny(tmp_path / "run", "--dataset=cifar10", f"--data_dir={tmp_path / 'empty'}"))
    assert not os.path.exists(tmp_path / "run")


def _image_folder_run(tmp_path, *extra):
    """A tiny trainer run on 48 images of 3 classes (16 px, batch 8, 2 epochs): its summary."""
    root = write_image_folder(tmp_path / "images", per_class=16)
    return trainer.run(
        tiny(
            tmp_path / "run",
            "--dataset=image_folder",
            f"--data_dir={root}",
            "--image_size=16",
            "--batch_size=8",
            *extra,
        )
    )


def test_image_folder_run(tmp_path):
    summary = _image_folder_run(tmp_path, "--learning_rate=0.02")
    assert summary["num_classes"] == 3
    assert summary["activations"]["steps"] == 2 * (48 // 8)
    history = csv_rows(tmp_path / "run" / "history.csv")
    assert float(history[-1]["loss"]) < float(history[0]["loss"])
    assert 0 <= summary["base"]["accuracy"] <= 1


def test_joint_run_from_a_small_gamma_start(tmp_path):
    """--joint with --condition=always: every batch a joint step of two passes; the summary counts both models'
    FLOPs."""
    summary = _image_folder_run(
        tmp_path,
        "--condition=always",
        "--joint",
        "--distillation=0.5",
        "--differential_init=identity:gamma=0.1,noise=0.01",
        "--noshared_forward",
    )
    assert summary["joint"] == {
        "base_weight": 1.0,
        "weights": None,
        "equilibrium": False,
        "distillation": 0.5,
        "distillation_teachers": "largest",
        "base_share": 1.0,
        "shared_forward": False,
    }
    assert summary["activations"]["motivated_steps"] == summary["activations"]["steps"] == 12
    assert summary["training_flops"]["average_forward_per_image"] == pytest.approx(
        summary["base"]["forward_flops_per_image"] + summary["motivated"]["forward_flops_per_image"]
    )
    history = csv_rows(tmp_path / "run" / "history.csv")
    # Both models trained on every batch: both losses are logged.
    assert float(history[-1]["loss"]) > 0 and float(history[-1]["motivated_loss"]) > 0


def test_a_shared_forward_run_with_a_base_share_counts_the_bases_tail_on_its_share(tmp_path):
    summary = _image_folder_run(tmp_path, "--condition=always", "--joint", "--joint_base_share=0.5")
    assert summary["joint"]["base_share"] == 0.5 and summary["joint"]["shared_forward"]
    fx, fy = (summary[m]["forward_flops_per_image"] for m in ("base", "motivated"))
    average = summary["training_flops"]["average_forward_per_image"]
    # The motivated model's pass plus half the base's own layers, which are fewer than all of its own.
    assert fy < average < fy + 0.5 * fx


def test_a_ladder_of_three_trains_summarizes_saves_and_exports_every_model(tmp_path):
    from keras_motivation import export

    # The trainer's default policy (tiny() pins the paper's trigger, which the flags here set back).
    default = ("--policy=default", "--condition=growth:epochs=0.45", "--joint", "--differential_init=paper")
    summary = _image_folder_run(tmp_path, "--pair=resnet8:resnet14:resnet20", *default, "--export")
    workdir = tmp_path / "run"
    names = ("base", "rung1", "motivated")
    assert [summary[n]["architecture"] for n in names] == ["resnet8", "resnet14", "resnet20"]
    assert all(0 <= summary[n]["accuracy"] <= 1 for n in names)
    flops = [summary[n]["forward_flops_per_image"] for n in names]
    assert flops == sorted(flops) and len(set(flops)) == 3
    # The default policy: the base alone for 0.45 epochs, then the largest with both smaller ones on each batch.
    steps = summary["activations"]["rung_steps"]
    assert steps[0] > 0 and steps[1] == 0 and steps[2] > 0
    assert summary["training_flops"]["average_forward_per_image"] > flops[2]
    for name in (*names, "motivated_model"):
        assert os.path.exists(workdir / "final" / f"{name}.keras"), name
    assert set(summary["export"]) == set(names)
    # Each SavedModel reloads without this package and serves what its Keras model predicts.
    artefacts = [a for a in export.export_run(str(workdir), litert=()) if a["kind"] == "saved_model"]
    rows = export.check(str(workdir), artefacts, images=16)
    assert {r["name"] for r in rows} == {f"{n} SavedModel" for n in names}
    assert all(r["agreement"] == 1.0 for r in rows)


def test_a_ladder_through_the_trainer_follows_the_papers_rule_generalised(tmp_path):
    """batches.csv's rung per step is the written rule replayed over its logged losses (k = 1), and the summary's
    and the history's figures count every model: each one's share and steps, the statistics check of each, the
    measured speed-up over the time of every step."""
    from testing_utils import replay_ladder

    summary = _image_folder_run(tmp_path, "--pair=resnet8:resnet14:resnet20", "--k=1", "--statistics_check_batches=1")
    rows = csv_rows(tmp_path / "run" / "batches.csv")
    losses, rungs = [float(r["batch_loss"]) for r in rows], [int(r["motivated"]) for r in rows]
    epochs = [sum(1 for r in rows if int(r["epoch"]) == e) for e in sorted({int(r["epoch"]) for r in rows})]
    assert rungs == replay_ladder(losses, epochs, k=1, rungs=3) and len(set(rungs)) == 3
    a = summary["activations"]
    assert a["rung_steps"] == [rungs.count(r) for r in range(3)]
    assert a["rung_share"] == [n / len(rungs) for n in a["rung_steps"]]
    assert a["mean_activation_length"] == (len(rungs) - a["rung_steps"][0]) / a["activations"]
    assert set(summary["statistics_check"]) == {"batches", "base", "rung1", "motivated"}
    modes = summary["wall_clock_per_mode_s"]
    assert set(modes) == {"base", "rung1", "motivated"}
    seconds = sum(m["seconds"] for m in modes.values())
    assert summary["speedup_vs_motivated_alone"]["measured_wall_clock"] == pytest.approx(
        modes["motivated"]["seconds_per_batch"] * len(rungs) / seconds
    )
    history = csv_rows(tmp_path / "run" / "history.csv")
    assert [int(h["rung1_steps"]) for h in history] == [rungs[: epochs[0]].count(1), rungs[epochs[0] :].count(1)]
    assert sum(float(h["rung1_share"]) for h in history) > 0


@pytest.mark.parametrize("path", [("--steps_per_execution=3",), ("--jit_compile",)], ids=["device-loop", "xla"])
def test_a_ladder_trains_through_the_trainer_on_another_path(tmp_path, path):
    summary = _image_folder_run(tmp_path, "--pair=resnet8:resnet14:resnet20", "--k=1", *path)
    steps = summary["activations"]["rung_steps"]
    assert sum(steps) == summary["activations"]["steps"] == 12 and steps[0] > 0 and steps[1] + steps[2] > 0


# Slow (a 2-replica trainer run in a subprocess, about a minute): the ladder's engine under MirroredStrategy is
# test_ladder.py's (slow too), the trainer's mirrored pair test_trainer_with_mirrored_strategy_on_two_devices.
@pytest.mark.slow
@requires_fashion_mnist
def test_a_ladder_through_the_trainer_with_mirrored_strategy(tmp_path):
    r = run_json_script("trainer_mirrored_run.py", args=(CONFIGS, str(tmp_path), "--pair=resnet8:resnet14:resnet20"))
    assert r["replicas"] == 2 and r["steps"] == 256 // 32 and sum(r["rung_steps"]) == r["steps"]


def test_image_folder_needs_image_size_before_any_work(tmp_path):
    root = write_image_folder(tmp_path / "images")
    with pytest.raises(ConfigError, match="--dataset=image_folder needs --image_size"):
        trainer.run(tiny(tmp_path / "run", "--dataset=image_folder", f"--data_dir={root}"))
    with pytest.raises(ConfigError, match="no directory .*train.*pass --data_dir"):
        trainer.run(tiny(tmp_path / "run", "--dataset=image_folder", f"--data_dir={tmp_path}", "--image_size=16"))
    assert not os.path.exists(tmp_path / "run")


@requires_fashion_mnist
def test_image_too_small_for_the_model(tmp_path):
    with pytest.raises(ConfigError, match="resnet50:resnet101 cannot be built"):
        trainer.run(tiny(tmp_path / "run", "--pair=resnet50:resnet101", "--image_size=16"))
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--optimizer=adagrad", "--optimizer must be one of"),
        ("--k=0", "--k must be >= 1"),
        ("--tpu=grpc://1.2.3.4:8470", "--tpu is only used with --strategy=tpu"),
        ("--warmup_epochs=5", r"--warmup_epochs must be in \[0, epochs\)"),
        ("--joint_base_share=0", r"--joint_base_share must be in \(0, 1\]"),
        ("--pair=resnet8:resnet14:vit_small", "the models must be of one family"),
        ("--joint_base_share=1.5", r"--joint_base_share must be in \(0, 1\]"),
    ],
)
def test_contradictory_flags_get_one_line(tmp_path, flag, message):
    with pytest.raises(ConfigError, match=message) as err:
        trainer.run(tiny(tmp_path / "run", flag))
    assert "\n" not in str(err.value)
    assert not os.path.exists(tmp_path / "run")


@requires_fashion_mnist
def test_trainer_with_mirrored_strategy_on_two_devices(tmp_path):
    r = run_json_script("trainer_mirrored_run.py", args=(CONFIGS, str(tmp_path)))
    assert r["replicas"] == 2 and r["steps"] == 256 // 32
    # Bad input: a global batch that does not split across the replicas.
    assert "--batch_size=31 is not divisible by the 2 replicas" in r["error"]
    assert not r["bad_workdir_exists"]
