"""The documentation site: the flags reference is written from the config, and a dead link fails the build."""

import dataclasses
import os
import shutil
import subprocess
import sys

import pytest
from testing_utils import ROOT

DOCS = os.path.join(ROOT, "docs")


def _flags_hook():
    sys.path.insert(0, os.path.join(DOCS, "hooks"))
    try:
        import flags_reference
    finally:
        sys.path.pop(0)
    return flags_reference


def test_the_flags_reference_is_written_from_every_config_field():
    from keras_motivation.config import TrainConfig

    hook = _flags_hook()
    with open(os.path.join(DOCS, "flags.md"), encoding="utf-8") as f:
        page = f.read()
    assert hook.MARKER in page and "| `--" not in page, "the page holds the marker, not the flags written out"
    text = hook.on_page_markdown(page, page=None)
    for field in dataclasses.fields(TrainConfig):
        row = next((line for line in text.splitlines() if line.startswith(f"| `--{field.name}` |")), None)
        assert row, field.name
        assert row.endswith(f" | {hook._cell(field.metadata['help'])} |"), field.name
    # The class's section comments group the flags.
    assert {"## What to train", "## Data", "## Recipe", "## Running"} <= set(text.splitlines())


def test_a_dead_link_fails_the_strict_build(tmp_path):
    """The site as committed, with one link to a page that does not exist: `mkdocs build --strict` (what
    ./test.sh runs) fails and names it. About 10 s on 2 cores (the API pages and the flags hook included)."""
    pytest.importorskip("mkdocs")
    for name in ("mkdocs.yml", "docs", "keras_motivation", os.path.join("tools", "examples", "pay_study", "report")):
        source = os.path.join(ROOT, name)
        if os.path.isdir(source):
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    with open(tmp_path / "docs" / "index.md", "a", encoding="utf-8") as f:
        f.write("\nSee [the missing page](no-such-page.md).\n")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert run.returncode != 0, run.stderr[-2000:]
    assert "no-such-page.md" in run.stderr, run.stderr[-2000:]
