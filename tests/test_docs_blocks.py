"""tools/docs_blocks.py: every written block of the pages and README.md is what the committed runs give."""

import os
import sys

from testing_utils import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import docs_blocks  # noqa: E402


def test_every_block_and_the_readme_are_written_from_the_committed_runs():
    """A new committed run or study row reaches the pages by `python tools/docs_blocks.py --write`."""
    stale = []
    for path, text in docs_blocks.written().items():
        with open(path, encoding="utf-8") as f:
            if f.read() != text:
                stale.append(os.path.relpath(path, ROOT))
    assert not stale, f"stale: {stale}; run python tools/docs_blocks.py --write"


def test_the_pages_hold_the_blocks_the_issue_asks_for():
    with open(docs_blocks.HOME, encoding="utf-8") as f:
        home = f.read()
    for name in ("version", "quickstart-output", "quickstart-run", "quickstart-table"):
        assert f"<!-- begin {name} -->" in home, name
    with open(os.path.join(docs_blocks.DOCS, "studies", "index.md"), encoding="utf-8") as f:
        assert "<!-- begin evidence -->" in f.read()


def test_a_block_is_replaced_between_its_markers_and_an_unknown_one_is_refused():
    text = "a\n<!-- begin version -->\nold\n<!-- end version -->\nb\n"
    assert (
        docs_blocks.fill(text) == f"a\n<!-- begin version -->\n{docs_blocks.version_line()}\n<!-- end version -->\nb\n"
    )
    try:
        docs_blocks.fill("<!-- begin nothing -->\n<!-- end nothing -->\n")
    except ValueError as e:
        assert "Unknown block 'nothing'" in str(e)
    else:
        raise AssertionError("an unknown block must be refused")


def test_the_readme_points_the_home_pages_links_into_docs():
    home = "[a](guides/python.md) [b](glossary.md#arm) [c](changelog.md) [d](https://keras.io) [e](#install)"
    assert docs_blocks.readme(home) == (
        "[a](docs/guides/python.md) [b](docs/glossary.md#arm) [c](CHANGELOG.md) [d](https://keras.io) [e](#install)"
    )


def test_a_table_is_transposed_and_its_columns_selected():
    table = "| setting | runs | a | b |\n|---|---|---|---|\n| x | 1 | 2 | 3 |"
    assert docs_blocks.transpose(table) == "| measure | x |\n|---|---|\n| runs | 1 |\n| a | 2 |\n| b | 3 |"
    assert docs_blocks.select_columns(table, (0, 3)) == "| setting | b |\n|---|---|\n| x | 3 |"
