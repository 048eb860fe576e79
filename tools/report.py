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
  front): pays.md, pays.json and accuracy_vs_compute.png, every dual policy
  against the best split of its compute between the two models trained alone;
- the BatchNorm statistics check (when runs made one): statistics.md and
  statistics.json, both models' accuracy as saved and with recomputed statistics.

Every number is read from the runs' summary.json (of any schema), history.csv
and batches.csv. A mean over one seed is shown without a spread.
"""

import argparse
import collections
import csv
import importlib
import json
import math
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The pay rule, beside this file.
import pay_rule  # noqa: E402
from pay_rule import FrontPoint  # noqa: E402
from pay_rule import reach  # noqa: E402


class _Lazy:
    """A keras_motivation module imported at its first use: `--help` starts no TensorFlow."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)


conditions = _Lazy("keras_motivation.conditions")
files = _Lazy("keras_motivation.files")
flops_lib = _Lazy("keras_motivation.flops")
summary_json = _Lazy("keras_motivation.summary_json")

# The classical arms (one model trained alone; conditions.Never.label and conditions.Always.label, which a
# test checks) and how a dual run's arm starts.
X_C, Y_C = "X-C", "Y-C"
DUAL = "X-Y"


# -- the runs and their arms -------------------------------------------------------


def find_runs(paths):
    """Every run (a folder with summary.json and config.json) under `paths`, by folder."""
    runs = []
    for root in paths:
        for dirpath, _, names in os.walk(root):
            if "summary.json" in names and "config.json" in names:
                with open(os.path.join(dirpath, "summary.json")) as f:
                    summary = json.load(f)
                with open(os.path.join(dirpath, "config.json")) as f:
                    config = json.load(f)
                runs.append({"dir": dirpath, "summary": summary, "config": config})
    return sorted(runs, key=lambda r: r["dir"])


def model_names(pair):
    def pretty(name):
        for prefix, label in (("resnet", "ResNet-"), ("efficientnet_b", "EffNet-B"), ("vit_", "ViT-")):
            if name.startswith(prefix):
                return label + name[len(prefix) :]
        return name

    x, y = pair.split(":")
    return pretty(x), pretty(y)


def arm_of(config):
    """The paper's arm of a run, from its config, with the start and the
    BatchNorm statistics option of a dual run: "X-Y k=2 (identity, recalibrated)".
    Each condition names its arm (`report_label`); a name no condition has any more reads "X-Y name"."""
    spec = conditions.ConditionSpec.parse(config["condition"])
    cls = conditions.BY_NAME.get(spec.name)
    if cls is None:
        arm = f"{DUAL} {spec.name}"
    else:
        arm = cls.report_label(spec.arguments, config.get("k"))
        if cls.classical:
            return arm
    return arm + f" ({config.get('differential_init', 'paper')}, {config.get('bn_statistics', 'shared')})"


def mean_std(values):
    """(mean, sample sd) of the values that are numbers; the sd is None for one value (no spread measured)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def fmt_mean_sd(mean, sd, spec=".2f"):
    """A mean with its sd, "85.57 ± 0.27"; the mean alone, "85.57", without a spread (one seed); "" without a
    mean."""
    if mean is None:
        return ""
    return format(mean, spec) + ("" if sd is None else f" ± {format(sd, spec)}")


def _accuracy(run, model):
    """A run's final accuracy of `model` ("base" or "motivated"), in %."""
    return 100 * summary_json.accuracy(run["summary"], model)


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
        x, y = model_names(pair)
        s0 = members[0]["summary"]
        models = {X_C: [("base", f"{x}-C")], Y_C: [("motivated", f"{y}-C")]}.get(arm)
        # The paper's F_X-Y: the dual run's mean forward FLOPs per training pass (its ACC/FLOPs uses it).
        dual = None
        if models is None:
            label = "" if arm.startswith(DUAL) else f" {arm}"
            suffix = arm[len(DUAL) :] if arm.startswith(DUAL) else ""
            models = [("base", f"{x}-{y}-B{label}{suffix}"), ("motivated", f"{x}-{y}-M{label}{suffix}")]
            dual = mean_std([summary_json.training_flops(m["summary"], "average_forward_per_image") for m in members])[
                0
            ]
        for which, name in models:
            acc_mean, acc_std = mean_std([_accuracy(m, which) for m in members])
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
                # Each model against its own architecture trained classically.
                ref = xc if r["role"] == "base" else yc
                if r is not ref and r["accuracy_mean"] is not None:
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
    mot = [(s, value) for s, value, b in zip(steps, loss, batches) if int(b["motivated"])]
    if mot:
        axes[0].scatter(*zip(*mot), s=10, color="tab:red", label="trained by the motivated model", zorder=3)
    c = run["config"]
    title = f"{c['pair']}, {arm_of(c)}, seed {c['seed']}: training dynamics"
    axes[0].set(xlabel="training step", ylabel="training loss (cross-entropy)", title=title)
    axes[0].legend()
    epochs = [int(h["epoch"]) + 1 for h in history]
    for key, label in (("val_accuracy", "base"), ("val_motivated_accuracy", "motivated")):
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


# -- report 2: does the dual run pay? (pays.md, pays.json, accuracy_vs_compute.png) ---
# The rule is pay_rule.py's. Compute is the training FLOPs summary.json counts
# (forward + backward of every trained example, both models, the final BatchNorm
# recalibration); CPU time is reported beside it.


def _training_flops(run):
    return summary_json.training_flops(run["summary"], "total")


def classical_front(runs):
    """{"base"|"motivated": [FrontPoint, ...] by compute} from X-C and Y-C runs."""
    groups = collections.defaultdict(list)
    for r in runs:
        arm = arm_of(r["config"])
        if arm in (X_C, Y_C):
            groups[(arm, r["config"]["epochs"])].append(r)
    front = {"base": [], "motivated": []}
    for (arm, epochs), members in sorted(groups.items()):
        role = "base" if arm == X_C else "motivated"
        acc, sd = mean_std([_accuracy(m, role) for m in members])
        front[role].append(
            FrontPoint(
                epochs=epochs,
                compute=statistics.mean(_training_flops(m) for m in members),
                accuracy=acc,
                sd=sd,
                cpu_s=statistics.mean(m["summary"].get("cpu_time_s", float("nan")) for m in members),
                seeds=len(members),
            )
        )
    for role in front:
        front[role].sort(key=lambda p: p.compute)
    return front


def pays_rows(runs):
    """One row per dual policy: compute, both accuracies, the best separate split, pays, small model free."""
    front = classical_front(runs)
    if not front["base"] or not front["motivated"]:
        return []
    groups = collections.defaultdict(list)
    for r in runs:
        arm = arm_of(r["config"])
        if arm not in (X_C, Y_C) and _training_flops(r):
            groups[(r["config"]["epochs"], arm)].append(r)
    chance = 100.0 / runs[0]["summary"]["num_classes"]
    xc_at = {p.epochs: p for p in front["base"]}
    yc_at = {p.epochs: p for p in front["motivated"]}
    rows = []
    for (epochs, arm), members in sorted(groups.items()):
        compute = statistics.mean(_training_flops(m) for m in members)
        acc_b, sd_b = mean_std([_accuracy(m, "base") for m in members])
        acc_m, sd_m = mean_std([_accuracy(m, "motivated") for m in members])
        verdict = pay_rule.verdict(front, compute, acc_b, acc_m, chance)
        # Inside the noise when moving both accuracies by one seed sd flips the verdict (one seed: no sd known).
        db, dm = sd_b or 0.0, sd_m or 0.0
        low = pay_rule.verdict(front, compute, acc_b - db, acc_m - dm, chance)["pays"]
        high = pay_rule.verdict(front, compute, acc_b + db, acc_m + dm, chance)["pays"]
        y_alone = reach(front["motivated"], compute, chance)
        xc, yc = xc_at.get(epochs), yc_at.get(epochs)
        free, free_noise = pay_rule.small_model_free(acc_b, db, acc_m, dm, y_alone, xc)
        rows.append(
            {
                "policy": arm,
                "epochs": epochs,
                "seeds": len(members),
                "training_tflops": compute / 1e12,
                "cpu_s": statistics.mean(m["summary"].get("cpu_time_s", float("nan")) for m in members),
                "motivated_share": statistics.mean(
                    summary_json.motivated_share(m["summary"]["activations"]) for m in members
                ),
                "base_mean": acc_b,
                "base_sd": sd_b,
                "motivated_mean": acc_m,
                "motivated_sd": sd_m,
                "x_c_tflops_for_base": verdict["x_compute"] / 1e12,
                "x_beyond_front": verdict["x_beyond_front"],
                "y_c_with_rest": verdict["y_with_rest"],
                "separate_tflops": verdict["separate_compute"] / 1e12,
                "y_beyond_front": verdict["y_beyond_front"],
                "pays": verdict["pays"],
                "pays_within_noise": low != high,
                "y_c_with_all": y_alone,
                "x_c_same_epochs": xc.accuracy if xc else None,
                "y_c_same_epochs": yc.accuracy if yc else None,
                # Each model against its own network trained alone for the same epochs.
                "base_minus_x_c": acc_b - xc.accuracy if xc else None,
                "motivated_minus_y_c": acc_m - yc.accuracy if yc else None,
                "small_model_free": free,
                "free_within_noise": free_noise,
            }
        )
    return rows


def pays_markdown(front, rows):
    out = [
        "**Classical front** (each model trained alone; compute = training FLOPs)",
        "",
        "| model | epochs | training TFLOPs | CPU s | test accuracy % | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for role, label in (("base", X_C), ("motivated", Y_C)):
        for p in front[role]:
            out.append(
                f"| {label} | {p.epochs} | {p.compute / 1e12:.2f} | {p.cpu_s:.0f} | {fmt_mean_sd(p.accuracy, p.sd)} "
                f"| {p.seeds} |"
            )
    out += [
        "",
        "**Dual policies** (base and motivated model of one run, against the best separate split of the same compute)",
        "",
        "| policy | epochs | training TFLOPs | CPU s | motivated share | base % | motivated % "
        "| X-C TFLOPs to the base's % | Y-C with the rest, % | separate TFLOPs for both | pays "
        "| Y-C with all of it, % | small model free | base − X-C | motivated − Y-C |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        yes = {True: "yes", False: "no", None: "unknown"}[r["pays"]]
        if r["pays_within_noise"]:
            yes += " (within noise)"
        sep = f"{r['separate_tflops']:.2f}" + (" (> front)" if r["x_beyond_front"] or r["y_beyond_front"] else "")
        out.append(
            f"| {r['policy']} | {r['epochs']} | {r['training_tflops']:.2f} | {r['cpu_s']:.0f} "
            f"| {r['motivated_share']:.2f} | "
            f"{fmt_mean_sd(r['base_mean'], r['base_sd'])} | {fmt_mean_sd(r['motivated_mean'], r['motivated_sd'])} | "
            f"{r['x_c_tflops_for_base']:.2f}{' (> front)' if r['x_beyond_front'] else ''} | "
            f"{fmt(r['y_c_with_rest'], '.2f')} | {sep} | {yes} | {r['y_c_with_all']:.2f} | "
            f"{'yes' if r['small_model_free'] else 'no'}{' (within noise)' if r['free_within_noise'] else ''} "
            f"| {fmt(r['base_minus_x_c'], '+.2f')} | {fmt(r['motivated_minus_y_c'], '+.2f')} |"
        )
    return "\n".join(out) + "\n"


def plot_front(front, rows, path, names=("base", "motivated")):
    """Accuracy against training compute: one panel per architecture, the
    classical curve with its seed band, every dual policy as a point."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=False)
    markers = "os^vD<>phX*P"
    for ax, role, name in zip(axes, ("base", "motivated"), names):
        pts = front[role]
        c = [p.compute / 1e12 for p in pts]
        a = [p.accuracy for p in pts]
        sd = [p.sd or 0.0 for p in pts]
        # Markers too: a front of one budget is one point.
        ax.plot(c, a, "-o", color="black", markersize=4, label=f"{name} trained alone")
        ax.fill_between(
            c,
            [x - s for x, s in zip(a, sd)],
            [x + s for x, s in zip(a, sd)],
            color="grey",
            alpha=0.3,
            label="± 1 sd over seeds",
        )
        for p in pts:
            ax.annotate(
                f"{p.epochs} ep",
                (p.compute / 1e12, p.accuracy),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
            )
        for i, r in enumerate(rows):
            ax.errorbar(
                r["training_tflops"],
                r[f"{role}_mean"],
                yerr=r[f"{role}_sd"],
                fmt=markers[i % len(markers)],
                capsize=3,
                label=f"{r['policy']} ({r['epochs']} ep)",
            )
        ax.set(
            xlabel="training compute of the run (TFLOPs: forward + backward, both models)",
            ylabel="test accuracy (%), mean ± sd over seeds",
            title=f"{name}",
        )
        shown = a + [r[f"{role}_mean"] for r in rows]
        ax.set_ylim(max(min(shown) - 3, 0), max(shown) + 1.5)
        ax.set_xlim(left=0)  # compute from zero: a run's cost reads as a length, not a zoomed gap
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_pays(runs, out, names, written=None):
    """pays.md, pays.json and accuracy_vs_compute.png, when the runs have a classical front and dual
    policies; `names`: the two models' names (the figure's panels); `written`: a list the paths of the
    files are appended to."""
    written = [] if written is None else written
    front = classical_front(runs)
    policies = pays_rows(runs)
    if not policies:
        return
    with open(os.path.join(out, "pays.md"), "w") as f:
        f.write(pays_markdown(front, policies))
    with open(os.path.join(out, "pays.json"), "w") as f:
        json.dump({"front": front, "policies": policies}, f, indent=1)
    plot_front(front, policies, os.path.join(out, "accuracy_vs_compute.png"), names)
    written += [os.path.join(out, n) for n in ("pays.md", "pays.json", "accuracy_vs_compute.png")]


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
        for model in ("base", "motivated"):
            checks = [m["summary"]["statistics_check"][model] for m in members]
            for key in ("as_saved", "recomputed"):
                row[f"{model}_{key}"], row[f"{model}_{key}_sd"] = mean_std([100 * c[key] for c in checks])
            row[f"{model}_change"] = statistics.mean(100 * abs(c["recomputed"] - c["as_saved"]) for c in checks)
        rows.append(row)
    return rows


def statistics_markdown(rows):
    out = [
        "| arm | epochs | seeds | base as saved % | base recomputed % | motivated as saved % | motivated recomputed % "
        "| mean abs change (base / motivated) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            fmt_mean_sd(r[f"{m}_{k}"], r[f"{m}_{k}_sd"])
            for m in ("base", "motivated")
            for k in ("as_saved", "recomputed")
        ]
        out.append(
            f"| {r['arm']} | {r['epochs']} | {r['seeds']} | {' | '.join(cells)} | "
            f"{r['base_change']:.2f} / {r['motivated_change']:.2f} |"
        )
    return "\n".join(out) + "\n"


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
    write_pays(runs, out, model_names(runs[0]["config"]["pair"]), written)
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
