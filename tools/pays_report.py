"""tools/report.py's second report: does the dual run pay? (pays.md, pays.json, accuracy_vs_compute.png).

Every dual policy of the runs against the classical front (X-C and Y-C trained alone at several budgets): the
rule is pay_rule.py's. Compute is the training FLOPs summary.json counts (forward + backward of every trained
example, every model, the final BatchNorm recalibration); CPU time is reported beside it. A ladder's pay is its
ends': the base's and the largest model's fronts.
"""

import collections
import json
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pay_rule  # noqa: E402
from pay_rule import FrontPoint  # noqa: E402
from pay_rule import reach  # noqa: E402
from runs import X_C  # noqa: E402
from runs import Y_C  # noqa: E402
from runs import accuracy_percent  # noqa: E402
from runs import arm_of  # noqa: E402
from runs import fmt  # noqa: E402
from runs import fmt_mean_sd  # noqa: E402
from runs import mean_sd  # noqa: E402
from runs import summary_json  # noqa: E402


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
        acc, sd = mean_sd([accuracy_percent(m, role) for m in members])
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
        acc_b, sd_b = mean_sd([accuracy_percent(m, "base") for m in members])
        acc_m, sd_m = mean_sd([accuracy_percent(m, "motivated") for m in members])
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
    classical curve with its seed band, every dual policy as a point. `names`:
    the models' names, smallest first (a ladder's: its ends have the panels)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=False)
    markers = "os^vD<>phX*P"
    for ax, role, name in zip(axes, ("base", "motivated"), (names[0], names[-1])):
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
