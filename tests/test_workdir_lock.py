"""One run per workdir: a second run is refused at once, a killed run's lock blocks nothing."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from testing_utils import ROOT
from testing_utils import quickstart_command
from testing_utils import repository_env
from testing_utils import requires_fashion_mnist

from keras_motivation import workdir_lock

# Holds the lock of argv[1] until killed; loads workdir_lock.py by path (no TensorFlow import).
HOLDER = f"""
import importlib.util, sys, time
sys.path.insert(0, {ROOT!r})
spec = importlib.util.spec_from_file_location("config", {ROOT!r} + "/keras_motivation/config.py")
config = importlib.util.module_from_spec(spec); spec.loader.exec_module(config)
sys.modules["keras_motivation.config"] = config
spec = importlib.util.spec_from_file_location("workdir_lock", {ROOT!r} + "/keras_motivation/workdir_lock.py")
lock = importlib.util.module_from_spec(spec); spec.loader.exec_module(lock)
lock.acquire(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
"""


def _wait_for_line(proc, expected):
    line = proc.stdout.readline()
    assert line.strip() == expected, (line, proc.stderr.read() if proc.poll() is not None else "")


def test_second_holder_is_refused_naming_the_first_and_a_killed_holder_blocks_nothing(tmp_path):
    workdir = str(tmp_path / "run")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, workdir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for_line(proc, "locked")
        with pytest.raises(workdir_lock.WorkdirBusyError) as err:
            workdir_lock.acquire(workdir)
        message = str(err.value)
        assert "\n" not in message
        assert f"host {socket.gethostname()}, process id {proc.pid}" in message
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The OS released the killed holder's lock: the restart gets it and names itself.
    lock = workdir_lock.acquire(workdir)
    assert workdir_lock.holder(workdir)["pid"] == os.getpid()
    lock.release()


def test_a_lock_on_a_new_workdir_that_stays_unused_leaves_no_trace(tmp_path):
    lock = workdir_lock.acquire(str(tmp_path / "new"))
    lock.release()
    assert not os.path.exists(tmp_path / "new")
    (tmp_path / "old").mkdir()
    workdir_lock.acquire(str(tmp_path / "old")).release()
    assert os.listdir(tmp_path / "old") == [".lock"]  # not ours to remove


@requires_fashion_mnist
def test_two_trainers_on_one_workdir(tmp_path):
    workdir = tmp_path / "run"
    env = repository_env()
    cmd = quickstart_command(workdir, eval_size=64)
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 300
        while workdir_lock.holder(str(workdir)).get("pid") != first.pid:
            assert first.poll() is None and time.time() < deadline, (
                first.stderr.read() if first.poll() is not None else "timeout"
            )
            time.sleep(0.2)
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert second.returncode == 1
        last = second.stderr.strip().splitlines()[-1]
        assert last.startswith(
            f"error: Workdir {workdir} is in use by a running training run "
            f"(host {socket.gethostname()}, process id {first.pid}"
        ), second.stderr
        assert first.poll() is None  # the first one runs on
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-3000:]
    # The first run's files are its own: two epochs logged once, its summary.
    with open(workdir / "history.csv") as f:
        assert [line.split(",")[0] for line in f.read().splitlines()[1:]] == ["0", "1"]
    with open(workdir / "summary.json") as f:
        assert json.load(f)["activations"]["steps"] == 2 * (128 // 32)
