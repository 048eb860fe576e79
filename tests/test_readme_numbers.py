"""The study and benchmark numbers of the README and the documentation pages are read back from the committed
run summaries and JSON, on the page each is written."""

import os
import statistics
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
RESULTS = "studies/index.md"
# Each committed study and the page that shows its table.
STUDY_PAGES = {
    "pay_study_tuned": "studies/first-pair.md",
    "pay_study_tuned_resnet20": "studies/second-pair.md",
    "pay_study_prefix14": "studies/prefix-pair.md",
    "stress_resnet8_resnet32_w8": "studies/stress-pair.md",
    "pay_study_prefix20": "studies/deeper-prefix-pair.md",
    "pay_study_vit_d2_d4": "studies/vit-depth-pair.md",
    "prefix_ladder": "studies/prefix-ladder.md",
}
EVERY_RUNG = "studies/every-rung.md"


def _table_rows(markdown):
    return [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| ---")]


def test_first_study_tables_match_the_committed_summaries():
    import docs_blocks
    import pays_report
    import report

    runs = report.find_runs([STUDY])
    assert len(runs) == 72, "the committed study: 3 seeds of every arm"
    front, dual = docs_blocks.markdown_tables(
        pays_report.pays_markdown(pays_report.classical_front(runs), pays_report.pays_rows(runs))
    )
    missing = [row for row in front if row not in _lines(FIRST_STUDY)]
    assert not missing, f"docs/{FIRST_STUDY}'s front differs from tools/examples/pay_study: {missing[:2]}"
    # The dual policies' table of 15 columns shows as two (accuracy, verdict): every cell of report.py's rows is
    # on the page, in the rows of its policy.
    page = _table_rows("\n".join(_lines(FIRST_STUDY)))
    for row in _table_rows("\n".join(dual)):
        cells = [c.strip() for c in row.strip("|").split("|")]
        shown = " | ".join(r for r in page if r.startswith(f"| {cells[0]} |"))
        missing = [c for c in cells if c not in shown]
        assert not missing, f"docs/{FIRST_STUDY} lacks {missing} of {cells[0]}"
    assert docs_blocks.first_study("statistics").splitlines()[2] in _lines("guides/batch-norm.md")
    rows = _table_rows(report.statistics_markdown(report.statistics_rows(runs)))
    missing = [row for row in rows if row not in _lines("guides/batch-norm.md")]
    assert not missing, f"docs/guides/batch-norm.md's table differs from tools/examples/pay_study: {missing[:2]}"


def test_benchmark_tables_are_what_bench_makes_of_the_committed_json():
    """Each table of the performance page is what bench.py makes of committed JSON: a `bench` block (its settings
    as columns, tools/docs_blocks.py) or a table printed by the `bench.py --table` command above it."""
    import re

    import bench
    import docs_blocks

    with open(os.path.join(ROOT, "docs", "performance.md"), encoding="utf-8") as f:
        text = f.read()
    lines = _lines("performance.md")
    blocks = re.findall(r"<!-- begin (bench [^>]*?) -->", text)
    assert len(blocks) >= 6, "the performance page's tables are written from bench JSON"
    for name in blocks:
        paths = [p for p in name.split()[1:] if p.endswith(".json")]
        # The block's measures are bench.py's --table figures, as columns.
        table = docs_blocks.transpose(bench.main(["--table", *paths]))
        rows = _table_rows(docs_blocks.block(name))
        assert len(rows) >= 2, name
        missing = [row for row in rows if row not in lines or row not in table.splitlines()]
        assert not missing, f"docs/performance.md's table {name} differs from bench.py's: {missing[:2]}"
    for paths in re.findall(r"python tools/bench\.py --table ((?:tools/examples/\S+\.json ?)+)", text):
        rows = _table_rows(bench.main(["--table", *paths.split()]))
        missing = [row for row in rows if row not in lines]
        assert not missing, f"docs/performance.md's table of {paths} differs from bench.py's: {missing[:2]}"


def test_whole_run_tables_are_what_bench_makes_of_the_committed_json():
    """The performance page's whole-run tables (`whole-run` blocks) are what `bench.py whole_run --table` prints
    of the committed JSON: the prefix pair at the study's budget among them."""
    import re

    import bench

    with open(os.path.join(ROOT, "docs", "performance.md"), encoding="utf-8") as f:
        text = f.read()
    blocks = re.findall(r"<!-- begin whole-run ([^>]*?) -->", text)
    for name in ("prefix14_ep6", "ladder_ep3", "balanced_ep3"):
        assert f"tools/examples/bench_whole_run_{name}.json" in " ".join(blocks), name
    lines = _lines("performance.md")
    for paths in blocks:
        rows = _table_rows(bench.main(["whole_run", "--table", *paths.split()]))
        assert len(rows) >= 12, paths
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
    # The page's header says "alone" where the tool's says X-C / Y-C (the paper's names for them).
    rows[0] = rows[0].replace("base − X-C", "base − alone").replace("motivated − Y-C", "motivated − alone")
    assert len(rows) > least_rows, "the committed tuned study: the learning-rate sweep and the joint arms"
    # A row of one seed shows no spread (it has none measured); a row of three does.
    for row in rows[1:]:
        assert ("±" in row) == (row.split(" | ")[2] != "1"), row
    missing = [row for row in rows if row not in _lines(STUDY_PAGES[study])]
    assert not missing, f"docs/{STUDY_PAGES[study]}'s table differs from tools/examples/{study}: {missing[:2]}"


def test_the_prefix_ladders_table_matches_its_committed_summaries():
    import pay_tables

    rows = _table_rows(pay_tables.ladder_table(os.path.join(ROOT, "tools", "examples", "prefix_ladder")))
    # The header and the default policy at three rates.
    assert rows[0].startswith("| arm |") and "| rung1 % |" in rows[0] and len(rows) == 4
    page = STUDY_PAGES["prefix_ladder"]
    missing = [row for row in rows if row not in _lines(page)]
    assert not missing, f"docs/{page}'s ladder table differs from tools/examples/prefix_ladder: {missing}"


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
    missing = [row for row in rows if row not in _lines(STUDY_PAGES[study])]
    assert not missing, (
        f"docs/{STUDY_PAGES[study]}'s gamma table differs from tools/examples/{study}/gammas.md: {missing[:2]}"
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
    with open(os.path.join(ROOT, "docs", STUDY_PAGES["pay_study_tuned_resnet20"]), encoding="utf-8") as f:
        text = " ".join(f.read().split())
    assert f"{figures[0]} and {figures[1]}" in text, figures


def test_the_evidence_table_is_what_the_study_tool_prints():
    """The results page's table: each policy against each network trained alone, the rows of
    `tools/pay_tables.py --evidence` in fewer columns (each model's reference beside its accuracy)."""
    import pay_tables

    rows = _table_rows(pay_tables.evidence_table())
    assert len(rows) >= 5 and rows[0] == pay_tables.EVIDENCE_HEAD
    policies = {row.split(" | ")[0].lstrip("| ").split(" ")[0] for row in rows[1:]}
    assert {"default", "paper"} <= policies, policies
    page = _lines(RESULTS)
    for row in rows[1:]:
        policy, pair, epochs, _, base, base_alone, mot, mot_alone, both, bigger = row.strip("| ").split(" | ")
        shown = f"| {policy} | `{pair}` | {epochs} | {base} ({base_alone}) | {mot} ({mot_alone}) | {both} | {bigger} |"
        assert shown in page, f"docs/{RESULTS} lacks the evidence row {shown}"


def test_the_quickstarts_result_and_references_are_the_committed_runs():
    """The home page (and README) shows what the committed quickstart run printed, and its two models beside each
    network trained alone for the same 6 epochs at its best rate in the prefix pair's study (mean ± sd over 3
    seeds), with the training compute of each; the printed lines say what its summary.json holds."""
    import json

    import pay_tables

    from keras_motivation import summary as summary_lib
    from keras_motivation import summary_json

    quickstart = os.path.join(ROOT, "tools", "examples", "quickstart")
    with open(os.path.join(quickstart, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(quickstart, "closing.txt"), encoding="utf-8") as f:
        printed = f.read().splitlines()
    home = _lines("index.md")
    missing = [line for line in printed if line not in home]
    assert not missing, f"docs/index.md's printed block differs from the committed run: {missing[:2]}"
    # What the run printed is what its summary says: the two models, the steps and the compute.
    assert printed[:3] == summary_lib.model_table(summary, "test")
    total = summary_json.training_flops(summary, "total") / 1e12
    assert f"compute:     {total:.2f} TFLOPs" in printed[4]
    assert summary["pair"] == "resnet8:resnet8p14" and summary["epochs"] == 6
    groups = pay_tables.summaries(os.path.join(ROOT, "tools", "examples", "pay_study_prefix14"))
    text = " ".join(" ".join(sorted(home)).split())
    compute = 0.0
    for arm, model in (("X-C", "base"), ("Y-C", "motivated")):
        # The network's best rate among those run on 3 seeds, chosen here apart from the tool's choice.
        name, runs = max(
            ((n, m) for (e, n), m in groups.items() if e == 6 and n.startswith(f"{arm}-lr") and len(m) == 3),
            key=lambda nm: statistics.mean(100 * summary_json.accuracy(s, model) for s in nm[1]),
        )
        values = [100 * summary_json.accuracy(s, model) for s in runs]
        flops = statistics.mean(summary_json.training_flops(s, "total") for s in runs) / 1e12
        compute += flops
        this_run = 100 * summary_json.accuracy(summary, model)
        cell = (
            f"| {this_run:.2f}% | {statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}% (3 seeds, rate "
            f"{name.split('-lr')[1]}) | {flops:.2f} TFLOPs alone |"
        )
        assert cell in text, cell
    assert f"| {total:.2f} TFLOPs in this run, {compute:.2f} alone |" in text, compute


def test_the_stale_statistics_tables_are_what_the_tool_makes_of_the_committed_runs():
    import stale_statistics

    examples = os.path.join(ROOT, "tools", "examples")
    table = stale_statistics.table(
        os.path.join(examples, "pay_study_prefix14", "ep6"), os.path.join(examples, "clock_prefix14", "ep6")
    )
    rows = _table_rows(table)
    assert len(rows) >= 10
    missing = [row for row in rows if row not in _lines("performance.md")]
    assert not missing, f"docs/performance.md's stale-statistics tables differ from the tool's: {missing[:2]}"


def test_every_rung_tables_set_each_model_beside_its_network_alone():
    """Issue 45's studies: each committed arm of every_rung_* beside the default's committed rows, every model with
    its network trained alone found (a difference, not a blank), on the page as its `rungs` block."""
    import pay_tables

    page = _lines(EVERY_RUNG)
    for folder, defaults in pay_tables.RUNG_STUDIES.items():
        assert f"<!-- begin rungs {folder} -->" in page, folder
        rows = pay_tables.rung_rows(None, pay_tables.rung_study_arms(folder))
        assert len(rows) > len(defaults), f"{folder}: no committed arm beside the default's"
        for row in rows:
            assert all(m["difference"] is not None for m in row["models"]), (folder, row["arm"])
            assert 0.9 < row["flops_vs_largest"] <= 1.0, (folder, row["arm"], row["flops_vs_largest"])
        missing = [r for r in _table_rows(pay_tables.rung_study_table(folder)) if r not in page]
        assert not missing, f"docs/{EVERY_RUNG}'s table of {folder} differs from its runs: {missing[:2]}"
