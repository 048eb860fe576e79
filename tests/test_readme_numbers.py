"""The study and benchmark numbers of the README and the documentation pages are read back from the committed
run summaries and JSON, on the page each is written."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
STUDY = os.path.join(ROOT, "tools", "examples", "pay_study")


def _lines(page):
    """The lines of README.md or of a page under docs/ (e.g. "studies/index.md")."""
    path = os.path.join(ROOT, page) if page == "README.md" else os.path.join(ROOT, "docs", page)
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n") for line in f}


def _text(page):
    return "\n".join(sorted(_lines(page)))


FIRST_STUDY = "studies/does-it-pay.md"
TUNED_STUDIES = "studies/index.md"


def _table_rows(markdown):
    return [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| ---")]


def test_first_study_tables_match_the_committed_summaries():
    import pays_report
    import report

    runs = report.find_runs([STUDY])
    assert len(runs) == 72, "the committed study: 3 seeds of every arm"
    front = pays_report.classical_front(runs)
    tables = {
        FIRST_STUDY: pays_report.pays_markdown(front, pays_report.pays_rows(runs)),
        "guides/batch-norm.md": report.statistics_markdown(report.statistics_rows(runs)),
    }
    for page, markdown in tables.items():
        rows = _table_rows(markdown)
        assert rows, page
        missing = [row for row in rows if row not in _lines(page)]
        assert not missing, f"docs/{page}'s table differs from tools/examples/pay_study: {missing[:2]}"


def test_benchmark_tables_are_what_bench_makes_of_the_committed_json():
    import re

    import bench

    with open(os.path.join(ROOT, "docs", "performance.md"), encoding="utf-8") as f:
        text = f.read()
    # Each table follows the command that prints it from committed runs.
    commands = re.findall(r"python tools/bench\.py --table ((?:tools/examples/\S+\.json ?)+)", text)
    assert len(commands) >= 4, "the performance page's tables name their JSON with a --table command"
    lines = _lines("performance.md")
    for paths in commands:
        table = bench.main(["--table", *paths.split()])
        rows = _table_rows(table)
        assert len(rows) >= 2, paths
        missing = [row for row in rows if row not in lines]
        assert not missing, f"docs/performance.md's table of {paths} differs from bench.py's: {missing[:2]}"


def test_whole_run_tables_are_what_bench_makes_of_the_committed_json():
    import re

    import bench

    with open(os.path.join(ROOT, "docs", "performance.md"), encoding="utf-8") as f:
        text = f.read()
    commands = re.findall(r"python tools/bench\.py whole_run --table ((?:tools/examples/\S+\.json ?)+)", text)
    assert commands, "the performance page's whole-run tables name their JSON with a whole_run --table command"
    lines = _lines("performance.md")
    for paths in commands:
        rows = _table_rows(bench.main(["whole_run", "--table", *paths.split()]))
        assert len(rows) >= 4, paths
        missing = [row for row in rows if row not in lines]
        assert not missing, f"docs/performance.md's whole-run table of {paths} differs from bench.py's: {missing[:2]}"


@pytest.mark.parametrize(
    "study, least_rows",
    # The quickstart's pair; ResNet-8 -> ResNet-20, the second pair (X-C: the first pair's runs, the same network).
    # resnet8:resnet8p14, the prefix pair: its twins and the default (X-C: the first pair's runs again).
    # The stress pair's twins and the deeper prefix pair's first seed (issue 40).
    [
        ("pay_study_tuned", 10),
        ("pay_study_tuned_resnet20", 8),
        ("pay_study_prefix14", 3),
        ("stress_resnet8_resnet32_w8", 3),
        ("pay_study_prefix20", 2),
        ("pay_study_vit_d2_d4", 6),
    ],
)
def test_tuned_study_tables_match_the_committed_summaries(study, least_rows):
    import pay_tables

    table = pay_tables.tuned_table(os.path.join(ROOT, "tools", "examples", study))
    rows = _table_rows(table)
    assert len(rows) > least_rows, "the committed tuned study: the learning-rate sweep and the joint arms"
    # A row of one seed shows no spread (it has none measured); a row of three does.
    for row in rows[1:]:
        assert ("±" in row) == (row.split(" | ")[2] != "1"), row
    missing = [row for row in rows if row not in _lines(TUNED_STUDIES)]
    assert not missing, f"docs/{TUNED_STUDIES}'s table differs from tools/examples/{study}: {missing[:2]}"


def test_the_prefix_ladders_table_matches_its_committed_summaries():
    import pay_tables

    rows = _table_rows(pay_tables.ladder_table(os.path.join(ROOT, "tools", "examples", "prefix_ladder")))
    # The header and the default policy at three rates.
    assert rows[0].startswith("| arm |") and "| rung1 % |" in rows[0] and len(rows) == 4
    missing = [row for row in rows if row not in _lines(TUNED_STUDIES)]
    assert not missing, f"docs/{TUNED_STUDIES}'s ladder table differs from tools/examples/prefix_ladder: {missing}"


@pytest.mark.parametrize("study, least_rows", [("pay_study_tuned", 5), ("pay_study_tuned_resnet20", 3)])
def test_differential_gammas_on_the_studies_page_are_the_committed_ones(study, least_rows):
    import pay_tables

    path = os.path.join(ROOT, "tools", "examples", study)
    with open(os.path.join(path, "gammas.md"), encoding="utf-8") as f:
        rows = _table_rows(f.read())
    assert len(rows) > least_rows, "the gammas explain the study"
    if study == "pay_study_tuned":
        assert any("-id-" in row for row in rows), "the identity-start arms explain the study"
    else:  # every row is made again from the runs' committed gammas.json
        assert _table_rows(pay_tables.gamma_table(path)) == rows
    missing = [row for row in rows if row not in _lines(TUNED_STUDIES)]
    assert not missing, (
        f"docs/{TUNED_STUDIES}'s gamma table differs from tools/examples/{study}/gammas.md: {missing[:2]}"
    )


def test_the_second_pairs_statistics_check_on_the_studies_page_is_the_committed_one():
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
    with open(os.path.join(ROOT, "docs", TUNED_STUDIES), encoding="utf-8") as f:
        text = " ".join(f.read().split())
    assert f"{figures[0]} and {figures[1]}" in text, figures


@pytest.mark.parametrize("page", ["README.md", TUNED_STUDIES])
def test_the_evidence_table_is_what_the_study_tool_prints(page):
    """The README's one table (and the studies page's copy): each policy against its twins, from the committed
    runs by `tools/pay_study.py --evidence`."""
    import pay_tables

    rows = _table_rows(pay_tables.evidence_table())
    assert len(rows) >= 5 and rows[0] == pay_tables.EVIDENCE_HEAD
    policies = {row.split(" | ")[0].lstrip("| ").split(" ")[0] for row in rows[1:]}
    assert {"default", "paper"} <= policies, policies
    missing = [row for row in rows if row not in _lines(page)]
    assert not missing, f"{page}'s evidence table differs from pay_study.py --evidence: {missing[:2]}"


def test_the_quickstarts_references_are_the_tuned_studys_best_rates():
    """The README shows the quickstart's closing lines beside each network trained alone for its 3 epochs at its
    best rate in the committed tuned study (mean ± sd over the seeds), and the compute of both."""
    import statistics

    import pay_tables

    from keras_motivation import summary_json as summary_lib

    groups = pay_tables._summaries(os.path.join(ROOT, "tools", "examples", "pay_study_tuned"))
    readme = " ".join(_text("README.md").split())
    compute = 0.0
    for arm, model in (("X-C", "base"), ("Y-C", "motivated")):
        best = pay_tables._best_classical(groups, 3, arm, model)
        (name, runs), *_ = [
            (n, m)
            for (e, n), m in groups.items()
            if e == 3 and n.startswith(f"{arm}-lr") and len(m) == 3
            if abs(statistics.mean(100 * summary_lib.accuracy(s, model) for s in m) - best) < 1e-9
        ]
        values = [100 * summary_lib.accuracy(s, model) for s in runs]
        flops = statistics.mean(summary_lib.training_flops(s, "total") for s in runs) / 1e12
        compute += flops
        rate = name.split("-lr")[1]
        cell = (
            f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}% (rate {rate}) | {flops:.2f} TFLOPs alone"
        )
        assert cell in readme, cell
    assert f"{compute:.2f} alone |" in readme, compute
