"""Statistics recomputed only where stale, against recomputed at every read: accuracy of the same runs.

    python tools/stale_statistics.py tools/examples/pay_study_prefix14/ep6 tools/examples/clock_prefix14/ep6

Both folders hold the default arm's runs (`ARM/seed<S>/summary.json` and `history.csv`), the first made when the
default option recomputed every model's BatchNorm statistics at every read (before each validation, at the end),
the second with only stale statistics recomputed (`keras_motivation/engine/statistics.py`). Training never reads
the statistics, so where the two runs of a seed trained alike (the same training loss at every epoch, which the
table checks), the accuracies differ by the statistics alone. The second runs also report (`statistics_check`)
their final models with every statistic recomputed from 40 other training batches. Prints two markdown
tables: per model and seed (and as mean ± std) the final accuracy both ways, the paired difference and the
accuracy with all recomputed after training; then the validation accuracy at each epoch's end, both ways.
"""

import argparse
import csv
import os
import statistics
import sys

import runs as runs_lib

ARM = "grow0.45-joint-paper-bw2-rewarm0.1-recalibrated-lr0.1"


def _runs(folder, arm):
    """{seed: (summary, history rows)} of the finished runs of `arm` under `folder`."""
    out = {}
    root = os.path.join(folder, arm)
    for name in sorted(os.listdir(root)):
        run = runs_lib.read_run(os.path.join(root, name)) if name.startswith("seed") else None
        if run is not None:
            with open(os.path.join(run["dir"], "history.csv")) as f:
                out[int(name[4:])] = (run["summary"], list(csv.DictReader(f)))
    return out


def _fmt(values, spec=".2f"):
    """Fractions as percent, mean ± sd over seeds (`runs.fmt_mean_sd`)."""
    return runs_lib.fmt_mean_sd(*runs_lib.mean_sd([100 * v for v in values]), spec=spec, sd_spec=".2f")


def table(every_read, stale_only, arm=ARM):
    """Markdown: per seed (and mean ± std) each model's final accuracy with every read recomputed, with only stale
    statistics recomputed, and with all recomputed after training; then the validation accuracy per epoch."""
    old, new = _runs(every_read, arm), _runs(stale_only, arm)
    seeds = sorted(set(old) & set(new))
    for seed in seeds:
        losses = [[row["loss"] for row in runs[seed][1]] for runs in (old, new)]
        if losses[0] != losses[1]:
            raise SystemExit(f"seed {seed}: the two runs trained differently (training losses {losses}).")
    head = ["model, seed", "every read recomputed", "only stale recomputed", "difference", "all recomputed after"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---|---|"]
    columns = {}
    for model in ("base", "motivated"):
        for seed in seeds:
            (a, _), (b, _) = old[seed], new[seed]
            values = (a[model]["accuracy"], b[model]["accuracy"], b["statistics_check"][model]["recomputed"])
            columns.setdefault(model, []).append(values)
            lines.append(
                f"| {model}, seed {seed} | {100 * values[0]:.2f} | {100 * values[1]:.2f} | "
                f"{100 * (values[1] - values[0]):+.2f} | {100 * values[2]:.2f} |"
            )
        every, stale, after = zip(*columns[model])
        lines.append(
            f"| {model}, {len(seeds)} seeds | {_fmt(every)} | {_fmt(stale)} | "
            f"{_fmt([s - e for s, e in zip(stale, every)], '+.2f')} | {_fmt(after)} |"
        )
    batches = [[runs[s][0]["activations"]["recalibration_batches"] for s in seeds] for runs in (old, new)]
    lines.append(
        f"| batches recomputed in a run | {statistics.median(batches[0]):g} | {statistics.median(batches[1]):g} | | |"
    )
    # The validation accuracy at each epoch's end (mean ± std over the seeds): the epochs as rows.
    epochs = len(old[seeds[0]][1])
    lines += [
        "",
        "| epoch | base, every read | base, only stale | motivated, every read | motivated, only stale |",
        "|---|---|---|---|---|",
    ]
    for e in range(epochs):
        cells = [
            _fmt([float(runs[s][1][e][key]) for s in seeds])
            for key in ("val_accuracy", "val_motivated_accuracy")
            for runs in (old, new)
        ]
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("every_read", help="a study folder (ep<E>) of runs that recomputed the statistics at every read")
    p.add_argument("stale_only", help="the same runs with only stale statistics recomputed")
    p.add_argument("--arm", default=ARM)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    text = table(args.every_read, args.stale_only, args.arm)
    print(text)
    return text


if __name__ == "__main__":
    main()
