"""The blocks of the documentation that are written from committed runs, and README.md from the home page.

    python tools/docs_blocks.py --write   # rewrite every block (and README.md) from tools/examples/
    python tools/docs_blocks.py --check   # exit 1 naming each block that differs (tests/test_docs_blocks.py)

A block sits between two HTML comments, which neither the site nor GitHub shows:

    <!-- begin evidence -->
    ...written here...
    <!-- end evidence -->

Its name says what writes it (`BLOCKS`): `evidence` (the policies against each network trained alone, the rows of
`tools/pay_study.py --evidence`), `study <folder>` (a study's table, `pay_tables.tuned_table`), `rungs <folder>`
(every model of a ladder or prefix pair against its network alone, `pay_tables.rung_study_table`), `bench <json>
...` (a benchmark's table, `bench.py --table`, settings as columns), `whole-run <json> ...` (`bench.py whole_run
--table`), `stale-statistics <folder> <folder>` (`tools/stale_statistics.py`), `quickstart-output` and
`quickstart-table` (the committed quickstart run, tools/examples/quickstart), and so on. So a new committed run or
study row reaches the pages by running `--write`, not by hand. README.md is docs/index.md with its links pointed
into docs/: the front door and the site's home page say the same.
"""

import argparse
import json
import os
import re
import statistics
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

DOCS = os.path.join(ROOT, "docs")
EXAMPLES = os.path.join(ROOT, "tools", "examples")
QUICKSTART = os.path.join(EXAMPLES, "quickstart")
# The quickstart's references: each network trained alone at the quickstart's setting and budget.
QUICKSTART_TWINS = os.path.join(EXAMPLES, "pay_study_prefix14")
HOME, README = os.path.join(DOCS, "index.md"), os.path.join(ROOT, "README.md")
BLOCK = re.compile(r"(<!-- begin (?P<name>[^>]*?) -->\n)(?P<body>.*?)(<!-- end (?P=name) -->)", re.S)


# -- the quickstart ---------------------------------------------------------------------------------


def _quickstart():
    import runs as runs_lib

    summary = runs_lib.read_run(QUICKSTART)["summary"]
    with open(os.path.join(QUICKSTART, "run.json")) as f:
        run = json.load(f)
    return summary, run


def quickstart_output():
    """What the committed quickstart run printed at its end (closing.txt), as a text block."""
    with open(os.path.join(QUICKSTART, "closing.txt"), encoding="utf-8") as f:
        return "```text\n" + f.read().rstrip("\n") + "\n```"


def _minutes(seconds):
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes} min {s} s"


def quickstart_run():
    """The sentence that says where and how long the committed quickstart ran."""
    summary, run = _quickstart()
    load = run["load_average_1min"]
    return (
        f"The committed run (`tools/examples/quickstart`), on {run['date']} on {run['machine']}: "
        f"{_minutes(run['wall_clock_s'])} for the whole command, set-up already done, while the 1-minute load "
        f"average was {load['min']:.1f}-{load['max']:.1f} on its 2 cores (other jobs running); its training took "
        f"{_minutes(summary['cpu_time_s'])} of CPU time."
    )


def quickstart_table():
    """The quickstart's two models beside each network trained alone at the same budget (its best rate, 3 seeds),
    and the training compute of each."""
    import pay_tables
    import runs as runs_lib

    from keras_motivation import summary_json as summary_lib

    summary, _ = _quickstart()
    epochs = summary["epochs"]
    groups = pay_tables.summaries(QUICKSTART_TWINS)
    lines = [
        f"| model | this run (seed 0) | trained alone, {epochs} epochs | training compute |",
        "|---|---|---|---|",
    ]
    compute_alone = 0.0
    for role, model in (("X-C", "base"), ("Y-C", "motivated")):
        rate, best = pay_tables.best_alone(groups, epochs, role, model)
        values = [100 * summary_lib.accuracy(s, model) for s in best]
        flops = statistics.mean(summary_lib.training_flops(s, "total") for s in best) / 1e12
        compute_alone += flops
        entry = summary_lib.model_entry(summary, model)
        lines.append(
            f"| {model}: {entry['architecture']} | {100 * entry['accuracy']:.2f}% "
            f"| {runs_lib.fmt_mean_sd(*runs_lib.mean_sd(values))}% ({len(values)} seeds, rate {rate}) "
            f"| {flops:.2f} TFLOPs alone |"
        )
    total = summary_lib.training_flops(summary, "total") / 1e12
    lines.append(f"| both | | | {total:.2f} TFLOPs in this run, {compute_alone:.2f} alone |")
    return "\n".join(lines)


# -- the studies ------------------------------------------------------------------------------------


def evidence():
    """The policies against each network trained alone (the rows of `pay_study.py --evidence`), in fewer
    columns: each model's accuracy with its trained-alone reference beside it."""
    import pay_tables
    import runs as runs_lib

    lines = [
        "| policy | pair | epochs | base % (alone) | motivated % (alone) | compute / both alone | / bigger alone |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in pay_tables.evidence_rows():
        base, motivated = runs_lib.fmt_mean_sd(*r["base"]), runs_lib.fmt_mean_sd(*r["motivated"])
        lines.append(
            f"| {r['policy']} | `{r['pair']}` | {r['epochs']} | {base} ({r['base_alone']:.2f}) "
            f"| {motivated} ({r['motivated_alone']:.2f}) | {r['share_of_both']:.2f} | {r['share_of_bigger']:.2f} |"
        )
    return "\n".join(lines)


# What a study's rows are, above its table (the study pages sit in docs/studies/, beside no glossary).
STUDY_ROWS = (
    "Rows `X-C-lr<rate>` and `Y-C-lr<rate>` are the base's network and the bigger one [trained\n"
    "alone](../glossary.md#trained-alone) at that learning rate (the paper's X-C and Y-C, the runs' folders); the\n"
    "others are dual runs, each named by its [arm](../glossary.md#arm)."
)


def study(folder):
    """A study's table: every arm at each budget against each network trained alone at its best rate, below a
    line that says what its rows are."""
    import pay_tables

    table = pay_tables.tuned_table(os.path.join(EXAMPLES, folder))
    head, rest = table.split("\n", 1)
    # The columns in plain words: X-C and Y-C (the paper's names, still the runs' folders) are each network alone.
    head = head.replace("base − X-C", "base − alone").replace("motivated − Y-C", "motivated − alone")
    return f"{STUDY_ROWS}\n\n{head}\n{rest}"


def ladder(folder):
    import pay_tables

    return pay_tables.ladder_table(os.path.join(EXAMPLES, folder))


def rungs(folder):
    """An issue-45 study's table: the default and every arm of `folder`, each model against its network alone."""
    import pay_tables

    return pay_tables.rung_study_table(folder)


def gammas(folder):
    """The differential blocks' gammas, as committed beside the study (gammas.md)."""
    with open(os.path.join(EXAMPLES, folder, "gammas.md"), encoding="utf-8") as f:
        return f.read().strip("\n")


# The archived first study's tables (tools/report.py's pays.md): the front, and the dual policies' table of 15
# columns as two, each model's accuracy and then the verdict (table index, columns).
FIRST_STUDY_PARTS = {
    "front": (0, None),
    "accuracy": (1, (0, 1, 2, 3, 4, 5, 6, 13, 14)),
    "verdict": (1, (0, 7, 8, 9, 10, 11, 12)),
}


def first_study(part):
    """The archived first study's tables (tools/report.py on tools/examples/pay_study): FIRST_STUDY_PARTS of
    its pays tables, or `statistics`."""
    import pays_report
    import report
    import runs as runs_lib

    runs = runs_lib.find_runs([os.path.join(EXAMPLES, "pay_study")])
    if part == "statistics":
        return report.statistics_markdown(report.statistics_rows(runs)).strip("\n")
    pays = pays_report.pays_markdown(pays_report.classical_front(runs), pays_report.pays_rows(runs))
    tables = ["\n".join(t) for t in markdown_tables(pays)]
    index, columns = FIRST_STUDY_PARTS[part]
    return tables[index] if columns is None else select_columns(tables[index], columns)


def markdown_tables(markdown):
    """The tables of a markdown text, each as its lines."""
    tables, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def select_columns(markdown, indices):
    """The columns `indices` of a markdown table."""
    out = []
    for line in markdown.splitlines():
        cells = line.strip().strip("|").split("|")
        out.append("|" + "|".join(cells[i] for i in indices) + "|")
    return "\n".join(out)


# -- the benchmarks ---------------------------------------------------------------------------------


def transpose(markdown):
    """A markdown table with its rows as columns: a one-row table of many measures becomes two columns."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in markdown.splitlines()]
    rows = [r for r in rows if not all(set(c) <= set("-") for c in r)]
    head, *body = rows
    columns = [["measure", *(r[0] for r in body)]] + [[h, *(r[i] for r in body)] for i, h in enumerate(head) if i]
    lines = ["| " + " | ".join(columns[0]) + " |", "|" + "---|" * len(columns[0])]
    lines += ["| " + " | ".join(c) + " |" for c in columns[1:]]
    return "\n".join(lines)


def bench(*arguments):
    """`bench.py --table PATHS` with its settings as columns (its measures as rows); arguments that are not JSON
    paths keep only the measures whose name holds one of them (letters and digits compared, lower case)."""
    import bench_tables

    paths = [a for a in arguments if a.endswith(".json")]
    keep = [a for a in arguments if not a.endswith(".json")]
    rows = transpose(bench_tables.range_table([_read_json(p) for p in paths])).splitlines()
    if keep:
        rows = rows[:3] + [r for r in rows[3:] if any(k in _letters(r.split(" | ")[0]) for k in keep)]
    return "\n".join(rows)


def whole_run(*paths):
    """`bench.py whole_run --table PATHS`: per committed whole-run benchmark, its arms as columns."""
    import bench_run

    return bench_run.tables([_read_json(p) for p in paths])


def whole_run_line(path):
    """The sentence that says what a committed whole run costs on the clock beside its FLOPs."""
    import bench_run

    r = _read_json(path)
    a, ratios = r["args"], r["ratios"]
    reference = " and ".join(k.split(":")[1] for k in r["arms"] if k != "trainer")
    cpu = bench_run.fmt_spread(ratios["cpu_s"])
    return (
        f"On the clock, the whole run ({a['pair']}, {a['epochs']} epochs) costs {cpu} "
        f"of plain `keras.Model.fit` of {reference} (the same data, pipeline, recipe and validation) in CPU time and "
        f"{bench_run.fmt_spread(ratios['wall_s'])} in wall-clock, for {r['training_flops_ratio']:.2f} of its "
        f"training FLOPs (medians and ranges of {len(r['arms']['trainer']['cpu_s'])} interleaved repeats on this "
        f"project's 2-core VM, {r['date']}: [performance](performance.md#a-whole-run-on-the-clock))."
    )


def stale_statistics(every_read, stale_only):
    """`tools/stale_statistics.py EVERY_READ STALE_ONLY`: accuracy with only stale statistics recomputed."""
    import stale_statistics as stale_lib

    return stale_lib.table(os.path.join(ROOT, every_read), os.path.join(ROOT, stale_only))


def _letters(text):
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _read_json(path):
    with open(os.path.join(ROOT, path)) as f:
        return json.load(f)


# -- the version ------------------------------------------------------------------------------------


def version():
    """The package's version (keras_motivation/version.py, read as text: no TensorFlow import)."""
    with open(os.path.join(ROOT, "keras_motivation", "version.py")) as f:
        return re.search(r'__version__ = "([^"]+)"', f.read()).group(1)


def version_line():
    return f"Version {version()} ([changelog](changelog.md)). Python 3.10+, TensorFlow 2.21, Keras 3.15+."


BLOCKS = {
    "version": version_line,
    "quickstart-output": quickstart_output,
    "quickstart-run": quickstart_run,
    "quickstart-table": quickstart_table,
    "evidence": evidence,
    "study": study,
    "ladder": ladder,
    "rungs": rungs,
    "gammas": gammas,
    "first-study": first_study,
    "bench": bench,
    "whole-run": whole_run,
    "whole-run-line": whole_run_line,
    "stale-statistics": stale_statistics,
}


def block(name):
    """The text of the block called `name`: a key of BLOCKS, then its arguments ("study pay_study_prefix14")."""
    key, *arguments = name.split()
    if key not in BLOCKS:
        raise ValueError(f"Unknown block {key!r}: use one of {', '.join(BLOCKS)}.")
    return BLOCKS[key](*arguments)


def fill(text, cache=None):
    """`text` with every block written again."""
    cache = {} if cache is None else cache

    def write(match):
        name = match["name"]
        if name not in cache:
            cache[name] = block(name)
        return f"{match.group(1)}{cache[name]}\n{match.group(4)}"

    return BLOCK.sub(write, text)


def readme(home):
    """README.md from the home page: the same text, its relative links pointed into docs/."""

    def point(match):
        target = match["target"]
        if re.match(r"[a-z]+:|#|/", target):
            return match.group(0)
        return f"]({'docs/' + target})"

    text = re.sub(r"\]\((?P<target>[^)\s]+)\)", point, home)
    return text.replace("](docs/changelog.md)", "](CHANGELOG.md)")


def pages():
    """The markdown files that may hold blocks: every page under docs/."""
    for folder, _, names in sorted(os.walk(DOCS)):
        for name in sorted(names):
            if name.endswith(".md"):
                yield os.path.join(folder, name)


def written():
    """{path: its text with every block written again}, README.md included."""
    cache, out = {}, {}
    for path in pages():
        with open(path, encoding="utf-8") as f:
            out[path] = fill(f.read(), cache)
    out[README] = readme(out[HOME])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write every block and README.md")
    mode.add_argument("--check", action="store_true", help="name each file whose blocks differ; exit 1 if any")
    args = p.parse_args(argv)
    stale = []
    for path, text in written().items():
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                continue
        stale.append(os.path.relpath(path, ROOT))
        if args.write:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    verb = "wrote" if args.write else "stale (run python tools/docs_blocks.py --write)"
    for path in stale:
        print(f"{verb}: {path}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
