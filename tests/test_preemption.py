"""The stop signals, the preempted line, the exit code and the Slurm requeue (no TensorFlow step here; the
trainer stopped by SIGTERM is in test_trainer.py, the backup that stops the run in test_callbacks.py)."""

import os
import signal
import subprocess
import threading

import pytest

from keras_motivation import preemption
from keras_motivation import train
from keras_motivation import trainer
from keras_motivation.config import ConfigError
from keras_motivation.config import TrainConfig


def test_the_first_signal_is_recorded_and_the_handlers_restored():
    before = {s: signal.getsignal(s) for s in preemption.SIGNALS}
    with preemption.StopRequest() as stop:
        assert stop.requested is None
        os.kill(os.getpid(), signal.SIGUSR1)  # Python runs the handler before the next line
        assert stop.requested == "SIGUSR1"
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == "SIGUSR1"  # the first one says why the run stopped
    assert {s: signal.getsignal(s) for s in preemption.SIGNALS} == before


def test_a_second_ctrl_c_stops_at_once(capsys):
    previous = signal.getsignal(signal.SIGINT)
    with preemption.StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested == "SIGINT"
        # The next SIGINT gets the operating system's default action: the process ends, even inside a call.
        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is previous
    assert capsys.readouterr().err == "stopping after the step in flight (Ctrl-C again to stop at once)\n"


def test_outside_the_main_thread_nothing_is_installed():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def run():
        with preemption.StopRequest() as stop:
            seen.append(signal.getsignal(signal.SIGTERM))
            seen.append(stop.requested)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [before, None]


def test_the_preempted_line_and_the_epoch_of_a_step():
    stop = preemption.Preempted(12, 2, "SIGTERM", workdir="/runs/a")
    assert stop.line() == "preempted: saved the run at step 12 of epoch 2 in /runs/a; rerun the same command to resume"
    assert [preemption.epoch_of(s, 8) for s in (1, 8, 9, 16)] == [1, 1, 2, 2]
    assert preemption.EXIT_CODE not in (0, 1, 2) and preemption.EXIT_CODE < 128


@pytest.mark.parametrize(
    "signal_name, chief, requeue, requeued",
    [
        ("SIGUSR1", True, True, True),
        ("SIGTERM", True, True, False),
        ("SIGUSR1", False, True, False),
        ("SIGUSR1", True, False, False),
    ],
)
def test_the_command_prints_the_line_requeues_on_slurms_warning_and_exits_75(
    capsys, monkeypatch, signal_name, chief, requeue, requeued
):
    monkeypatch.setattr(preemption, "requeue", lambda: "requeued Slurm job 42")
    stop = preemption.Preempted(11, 2, signal_name, workdir="/runs/a", chief=chief)
    with pytest.raises(SystemExit) as err:
        train.exit_preempted(stop, requeue=requeue)
    assert err.value.code == preemption.EXIT_CODE == 75
    out = capsys.readouterr()
    assert out.out == stop.line() + "\n"
    # Only the chief requeues, and only on Slurm's warning signal: SIGTERM is scancel, or the time limit.
    assert out.err == ("requeued Slurm job 42\n" if requeued else "")


def test_requeue_runs_scontrol_and_says_what_happened(monkeypatch):
    calls = []

    def scontrol(returncode=0, stderr="", raises=None):
        def run(argv, **kwargs):
            calls.append(argv)
            if raises:
                raise raises
            return subprocess.CompletedProcess(argv, returncode, "", stderr)

        return run

    assert preemption.requeue("42", run=scontrol()) == "requeued Slurm job 42"
    assert calls == [["scontrol", "requeue", "42"]]
    assert preemption.requeue("42", run=scontrol(1, "Invalid job id\n")) == (
        "not requeued: scontrol requeue 42 exited with 1 (Invalid job id)"
    )
    assert "scontrol is not on PATH" in preemption.requeue("42", run=scontrol(raises=FileNotFoundError()))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert preemption.requeue(run=scontrol()) == "not requeued: SLURM_JOB_ID is not set (not a Slurm job)"
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    assert preemption.requeue(run=scontrol()) == "requeued Slurm job 7"


def test_requeue_on_signal_outside_a_slurm_job_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(ConfigError, match="--requeue_on_signal .* SLURM_JOB_ID is not set") as err:
        trainer.run(TrainConfig(workdir=str(tmp_path / "run"), requeue_on_signal=True))
    assert "\n" not in str(err.value)
    assert not os.path.exists(tmp_path / "run")
