"""The benchmark's figures and tables (tools/bench.py): what each measure compares (`MEASURES`), the figures of
each clock from the timed epochs (`clock_results`), and the Markdown tables of one run (`markdown`), of several
settings (`summary_markdown`) and of several runs' JSON (`range_table`, the performance page's).

Reads and writes plain JSON-able values only: no TensorFlow import, so the documentation's tools read committed
JSON with it quickly.
"""

import statistics
import typing

# The time from the start of each timed epoch to its end inside `fit` (what a
# callback sees), under "<kind>:epoch"; the kinds' own times are whole one-epoch fits.
IN_EPOCH = ":epoch"


class Measure(typing.NamedTuple):
    """One figure of the benchmark, written once: the JSON summary, the printed summary and `--table` read it.

    `of` / `against`: the times it compares, a kind of KINDS (its epoch) or a time `epoch_times`
    derives (a switch, one base step, the predicted epoch, the condition's steps as plain fits); without
    `against`, the time itself. `median`: the ratio of the medians, at the top level of each clock's
    results; `paired`: the median of per-repeat ratios, under "paired", which a drift of the machine over
    the run does not move. `per_clock=False`: a figure of the run (wall-clock only), at the JSON's top
    level. `label`: its row in the printed summary (the paired ratio where there is no ratio of medians),
    formatted with `fmt`.
    """

    key: str
    of: str
    against: str | None = None
    median: bool = True
    paired: bool = False
    per_clock: bool = True
    label: str | None = None
    fmt: str = ".3f"


MEASURES = (
    Measure(
        "a_never_vs_plain_base",
        "never",
        "plain_base",
        paired=True,
        label="(a) Never / plain fit of the base (time ratio)",
    ),
    Measure(
        "b_always_vs_plain_motivated",
        "always",
        "plain_motivated",
        paired=True,
        label="(b) Always / plain fit of the motivated model",
    ),
    Measure("c_switch_pair_s", "switch_pair"),
    Measure(
        "c_switch_one_way_in_base_steps",
        "switch_one_way",
        "base_step",
        label="(c) one switch, in base training steps",
        fmt=".4f",
    ),
    Measure("d_condition_epoch_s", "condition"),
    Measure("d_predicted_epoch_s", "predicted"),
    Measure("d_measured_vs_predicted", "condition", "predicted", label="(d) k-condition epoch, measured / predicted"),
    Measure("d_as_plain_fits_epoch_s", "as_plain"),
    Measure(
        "d_condition_vs_plain_steps",
        "condition",
        "as_plain",
        paired=True,
        label="(d') k-condition epoch / its steps as plain fits",
    ),
    Measure(
        "f_update_only_vs_plain_base",
        "update_only",
        "plain_base",
        median=False,
        paired=True,
        label="(f) k-condition's update alone, no switch / plain fit of the base",
    ),
    Measure(
        "g_joint_vs_plain_both",
        "joint",
        "plain_both",
        paired=True,
        label="(g) joint step on every batch / plain fits of both models",
    ),
    Measure(
        "i_joint_vs_plain_motivated",
        "joint",
        "plain_motivated",
        paired=True,
        label="(i) joint step / plain fit of the motivated model (a prefix pair: one shared forward pass)",
    ),
    Measure(
        "j_joint3_vs_plain_three",
        "joint3",
        "plain_three",
        paired=True,
        label="(j) three-model joint step / plain fits of the three models",
    ),
    Measure(
        "k_joint3_vs_plain_third",
        "joint3",
        "plain_third",
        paired=True,
        label="(k) three-model joint step / plain fit of the largest model (a prefix ladder: one shared forward pass)",
    ),
    Measure(
        "h_recalibrated_vs_private_per_epoch",
        "recalibrated" + IN_EPOCH,
        "condition" + IN_EPOCH,
        paired=True,
        label="(h) default BatchNorm option (recalibrated) / private, per epoch, no validation data",
    ),
    Measure(
        "h_recalibrated_vs_private_per_fit",
        "recalibrated",
        "condition",
        paired=True,
        label="(h') the same, per one-epoch fit (its end's recomputation included)",
    ),
    # Throughputs (images/s), not times: the pipeline alone against the plain base model's fit.
    Measure("e_pipeline_images_per_s", "pipeline", per_clock=False),
    Measure(
        "e_pipeline_vs_base_model",
        "pipeline",
        "base_model",
        per_clock=False,
        label="(e) input pipeline / base model throughput",
        fmt=".1f",
    ),
)
MEASURE = {m.key: m for m in MEASURES}


PLAIN = ("plain_base", "plain_motivated", "plain_third")


def epoch_times(med, switch_s, count, steps):
    """One clock's median epoch times of the kinds, and the times derived from them and the
    condition's counts: a switch pair and one switch, a base step, the condition's epoch as
    (a), (b), (c) predict it, and its steps as plain fits of the two models (switches free).
    A derived time whose inputs were not measured (`--kinds`, no switch timed) is left out."""
    out = dict(med)
    if switch_s is not None:
        out["switch_pair"], out["switch_one_way"] = switch_s, switch_s / 2
    if "never" in med:
        out["base_step"] = med["never"] / steps
    if count is not None:
        base_steps, mot_steps = count["steps"] - count["motivated_steps"], count["motivated_steps"]
        if {"never", "always"} <= med.keys() and switch_s is not None:
            out["predicted"] = (
                base_steps * med["never"] / steps + mot_steps * med["always"] / steps + count["switches"] * switch_s / 2
            )
        if set(PLAIN[:2]) <= med.keys():
            out["as_plain"] = (base_steps * med["plain_base"] + mot_steps * med["plain_motivated"]) / steps
    if set(PLAIN[:2]) <= med.keys():
        out["plain_both"] = med["plain_base"] + med["plain_motivated"]
    if set(PLAIN) <= med.keys():
        out["plain_three"] = out["plain_both"] + med["plain_third"]
    return out


def _measured(m, times):
    return m.of in times and (m.against is None or m.against in times)


def figures(times, per_clock=True):
    """{key: value} of the measures with a ratio of medians (or a time), from `times` (those measured)."""
    return {
        m.key: times[m.of] if m.against is None else times[m.of] / times[m.against]
        for m in MEASURES
        if m.per_clock == per_clock and m.median and _measured(m, times)
    }


def clock_results(times, switch_times, count, steps, images):
    """One clock's results: images/s and ms/step of every kind, then every per-clock measure
    (ratios of medians at the top level, the paired ratios under "paired").

    `times`: {kind: [seconds per repeat]}, and {kind + IN_EPOCH: ...} for the epochs alone;
    `count`: the condition's counts per epoch (None when it was not timed)."""
    med = {k: statistics.median(v) for k, v in times.items()}
    # Per repeat: the epochs of one repeat, and the condition's steps as plain fits in it.
    each = dict(times)
    if set(PLAIN) <= times.keys():
        each["plain_three"] = [
            b + m + t for b, m, t in zip(times["plain_base"], times["plain_motivated"], times["plain_third"])
        ]
    if set(PLAIN[:2]) <= times.keys():
        each["plain_both"] = [b + m for b, m in zip(times["plain_base"], times["plain_motivated"])]
        if count is not None:
            base_steps, mot_steps = count["steps"] - count["motivated_steps"], count["motivated_steps"]
            each["as_plain"] = [
                (base_steps * b + mot_steps * m) / steps for b, m in zip(times["plain_base"], times["plain_motivated"])
            ]

    def paired(numerator, denominator):
        # The median of per-repeat ratios: a drift of the machine over the
        # run moves both epochs of a repeat alike.
        return statistics.median(n / d for n, d in zip(numerator, denominator))

    fits = [k for k in times if not k.endswith(IN_EPOCH)]
    return {
        "images_per_s": {k: images / med[k] for k in fits},
        "ms_per_step": {k: 1e3 * med[k] / steps for k in fits},
        **figures(epoch_times(med, statistics.median(switch_times) if switch_times else None, count, steps)),
        "paired": {m.key: paired(each[m.of], each[m.against]) for m in MEASURES if m.paired and _measured(m, each)},
    }


def _span(values, fmt):
    """'lo-hi' of the formatted values, or one value when they agree."""
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return lo if lo == hi else f"{lo}-{hi}"


def _settings(result):
    """{setting name: result} of one JSON, a multi-setting or a single run."""
    if "settings" in result:
        return result["settings"]
    args = result["args"]
    name = args["model"] if args["model"] != "pair" else args["pair"]
    return {f"{name} {args['strategy']}:{args['steps_per_execution']}": result}


def figure(clock, key, prefer_paired=True):
    """A measure's value in one clock's results: its paired ratio where it has one (or, with
    `prefer_paired=False`, its ratio of medians where it has one). None for a measure a run
    from before it, or without its variants (`--kinds`), lacks."""
    m = MEASURE[key]
    if m.paired and (prefer_paired or not m.median):
        return clock["paired"].get(key)
    return clock.get(key)


class Column(typing.NamedTuple):
    """A column of a summary table: its header, its value in one setting's result, its format."""

    header: str
    value: typing.Callable
    fmt: str


def _cpu(key):
    """A measure in CPU time (the paired ratio where there is one)."""
    MEASURE[key]  # a key no measure has fails at import
    return lambda r: figure(r["cpu_time"], key)


def _cpu_ms(kind):
    return lambda r: r["cpu_time"]["ms_per_step"].get(kind)


def _of_run(key):
    """A figure of the run (wall-clock), not of a clock."""
    MEASURE[key]
    return lambda r: r.get(key)


def _switches(r):
    counts = r.get("d_counts_per_epoch")
    return counts["switches"] if counts else None


# The performance page's tables (`--table`): per setting, the range over runs.
TABLE_COLUMNS = (
    Column("plain base ms/step", _cpu_ms("plain_base"), ".3g"),
    Column("`Never` ms/step", _cpu_ms("never"), ".3g"),
    Column("`Never` / plain", _cpu("a_never_vs_plain_base"), ".2f"),
    Column("`Always` / plain motivated", _cpu("b_always_vs_plain_motivated"), ".2f"),
    Column("one switch, in base steps", _cpu("c_switch_one_way_in_base_steps"), ".2g"),
    Column("`ConsecutiveDecrease(k)` / its steps as plain fits", _cpu("d_condition_vs_plain_steps"), ".2f"),
    Column("switches per epoch", _switches, ".0f"),
    Column("its update alone, no switch / plain base", _cpu("f_update_only_vs_plain_base"), ".2f"),
    Column("input pipeline / base model", _of_run("e_pipeline_vs_base_model"), ".0f"),
    Column(
        "`ConsecutiveDecrease(k)` ms/step, default BatchNorm option (one-epoch fit)", _cpu_ms("recalibrated"), ".3g"
    ),
    Column("default BatchNorm option / private, per epoch", _cpu("h_recalibrated_vs_private_per_epoch"), ".3f"),
    Column("the same, per one-epoch fit (its end's recomputation)", _cpu("h_recalibrated_vs_private_per_fit"), ".2f"),
    Column("joint step ms/step", _cpu_ms("joint"), ".3g"),
    Column("joint step on every batch / plain fits of both models", _cpu("g_joint_vs_plain_both"), ".3f"),
    Column("joint step / plain motivated", _cpu("i_joint_vs_plain_motivated"), ".3f"),
    Column("three-model joint step ms/step", _cpu_ms("joint3"), ".3g"),
    Column("three-model joint step / three plain fits", _cpu("j_joint3_vs_plain_three"), ".3f"),
    Column("three-model joint step / plain largest", _cpu("k_joint3_vs_plain_third"), ".3f"),
)

# The summary printed after several settings: one row per setting.
SUMMARY_COLUMNS = (
    Column("plain base ms/step", _cpu_ms("plain_base"), ".3f"),
    Column("Never", _cpu_ms("never"), ".3f"),
    Column("Never / plain", _cpu("a_never_vs_plain_base"), ".3f"),
    Column("plain motivated", _cpu_ms("plain_motivated"), ".3f"),
    Column("Always", _cpu_ms("always"), ".3f"),
    Column("Always / plain", _cpu("b_always_vs_plain_motivated"), ".3f"),
    Column("k-condition / its steps as plain fits", _cpu("d_condition_vs_plain_steps"), ".3f"),
    Column("its update alone / plain base", _cpu("f_update_only_vs_plain_base"), ".3f"),
    Column("recalibrated / private, per epoch", _cpu("h_recalibrated_vs_private_per_epoch"), ".3f"),
    Column("joint / plain both", _cpu("g_joint_vs_plain_both"), ".3f"),
)


def _present(columns, results):
    """The columns with a value in at least one of `results` (one setting's result each): a table of
    runs that did not take a measure (`--kinds`, runs from before it) leaves its column out."""
    return [c for c in columns if any(c.value(r) is not None for r in results)]


def _cell(value, fmt):
    return "" if value is None else format(value, fmt)


def _head(first, columns):
    headers = [*first, *(c.header for c in columns)]
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]


def range_table(results):
    """Markdown: per setting, the range over runs (JSON results) of the CPU-time figures; `--table` prints it.

    The ratios are the paired ones (median of per-repeat ratios).
    """
    per_run = [_settings(r) for r in results]
    columns = _present(TABLE_COLUMNS, [r for settings in per_run for r in settings.values()])
    lines = _head(("setting", "runs"), columns)
    for name in per_run[0]:
        runs = [settings[name] for settings in per_run if name in settings]
        cells = []
        for column in columns:
            values = [column.value(r) for r in runs]
            # Runs from before a measure was taken ((f)) leave its cell empty.
            cells.append(_span(values, column.fmt) if None not in values else "")
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_markdown(results):
    """One row per setting: CPU-time ms per step and the paired ratios against plain Keras."""
    columns = _present(SUMMARY_COLUMNS, results.values())
    lines = _head(("setting",), columns)
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(_cell(c.value(r), c.fmt) for c in columns) + " |")
    return "\n".join(lines)


def markdown(r):
    """One setting's result: every labelled measure from wall-clock and from CPU time."""
    c = r["cpu_time"]
    rows = [
        (m.label, figure(r, m.key, prefer_paired=False), figure(c, m.key, prefer_paired=False), m.fmt)
        for m in MEASURES
        if m.label and m.per_clock
    ]
    rows += [(f"ms/step {k}", v, c["ms_per_step"][k], ".3f") for k, v in r["ms_per_step"].items()]
    rows += [(f"images/s {k}", v, c["images_per_s"][k], ".0f") for k, v in r["images_per_s"].items()]
    lines = ["| measure | wall-clock | CPU time |", "|---|---|---|"]
    # Measures whose variants were not timed (`--kinds`) are left out.
    lines += [f"| {a} | {_cell(w, f)} | {_cell(t, f)} |" for a, w, t, f in rows if (w, t) != (None, None)]
    lines += [
        f"| {m.label} | {format(r[m.key], m.fmt)} | |"
        for m in MEASURES
        if m.label and not m.per_clock and r.get(m.key) is not None
    ]
    return "\n".join(lines)
