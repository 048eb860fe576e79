"""The README's study numbers are read back from the committed run summaries."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
STUDY = os.path.join(ROOT, "tools", "examples", "pay_study")


def _readme_lines():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return {line.rstrip("\n") for line in f}


def _table_rows(markdown):
    return [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| ---")]


def test_study_tables_in_the_readme_match_the_committed_summaries():
    import report

    runs = report.find_runs([STUDY])
    assert len(runs) == 72, "the committed study: 3 seeds of every arm"
    readme = _readme_lines()
    front = report.classical_front(runs)
    tables = {
        "does it pay": report.pays_markdown(front, report.pays_rows(runs)),
        "BatchNorm statistics": report.statistics_markdown(report.statistics_rows(runs)),
    }
    for name, markdown in tables.items():
        rows = _table_rows(markdown)
        assert rows, name
        missing = [row for row in rows if row not in readme]
        assert not missing, f"README's {name} table differs from tools/examples/pay_study: {missing[:2]}"


def test_benchmark_tables_in_the_readme_are_what_bench_makes_of_the_committed_json():
    import re

    import bench

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    # Each table follows the command that prints it from committed runs.
    commands = re.findall(r"python tools/bench\.py --table ((?:tools/examples/\S+\.json ?)+)", text)
    assert len(commands) >= 2, "the README's performance tables name their JSON with a --table command"
    readme = _readme_lines()
    for paths in commands:
        table = bench.main(["--table", *paths.split()])
        rows = _table_rows(table)
        assert len(rows) >= 2, paths
        missing = [row for row in rows if row not in readme]
        assert not missing, f"README's table of {paths} differs from what bench.py makes of it: {missing[:2]}"


@pytest.mark.parametrize(
    "study, least_rows",
    # The quickstart's pair; ResNet-8 -> ResNet-20, the second pair (X-C: the first pair's runs, the same network).
    [("pay_study_tuned", 10), ("pay_study_tuned_resnet20", 8)],
)
def test_tuned_study_table_in_the_readme_matches_the_committed_summaries(study, least_rows):
    import pay_study

    table = pay_study.tuned_table(os.path.join(ROOT, "tools", "examples", study))
    rows = _table_rows(table)
    assert len(rows) > least_rows, "the committed tuned study: the learning-rate sweep and the joint arms"
    # A row of one seed shows no spread (it has none measured); a row of three does.
    for row in rows[1:]:
        assert ("±" in row) == (row.split(" | ")[2] != "1"), row
    missing = [row for row in rows if row not in _readme_lines()]
    assert not missing, f"README's tuned-study table differs from tools/examples/{study}: {missing[:2]}"


@pytest.mark.parametrize("study, least_rows", [("pay_study_tuned", 5), ("pay_study_tuned_resnet20", 3)])
def test_differential_gammas_in_the_readme_are_the_committed_ones(study, least_rows):
    import pay_study

    path = os.path.join(ROOT, "tools", "examples", study)
    with open(os.path.join(path, "gammas.md"), encoding="utf-8") as f:
        rows = _table_rows(f.read())
    assert len(rows) > least_rows, "the gammas explain the study"
    if study == "pay_study_tuned":
        assert any("-id-" in row for row in rows), "the identity-start arms explain the study"
    else:  # every row is made again from the runs' committed gammas.json
        assert _table_rows(pay_study.gamma_table(path)) == rows
    missing = [row for row in rows if row not in _readme_lines()]
    assert not missing, f"README's gamma table differs from tools/examples/{study}/gammas.md: {missing[:2]}"


def test_the_second_pairs_statistics_check_in_the_readme_is_the_committed_one():
    import glob
    import json
    import statistics

    pattern = "pay_study_tuned_resnet20/ep6/grow0.45-joint-paper-bw2-rewarm0.1-lr0.1/seed*/statistics_check.json"
    checks = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tools", "examples", pattern))):
        with open(path) as f:
            checks.append(json.load(f))
    assert len(checks) == 3
    figures = []
    for model in ("base", "motivated"):
        values = [100 * c[model]["recomputed"] for c in checks]
        figures.append(f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}%")
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = " ".join(f.read().split())
    assert f"{figures[0]} and {figures[1]}" in text, figures
