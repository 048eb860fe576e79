"""The README as a newcomer uses it: its two commands, the set-up they share, its Python code as written. The
README is the documentation's home page (docs/index.md) with its links pointed into docs/."""

import os
import re
import shutil
import subprocess
import sys

from testing_utils import ROOT
from testing_utils import read_page
from testing_utils import requires_fashion_mnist
from testing_utils import run_snippet

sys.path.insert(0, os.path.join(ROOT, "tools"))
import docs_blocks  # noqa: E402


def _readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def _section(title, text=None):
    return (text or _readme()).split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _commands():
    """The commands of the README's set-up block, without their comments."""
    block = _section("Install").split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_two_commands_set_up_run_and_test_and_ci_runs_the_second():
    assert _commands() == ["./quickstart.sh", "./test.sh"]
    for script, runs in (
        ("quickstart.sh", ".venv/bin/python -m keras_motivation.train --flagfile=configs/quickstart.flags"),
        ("test.sh", ".venv/bin/python -m pytest"),
    ):
        path = os.path.join(ROOT, script)
        assert os.access(path, os.X_OK), script
        with open(path) as f:
            text = f.read()
        # Each sets up what is missing first, then runs its job.
        assert text.index("tools/setup_venv.sh") < text.index(runs), script
    with open(os.path.join(ROOT, "test.sh")) as f:
        text = f.read()
    assert text.index("ruff format --check .") < text.index("ruff check .") < text.index("-m pytest")
    # The documentation site builds strictly (a dead link or a missing page fails) before the tests run.
    assert text.index("ruff check .") < text.index("mkdocs build --strict") < text.index("-m pytest")
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = [line for line in f.read().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == _commands()[1], "CI runs exactly the README's test command"


def test_the_readme_is_the_home_page_and_a_front_door_that_links_into_the_docs():
    """The home page with its links pointed into docs/, at most 250 lines; every relative link points at a file of
    the repository."""
    text = _readme()
    assert text == docs_blocks.readme(read_page("index.md")), "run python tools/docs_blocks.py --write"
    assert len(text.splitlines()) <= 250, len(text.splitlines())
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert sum(link.startswith("docs/") for link in links) >= 10, links
    missing = [link for link in links if "://" not in link and not os.path.exists(os.path.join(ROOT, link))]
    assert not missing, missing
    # What the home page opens with: what it does, the version, then how to install it.
    assert text.index("## Install") < text.index("## A complete example") < text.index("## The quickstart")
    assert f"Version {docs_blocks.version()} " in text.split("\n## ", 1)[0]


def test_the_console_command_is_named_and_installed():
    assert "keras-motivation-train" in read_page("trainer.md")
    with open(os.path.join(ROOT, "setup.py")) as f:
        assert '"keras-motivation-train=keras_motivation.train:cli"' in f.read()


# -- tools/setup_venv.sh, with stand-ins for python3, apt-get and pip ----------------------------

FAKE_PYTHON3 = r"""#!/bin/sh
echo "python3 $*" >> "$LOG"
if [ "$1" = "-c" ]; then [ -n "$HAS_ENSUREPIP" ]; exit; fi
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  printf '#!/bin/sh\necho "python $*" >> "$LOG"\n' > "$3/bin/python"
  printf '#!/bin/sh\necho "pip $*" >> "$LOG"\n' > "$3/bin/pip"
  chmod +x "$3/bin/python" "$3/bin/pip"
fi
"""
FAKE_APT = '#!/bin/sh\necho "apt-get $*" >> "$LOG"\n'


# What the default extras install: the package with keras-hub's dependencies, then keras-hub without
# them (its tensorflow-text would bring the full tensorflow wheel beside tensorflow-cpu).
HUB_INSTALL = ["pip install -e .[cpu,dev,hub]", "pip install --no-deps keras-hub==0.32.*"]


def _checkout(tmp_path):
    """A copy of the set-up script and setup.py, and a bin/ of stand-ins first on PATH."""
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "tools", "setup_venv.sh"), repo / "tools")
    shutil.copy(os.path.join(ROOT, "setup.py"), repo)
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, text in (("python3", FAKE_PYTHON3), ("apt-get", FAKE_APT)):
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    return repo, fake


def _set_up(repo, fake, log, **env):
    log.write_text("")
    full = {
        "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
        "LOG": str(log),
        "FASHION_MNIST_DIR": str(repo),  # there: no apt-get for the data
        "HOME": str(repo),
        **env,
    }
    run = subprocess.run([str(repo / "tools" / "setup_venv.sh")], capture_output=True, text=True, env=full, timeout=60)
    assert run.returncode == 0, run.stderr
    return log.read_text().splitlines(), run.stderr


def test_set_up_does_only_what_is_missing(tmp_path):
    if os.geteuid() != 0 and not shutil.which("sudo"):
        import pytest

        pytest.skip("the set-up script's apt-get path needs root or sudo")
    repo, fake = _checkout(tmp_path)
    log = tmp_path / "calls.log"
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    # A fresh machine: neither package, no .venv.
    calls, stderr = _set_up(repo, fake, log, FASHION_MNIST_DIR=str(tmp_path / "absent"))
    assert calls == [
        "python3 -c import ensurepip",
        *(" ".join([*sudo, c]) for c in ("apt-get update", "apt-get install -y python3-venv dataset-fashion-mnist")),
        "python3 -m venv .venv",
        *HUB_INSTALL,
    ], calls
    assert "set-up: apt-get install python3-venv dataset-fashion-mnist" in stderr
    assert (repo / ".venv" / ".installed").read_text().startswith("cpu,dev,hub ")
    # Set up: the next call does nothing.
    assert _set_up(repo, fake, log) == ([], "")
    # The data's packages missing alone: apt-get installs it and nothing else.
    calls, _ = _set_up(repo, fake, log, FASHION_MNIST_DIR=str(tmp_path / "absent"))
    assert calls == [" ".join([*sudo, c]) for c in ("apt-get update", "apt-get install -y dataset-fashion-mnist")]
    # A changed setup.py, or other extras, install again into the same environment.
    with open(repo / "setup.py", "a") as f:
        f.write("# a new dependency\n")
    assert _set_up(repo, fake, log)[0] == HUB_INSTALL
    # Without the hub extra, no keras-hub; with it on a CUDA host, keras-hub beside tensorflow[and-cuda].
    assert _set_up(repo, fake, log, KERAS_MOTIVATION_EXTRAS="gpu,dev")[0] == ["pip install -e .[gpu,dev]"]
    assert _set_up(repo, fake, log, KERAS_MOTIVATION_EXTRAS="gpu,dev") == ([], "")
    assert _set_up(repo, fake, log, KERAS_MOTIVATION_EXTRAS="gpu,dev,hub")[0] == [
        "pip install -e .[gpu,dev,hub]",
        HUB_INSTALL[1],
    ]
    # A changed set-up script installs again too.
    with open(repo / "tools" / "setup_venv.sh", "a") as f:
        f.write("# a new step\n")
    assert _set_up(repo, fake, log)[0] == HUB_INSTALL
    # Python can make environments (ensurepip) and .venv is gone: no apt-get.
    shutil.rmtree(repo / ".venv")
    calls, _ = _set_up(repo, fake, log, HAS_ENSUREPIP="1")
    assert calls == ["python3 -c import ensurepip", "python3 -m venv .venv", *HUB_INSTALL]


# -- the Python code ------------------------------------------------------------------------------


def _python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, re.S)


@requires_fashion_mnist
def test_the_complete_example_and_the_python_guide_run_as_written(tmp_path):
    """The home page's (and README's) complete example, then the Python guide's lines that continue it, in one
    process as a reader pastes them: about 60 s on 2 cores (two dual fits of 2 epochs on 1,024 images)."""
    example = _python_blocks(_section("A complete example"))[0]
    assert "train_ds =" in example and "val_ds =" in example, "the example defines its data"
    guide = _python_blocks(read_page("guides/python.md"))[0]
    assert guide.startswith("# Continues the complete example"), "the guide says what it continues"
    run = run_snippet(example + guide, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    printed = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert "'motivated_accuracy'" in printed[0], printed  # the example's evaluate
    assert "'motivated_steps'" in printed[1], printed  # the guide's counters
    for name in ("base.keras", "motivated.keras", "motivated_model.keras"):
        assert (tmp_path / name).stat().st_size > 10_000, name
