"""A clean console for the package's command-line tools (no TensorFlow import here).

TensorFlow's C++ start-up logs reach the terminal before anything of ours:
cpu_feature_guard and the grappler INFO lines honour TF_CPP_MIN_LOG_LEVEL,
but the absl lines written while `tensorflow` is imported ("WARNING: All log
messages before absl::InitializeLog() is called ...", "I... port.cc] oneDNN
custom operations are on ...") do not (TF 2.21). `quiet_tensorflow()` sets
TF_CPP_MIN_LOG_LEVEL=2 unless the user set it, and then imports TensorFlow
with the process's stderr captured, writing back every line except those
INFO ones. A user's own TF_CPP_MIN_LOG_LEVEL wins: then nothing is filtered.

`native_output_hidden()` does the same around one call into TensorFlow's C++
that prints whatever the log level (the LiteRT converter's quantizer writes
"fully_quantize: 0, inference_type: 6, ..." to stderr): what it wrote is shown
only when the call fails or when TF_CPP_MIN_LOG_LEVEL=0 asks for every line.
"""

import contextlib
import os
import re
import sys
import tempfile

# INFO lines in absl's format ("I1126 00:42:43.708849 ...") and the absl
# notice that precedes them; with level 2 TensorFlow itself drops INFO lines.
_NOISE = re.compile(r"^(I\d{4} [\d:.]+ +\d+ \S+:\d+\] |WARNING: All log messages before absl::InitializeLog\(\))")

_done = False


def quiet_tensorflow():
    """Sets TF_CPP_MIN_LOG_LEVEL=2 if unset and imports TensorFlow without its start-up INFO lines.

    Must run before anything imports TensorFlow; later calls do nothing.
    Returns True when it quieted the import.
    """
    global _done
    if _done:
        return False
    _done = True
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with start_up_lines_dropped():
        import tensorflow  # noqa: F401  (the import that logs)
    return True


@contextlib.contextmanager
def start_up_lines_dropped():
    """Runs the block with file descriptor 2 captured, then writes back every line but TensorFlow's start-up
    INFO lines (this module needs nothing of the package: docs/hooks loads it by path)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(keepends=True) if not _NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


@contextlib.contextmanager
def native_output_hidden():
    """Runs the block with file descriptors 1 and 2 (what C++ code writes to) sent to a temporary file.

    On an exception the captured text is written back to stderr before the
    exception goes on, so a failure keeps its diagnostics; otherwise it is
    dropped, unless TF_CPP_MIN_LOG_LEVEL=0 asks for every log line.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    failed = True
    with tempfile.TemporaryFile(mode="w+b") as captured:
        try:
            for fd in saved:
                os.dup2(captured.fileno(), fd)
            yield
            failed = False
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            if failed or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
                captured.seek(0)
                text = captured.read().decode("utf-8", "replace")
                if text:
                    sys.stderr.write(text)
                    sys.stderr.flush()
