"""tools/device_check.sh, the accelerator check: its arguments, and (slow) its tiny run end to end on a CPU."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "device_check.sh")


def _run(*args, env=None, timeout=60):
    return subprocess.run(
        ["bash", SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_arguments():
    assert os.access(SCRIPT, os.X_OK)
    help_text = _run("--help")
    assert help_text.returncode == 0 and "tools/device_check.sh [--tiny] [OUT_DIR]" in help_text.stdout
    for bad in (["--fast"], ["a", "b"]):
        result = _run(*bad)
        assert result.returncode == 2 and "usage: tools/device_check.sh [--tiny] [OUT_DIR]" in result.stderr, bad
    # A Python without TensorFlow: one line saying so, before anything runs.
    result = _run("--tiny", "/nonexistent/out", env={"PYTHON": "/bin/false"})
    assert result.returncode == 1 and "cannot import TensorFlow" in result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="bash and coreutils' timeout")
def test_without_a_gpu_the_full_check_refuses_to_start(tmp_path):
    result = _run(str(tmp_path / "out"), env={"PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}, timeout=120)
    assert result.returncode == 2 and "no GPU" in result.stderr, result.stderr
    assert not (tmp_path / "out" / "device_check.json").exists()


@pytest.mark.slow  # minutes on a CPU; the arguments and the no-GPU refusal above are the default coverage
def test_tiny_run_writes_every_part_s_json(tmp_path):
    out = tmp_path / "out"
    result = _run("--tiny", str(out), env={"PYTHON": sys.executable}, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "device_check.json").read_text())
    parts = {p["name"]: p for p in report["parts"]}
    assert report["tiny"] and list(parts) == [
        "bench_short_steps_float32",
        "bench_short_steps_mixed_float16",
        "quickstart_mixed_precision",
        "bench_whole_run",
    ]
    for name in ("bench_short_steps_float32", "bench_short_steps_mixed_float16"):
        bench = json.loads((out / f"{name}.json").read_text())
        assert parts[name]["status"] == "ok" and bench["complete"], name
        assert list(bench["settings"]) == ["default:1", "xla:16"]
        precision = "mixed_float16" if "mixed" in name else "float32"
        assert all(s["precision"] == precision for s in bench["settings"].values())
    quick = parts["quickstart_mixed_precision"]
    if quick["status"] == "ok":
        summary = json.loads((out / "quickstart_mixed_precision_summary.json").read_text())
        config = json.loads((out / "quickstart_mixed_precision_config.json").read_text())
        assert config["mixed_precision"] and summary["epochs"] == 1
        whole = json.loads((out / "bench_whole_run.json").read_text())
        assert parts["bench_whole_run"]["status"] == "ok" and whole["complete"]
        assert set(whole["arms"]) == {"trainer", "plain:resnet8p14"} and whole["ratios"]["wall_s"]["median"] > 0
    else:
        assert quick["status"].startswith("skipped: no Fashion-MNIST"), quick
        assert parts["bench_whole_run"]["status"].startswith("skipped: no Fashion-MNIST")
