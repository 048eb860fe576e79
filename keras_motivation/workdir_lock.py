"""One run per workdir: an exclusive `flock` on `<workdir>/.lock`, held for the whole run.

The operating system releases the lock when the holding process ends, however
it ends (a kill, a lost machine's process on NFS included once the server
notices), so a lock left by a killed run never blocks the restart that
resumes it. The file keeps the holder's host and process id for the error
message of the run that is refused. No TensorFlow here.
"""

import fcntl
import json
import os
import socket
import time

from keras_motivation.config import ConfigError

LOCK_NAME = ".lock"


class WorkdirBusyError(ConfigError):
    """Another live process holds the workdir; the message names it (host, process id)."""


class WorkdirLock:
    """A held lock; `release()` (or the process's end) frees it."""

    def __init__(self, path, fd, created):
        self.path = path
        self._fd = fd
        self._created = created

    def release(self):
        """Frees the lock; a workdir this lock created and nothing else used is removed again
        (a run that fails before its first file leaves no trace)."""
        if self._fd is None:
            return
        os.close(self._fd)  # closing the last descriptor releases the flock
        self._fd = None
        workdir = os.path.dirname(self.path)
        if self._created and os.listdir(workdir) == [LOCK_NAME]:
            try:
                os.unlink(self.path)
                os.rmdir(workdir)
            except OSError:
                pass


def holder(workdir):
    """{"host", "pid", "started"} written by the last run that held the lock, or {}."""
    try:
        with open(os.path.join(workdir, LOCK_NAME)) as f:
            return json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}


def acquire(workdir):
    """Locks `workdir` (created if needed) for this process, or raises WorkdirBusyError at once."""
    created = not os.path.isdir(workdir)
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        # The holder writes its name right after locking: give it a moment.
        for _ in range(20):
            info = holder(workdir)
            if info:
                break
            time.sleep(0.05)
        who = f"host {info.get('host', '?')}, process id {info.get('pid', '?')}" if info else "another process"
        since = f", started {info['started']}" if info.get("started") else ""
        raise WorkdirBusyError(
            f"Workdir {workdir} is in use by a running training run ({who}{since}): "
            "wait for it to end or stop it, or use another --workdir."
        ) from None
    info = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    os.fsync(fd)
    return WorkdirLock(path, fd, created)
