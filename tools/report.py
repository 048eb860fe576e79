"""The paper's tables and figures from run directories.

    python tools/report.py RUN_DIR... --out=DIR

RUN_DIR is a trainer workdir or a folder of them (searched recursively for
summary.json). Writes three reports to DIR:

- the paper's results: results.md and results.csv (accuracy mean ± std per
  arm with the paper's naming, each model's forward FLOPs and the dual run's
  F_X-Y, ACC/FLOPs and ACC/F_Ratio, activation rates next to the noise level
  1/(k+1)!, wall-clock) and PNG figures: training
  dynamics of one X-Y run (per-batch loss with motivated batches marked,
  validation accuracy of both models per epoch, learning rate: the paper's
  Figure 2) and accuracy versus FLOPs;
- does the dual run pay? (when the runs hold X-C and Y-C runs, the classical
  front; tools/pays_report.py): pays.md, pays.json and accuracy_vs_compute.png,
  every dual policy against the best split of its compute between the two
  models trained alone;
- the BatchNorm statistics check (when runs made one): statistics.md and
  statistics.json, every model's accuracy as saved and with recomputed statistics.

A ladder's runs report a row per model (-B, -R1, ..., -M); its pay is its ends'.

Every number is read from the runs' summary.json (of any schema), history.csv
and batches.csv (tools/runs.py reads them). A mean over one seed is shown
without a spread.
"""

import argparse
import collections
import csv
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The pay rule, beside this file.
import pays_report  # noqa: E402
from runs import DUAL  # noqa: E402
from runs import X_C  # noqa: E402
from runs import Y_C  # noqa: E402
from runs import accuracy_percent  # noqa: E402
from runs import arm_of  # noqa: E402
from runs import dual_models  # noqa: E402
from runs import find_runs  # noqa: E402
from runs import fmt  # noqa: E402
from runs import fmt_mean_sd  # noqa: E402
from runs import lazy_module  # noqa: E402
from runs import mean_sd  # noqa: E402
from runs import model_names  # noqa: E402

conditions = lazy_module("keras_motivation.conditions")
files = lazy_module("keras_motivation.files")
flops_lib = lazy_module("keras_motivation.flops")
summary_json = lazy_module("keras_motivation.summary_json")


# -- report 1: the paper's results table (results.md, results.csv) and its figures ----


def rows_for(runs):
    """One row per (experiment, arm, model): accuracy mean ± std and costs."""
    groups = collections.defaultdict(list)
    for r in runs:
        c = r["config"]
        groups[(c["pair"], c["dataset"], c["epochs"], c.get("train_size"), arm_of(c))].append(r)
    rows = []
    # The paper's order (each condition's report_order): X-C, the X-Y variants, Y-C, then the random controls.
    rank = {cls.label.split()[0]: cls.report_order for cls in conditions.BY_NAME.values()}
    order = sorted(groups.items(), key=lambda kv: (kv[0][:4], rank.get(kv[0][4].split()[0], 1), kv[0][4]))
    for (pair, dataset, epochs, train_size, arm), members in order:
        names = model_names(pair)
        s0 = members[0]["summary"]
        models = {X_C: [("base", f"{names[0]}-C")], Y_C: [("motivated", f"{names[-1]}-C")]}.get(arm)
        # The paper's F_X-Y: the dual run's mean forward FLOPs per training pass (its ACC/FLOPs uses it).
        dual = None
        if models is None:
            label = "" if arm.startswith(DUAL) else f" {arm}"
            suffix = arm[len(DUAL) :] if arm.startswith(DUAL) else ""
            models = [(role, f"{name}{label}{suffix}") for role, name in dual_models(pair)]
            dual = mean_sd([summary_json.training_flops(m["summary"], "average_forward_per_image") for m in members])[0]
        for which, name in models:
            acc_mean, acc_std = mean_sd([accuracy_percent(m, which) for m in members])
            act = [m["summary"]["activations"] for m in members]
            rows.append(
                {
                    "experiment": f"{pair} {dataset} {epochs} ep" + (f" {train_size} ex" if train_size else ""),
                    "split": members[0]["config"].get("validation_split", "test"),
                    "arm": arm,
                    "model": name,
                    "role": which,
                    "seeds": len(members),
                    "accuracy_mean": acc_mean,
                    "accuracy_std": acc_std,
                    # The model's own forward FLOPs per image, whatever the arm.
                    "forward_flops": summary_json.forward_flops(s0, which),
                    "dual_forward_flops": dual,
                    "motivated_share": statistics.mean(summary_json.motivated_share(a) for a in act),
                    "noise_rate": summary_json.motivated_share(act[0], "noise_motivated_share"),
                    "triggers_per_step": statistics.mean(a.get("triggers_per_step", 0.0) for a in act),
                    "wall_clock_s": statistics.mean(m["summary"]["wall_clock_s"] for m in members),
                }
            )
    add_ratios(rows)
    return rows


def add_ratios(rows):
    """ACC/FLOPs of every X-Y-B row (at its run's F_X-Y, as the paper) and of Y-C, and ACC/F_Ratio against
    Y-C, per experiment (per MFLOP)."""
    by_exp = collections.defaultdict(dict)
    for r in rows:
        by_exp[r["experiment"]].setdefault(r["arm"], []).append(r)
    for arms in by_exp.values():
        xc, yc = arms.get(X_C, [None])[0], arms.get(Y_C, [None])[0]
        if (
            not xc
            or not yc
            or None in (xc["forward_flops"], yc["forward_flops"], xc["accuracy_mean"], yc["accuracy_mean"])
        ):
            continue
        mf = 1e6
        acc_per_flops = flops_lib.acc_per_flops
        yc_rate = acc_per_flops(
            yc["accuracy_mean"], xc["accuracy_mean"], yc["forward_flops"] / mf, xc["forward_flops"] / mf
        )
        yc["acc_per_mflop"] = yc_rate
        for arm, members in arms.items():
            if not arm.startswith(DUAL):
                continue
            b = members[0]
            if b["dual_forward_flops"] and b["dual_forward_flops"] != xc["forward_flops"]:
                b["acc_per_mflop"] = acc_per_flops(
                    b["accuracy_mean"], xc["accuracy_mean"], b["dual_forward_flops"] / mf, xc["forward_flops"] / mf
                )
                b["acc_f_ratio"] = b["acc_per_mflop"] / yc_rate if yc_rate else None
        for members in arms.values():
            for r in members:
                # Each model against its own architecture trained classically (a ladder's models between have none).
                ref = {"base": xc, "motivated": yc}.get(r["role"])
                if ref is not None and r is not ref and r["accuracy_mean"] is not None:
                    delta = r["accuracy_mean"] - ref["accuracy_mean"]
                    spread = max(r["accuracy_std"] or 0.0, ref["accuracy_std"] or 0.0)
                    r["delta_vs_classical"] = delta
                    r["within_one_std"] = abs(delta) <= spread


MARKDOWN_HEAD = (
    "| model | seeds | accuracy % (mean ± sd over seeds) | Δ vs classical, points | forward MFLOPs per image "
    "| F_X-Y: mean forward MFLOPs per training pass | ACC/MFLOP | ACC/F_Ratio | motivated share of steps "
    "| noise 1/(k+1)! | wall-clock s (mean) |"
)


def markdown(rows):
    """One table per experiment (pair, dataset, budget), under its own heading that names the split.
    Δ vs classical: a base (-B) against X-C, a motivated model (-M) against Y-C. Forward MFLOPs: the
    model's own; F_X-Y (dual runs): its run's mean over training passes, which the -B row's ACC/MFLOP
    uses (the paper's Eq. 1)."""
    head = MARKDOWN_HEAD
    out = []
    for experiment in dict.fromkeys(r["experiment"] for r in rows):
        members = [r for r in rows if r["experiment"] == experiment]
        out += [f"**{experiment}**, accuracy on the {members[0]['split']} split", "", head]
        out.append("|" + "---|" * (head.count("|") - 1))
        for r in members:
            acc = fmt_mean_sd(r["accuracy_mean"], r["accuracy_std"])
            delta = ""
            if "delta_vs_classical" in r:
                delta = f"{r['delta_vs_classical']:+.2f}" + (" (within 1 sd)" if r["within_one_std"] else "")
            out.append(
                f"| {r['model']} | {r['seeds']} | {acc} | {delta} | "
                f"{fmt(r['forward_flops'] and r['forward_flops'] / 1e6, '.2f')} | "
                f"{fmt(r['dual_forward_flops'] and r['dual_forward_flops'] / 1e6, '.2f')} | "
                f"{fmt(r.get('acc_per_mflop'), '.3g')} | "
                f"{fmt(r.get('acc_f_ratio'), '.2f')} | {r['motivated_share']:.3f} | {fmt(r['noise_rate'], '.3f')} | "
                f"{r['wall_clock_s']:.0f} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def plot_dynamics(run, path):
    """The paper's Figure 2 for one run: loss per batch, validation accuracy, learning rate."""
    batches = files.read_csv(os.path.join(run["dir"], "batches.csv"))
    history = files.read_csv(os.path.join(run["dir"], "history.csv"))
    fig, axes = plt.subplots(3, 1, figsize=(8, 9), sharex=False)
    steps = [int(b["step"]) for b in batches]
    loss = [float(b["batch_loss"]) for b in batches]
    axes[0].plot(steps, loss, lw=0.8, color="tab:blue", label="batch loss")
    # The rung that trained each batch (0: the base; a pair's motivated model is 1).
    mot = [(s, value) for s, value, b in zip(steps, loss, batches) if round(float(b["motivated"]))]
    if mot:
        bigger = "the motivated model" if len(run["config"]["pair"].split(":")) == 2 else "a bigger model"
        axes[0].scatter(*zip(*mot), s=10, color="tab:red", label=f"trained by {bigger}", zorder=3)
    c = run["config"]
    title = f"{c['pair']}, {arm_of(c)}, seed {c['seed']}: training dynamics"
    axes[0].set(xlabel="training step", ylabel="training loss (cross-entropy)", title=title)
    axes[0].legend()
    epochs = [int(h["epoch"]) + 1 for h in history]
    for label in summary_json.model_names(run["config"]["pair"]):
        key = "val_accuracy" if label == "base" else f"val_{label}_accuracy"
        if history and key in history[0]:
            axes[1].plot(epochs, [100 * float(h[key]) for h in history], marker="o", label=label)
    axes[1].set(xlabel="epoch", ylabel="validation accuracy (%)")
    if epochs:
        axes[1].set_xticks(epochs if len(epochs) <= 20 else epochs[:: len(epochs) // 10])
        axes[1].set_xlim(0.5, max(epochs) + 0.5)
    axes[1].legend()
    axes[2].plot(steps, [float(b["learning_rate"]) for b in batches], color="tab:green", label="learning rate")
    axes[2].set(xlabel="training step", ylabel="learning rate")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy_vs_flops(rows, path):
    fig, ax = plt.subplots(figsize=(7, 5))
    for r in rows:
        # A dual run's base at its run's F_X-Y (the paper's), every other model at its own FLOPs.
        f = r["dual_forward_flops"] if r["role"] == "base" and r["dual_forward_flops"] else r["forward_flops"]
        if f is None or r["accuracy_mean"] is None:
            continue
        marker = "s" if r["arm"] in (X_C, Y_C) else ("o" if r["model"].split()[0].endswith("-B") else "^")
        ax.errorbar(
            f / 1e6,
            r["accuracy_mean"],
            yerr=r["accuracy_std"],
            fmt=marker,
            capsize=3,
            label=r["model"],
        )
    ax.set(
        xlabel="forward MFLOPs per image (a dual run's base: its run's F_X-Y, the mean per training pass)",
        ylabel="test accuracy (%), mean ± sd over seeds",
        title="accuracy versus FLOPs",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(runs, out, written=None):
    """results.md, results.csv, dynamics.png and accuracy_vs_flops.png; returns the table's rows.
    `written`: a list the paths of the files are appended to."""
    written = [] if written is None else written
    rows = rows_for(runs)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(markdown(rows))
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        fields = sorted({k for r in rows for k in r})
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    # Figure 2 shows the paper's variant when there is one.
    xy = (
        sorted(
            (r for r in runs if arm_of(r["config"]).startswith(DUAL)),
            key=lambda r: (
                r["config"].get("differential_init", "paper") != "paper",
                r["config"].get("bn_statistics", "shared") != "shared",
                r["dir"],
            ),
        )
        or runs
    )
    plot_dynamics(xy[0], os.path.join(out, "dynamics.png"))
    plot_accuracy_vs_flops(rows, os.path.join(out, "accuracy_vs_flops.png"))
    written += [os.path.join(out, n) for n in ("results.md", "results.csv", "dynamics.png", "accuracy_vs_flops.png")]
    return rows


# -- report 3: the BatchNorm statistics check (statistics.md, statistics.json) --------


def statistics_rows(runs):
    """Per dual arm with a `statistics_check`: both models' test accuracy as
    saved and with BatchNorm statistics recomputed from training batches."""
    groups = collections.defaultdict(list)
    for r in runs:
        if "statistics_check" in r["summary"]:
            groups[(r["config"]["epochs"], arm_of(r["config"]))].append(r)
    rows = []
    for (epochs, arm), members in sorted(groups.items()):
        row = {"arm": arm, "epochs": epochs, "seeds": len(members)}
        # Every model the check covered (a ladder's models between too), smallest first.
        for model in (k for k in members[0]["summary"]["statistics_check"] if k != "batches"):
            checks = [m["summary"]["statistics_check"][model] for m in members]
            for key in ("as_saved", "recomputed"):
                row[f"{model}_{key}"], row[f"{model}_{key}_sd"] = mean_sd([100 * c[key] for c in checks])
            row[f"{model}_change"] = statistics.mean(100 * abs(c["recomputed"] - c["as_saved"]) for c in checks)
        rows.append(row)
    return rows


def statistics_markdown(rows):
    """One table per set of models (a pair's two; a ladder's every model), a row per arm."""
    out = []
    for models in dict.fromkeys(tuple(k[: -len("_change")] for k in r if k.endswith("_change")) for r in rows):
        head = " | ".join(f"{m} as saved % | {m} recomputed %" for m in models)
        out += [
            f"| arm | epochs | seeds | {head} | mean abs change ({' / '.join(models)}) |",
            "|---|---|---|" + "---|" * (2 * len(models) + 1),
        ]
        for r in rows:
            if tuple(k[: -len("_change")] for k in r if k.endswith("_change")) != models:
                continue
            cells = [fmt_mean_sd(r[f"{m}_{k}"], r[f"{m}_{k}_sd"]) for m in models for k in ("as_saved", "recomputed")]
            changes = " / ".join(f"{r[f'{m}_change']:.2f}" for m in models)
            out.append(f"| {r['arm']} | {r['epochs']} | {r['seeds']} | {' | '.join(cells)} | {changes} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_statistics(runs, out, written=None):
    """statistics.md and statistics.json, when runs made the check; `written`: a list the paths of the
    files are appended to."""
    written = [] if written is None else written
    checks = statistics_rows(runs)
    if checks:
        with open(os.path.join(out, "statistics.md"), "w") as f:
            f.write(statistics_markdown(checks))
        with open(os.path.join(out, "statistics.json"), "w") as f:
            json.dump(checks, f, indent=1)
        written += [os.path.join(out, n) for n in ("statistics.md", "statistics.json")]


# -- all three -----------------------------------------------------------------------


def write_report(paths, out, written=None):
    """The three reports of the runs under `paths`, into `out`; returns the results table's rows.
    `written`: a list the path of every file written is appended to."""
    runs = find_runs(paths)
    if not runs:
        raise SystemExit(f"No runs (summary.json + config.json) under {', '.join(paths)}.")
    os.makedirs(out, exist_ok=True)
    rows = write_results(runs, out, written)
    write_statistics(runs, out, written)
    names = model_names(runs[0]["config"]["pair"])
    # A ladder's pay is its ends' (the base's and the largest model's classical fronts).
    pays_report.write_pays(runs, out, (names[0], names[-1]), written)
    return rows


def parser():
    """The command line (no TensorFlow: `--help` is immediate and quiet)."""
    p = argparse.ArgumentParser(
        prog="python tools/report.py",
        description=__doc__.split("\n\n")[0],
        epilog=(
            "Writes results.md, results.csv, dynamics.png and accuracy_vs_flops.png; statistics.md and "
            "statistics.json when runs made the BatchNorm statistics check; pays.md, pays.json and "
            "accuracy_vs_compute.png when the runs hold X-C and Y-C runs and dual policies. Prints the results "
            "table and every file written."
        ),
    )
    p.add_argument(
        "runs", nargs="+", help="trainer workdirs, or folders searched for them (summary.json + config.json)"
    )
    p.add_argument("--out", required=True, help="the folder the reports are written to (made if missing)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    written = []
    rows = write_report(args.runs, args.out, written)
    print(markdown(rows))
    print(f"\nwritten: {', '.join(written)}")


if __name__ == "__main__":
    main()
