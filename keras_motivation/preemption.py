"""Preemption: the signals that stop a run at the next step with its state saved, and what they raise.

A preempted cloud VM gets SIGTERM and about 30 s; Slurm sends the signal of
`sbatch --signal=USR1@90` before the time limit; Ctrl-C is SIGINT. While
`StopRequest` is installed (the trainer installs it around `fit`), the
first of them only records that a stop was asked for; the backup callback
(`callbacks.ResumableBackup`) then finishes the step in flight (with
`steps_per_execution` > 1, the call in flight), writes the backup and raises
`Preempted`, and the command line prints `Preempted.line()` and exits with
`EXIT_CODE`. A second Ctrl-C stops at once (the default action). No
TensorFlow here.
"""

import os
import signal
import subprocess
import sys
import threading

# EX_TEMPFAIL of sysexits.h ("temporary failure: try again"): distinct from 0 (done), 1 (an error, one
# "error:" line) and 128 + n (killed by signal n).
EXIT_CODE = 75

# The signals that stop a run at the next step.
SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)

# The signal on which `--requeue_on_signal` requeues the Slurm job: Slurm's warning before the time limit.
# SIGTERM (scancel, preemption, the time limit itself) saves the run without requeueing it.
REQUEUE_SIGNAL = "SIGUSR1"


class Preempted(Exception):
    """A run stopped by a signal after its backup was written: `step` steps trained, in epoch `epoch`
    (counted from 1), `workdir` the directory to rerun on, `signal` the signal's name."""

    def __init__(self, step, epoch, signal_name, workdir=None, chief=True):
        super().__init__(f"stopped by {signal_name} at step {step} of epoch {epoch}")
        self.step = step
        self.epoch = epoch
        self.signal = signal_name
        self.workdir = workdir
        self.chief = chief

    def line(self):
        """The one line the command prints."""
        return (
            f"preempted: saved the run at step {self.step} of epoch {self.epoch} in {self.workdir}; "
            "rerun the same command to resume"
        )


class BackupError(RuntimeError):
    """A backup that cannot be written (the previous one is kept) or read (the run is not started); the
    message is one line naming the path and the error."""


def one_line(err):
    """`err` (an exception) as one line: its type and message, whitespace collapsed."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class StopRequest:
    """Records the first stop signal received while installed (`with StopRequest(): ...`).

    `requested` is None or the signal's name ("SIGTERM", "SIGUSR1", "SIGINT").
    The handlers only set it: Python runs them between two bytecodes, so a
    compiled call in flight always finishes. After the first SIGINT, SIGINT
    gets its default action back: a second Ctrl-C stops the process at once.
    Outside the main thread (where Python cannot install handlers) it does
    nothing and `requested` stays None. Leaving the block restores the
    previous handlers.
    """

    def __init__(self, signals=SIGNALS):
        self.signals = tuple(signals)
        self.requested = None
        self.previous = {}

    def __enter__(self):
        self.install()
        return self

    def __exit__(self, *exc):
        self.uninstall()
        return False

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in self.signals:
            self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def uninstall(self):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self.previous = {}

    def handle(self, signum, frame=None):
        if self.requested is None:
            self.requested = signal.Signals(signum).name
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            print("stopping after the step in flight (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)


def epoch_of(step, steps_per_epoch):
    """The epoch (counted from 1) that global step `step` (counted from 1) belongs to."""
    return max(step - 1, 0) // steps_per_epoch + 1


def slurm_job():
    """The Slurm job id of this process, or None outside a Slurm job."""
    return os.environ.get("SLURM_JOB_ID") or None


def requeue(job=None, run=subprocess.run):
    """Requeues Slurm job `job` (default: this process's) with `scontrol requeue`; returns one line saying what
    happened (the job requeued, or why not)."""
    job = job or slurm_job()
    if job is None:
        return "not requeued: SLURM_JOB_ID is not set (not a Slurm job)"
    try:
        out = run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return f"not requeued: scontrol is not on PATH (requeue Slurm job {job} yourself)"
    except (OSError, subprocess.SubprocessError) as err:
        return f"not requeued: scontrol requeue {job} failed ({one_line(err)})"
    if out.returncode != 0:
        return f"not requeued: scontrol requeue {job} exited with {out.returncode} ({' '.join(out.stderr.split())})"
    return f"requeued Slurm job {job}"
