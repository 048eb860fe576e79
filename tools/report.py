"""The paper's tables and figures from run directories.

    python tools/report.py RUN_DIR... --out=DIR

RUN_DIR is a trainer workdir or a folder of them (searched recursively for
summary.json). Writes to DIR: results.md and results.csv (accuracy mean ± std
per arm with the paper's naming, ACC/FLOPs and ACC/F_Ratio, activation rates
next to the noise level 1/(k+1)!, wall-clock) and PNG figures: training
dynamics of one X-Y run (per-batch loss with motivated batches marked,
validation accuracy of both models per epoch, learning rate: the paper's
Figure 2) and accuracy versus FLOPs. Every number is read from the runs'
summary.json, history.csv and batches.csv.
"""

import argparse
import collections
import csv
import json
import math
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from keras_motivation.flops import acc_per_flops  # noqa: E402


def find_runs(paths):
    runs = []
    for root in paths:
        for dirpath, _, files in os.walk(root):
            if "summary.json" in files and "config.json" in files:
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
                return label + name[len(prefix):]
        return name

    x, y = pair.split(":")
    return pretty(x), pretty(y)


def arm_of(config):
    """The paper's arm of a run, from its config."""
    condition = config["condition"].split(":")[0]
    if condition == "never":
        return "X-C"
    if condition == "always":
        return "Y-C"
    if condition == "random":
        return "ExpA"
    if condition == "matched_random":
        return "ExpB"
    variant = f" ({config.get('differential_init', 'paper')})"
    if condition == "consecutive":
        return f"X-Y k={config['k']}{variant}"
    return f"X-Y {condition}{variant}"


def mean_std(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def rows_for(runs):
    """One row per (experiment, arm, model): accuracy mean ± std and costs."""
    groups = collections.defaultdict(list)
    for r in runs:
        c = r["config"]
        groups[(c["pair"], c["dataset"], c["epochs"], c.get("train_size"), arm_of(c))].append(r)
    rows = []
    # The paper's order: X-C, the X-Y variants, Y-C, then the random controls.
    rank = {"X-C": 0, "Y-C": 2, "ExpA": 3, "ExpB": 4}
    order = sorted(groups.items(), key=lambda kv: (kv[0][:4], rank.get(kv[0][4], 1), kv[0][4]))
    for (pair, dataset, epochs, train_size, arm), members in order:
        x, y = model_names(pair)
        s0 = members[0]["summary"]
        flops = s0.get("flops", {})
        models = {"X-C": [("base", f"{x}-C", flops.get("base"))],
                  "Y-C": [("motivated", f"{y}-C", flops.get("motivated"))]}.get(arm)
        if models is None:
            label = "" if arm.startswith("X-Y") else f" {arm}"
            suffix = arm[3:] if arm.startswith("X-Y") else ""
            models = [("base", f"{x}-{y}-B{label}{suffix}", None), ("motivated", f"{x}-{y}-M{label}{suffix}", None)]
        for which, name, f in models:
            key = "accuracy" if which == "base" else "motivated_accuracy"
            acc_mean, acc_std = mean_std([100 * m["summary"]["final"][key] for m in members])
            act = [m["summary"]["activations"] for m in members]
            dual = mean_std([m["summary"].get("flops", {}).get("dual_training_average") for m in members])[0]
            rows.append({
                "experiment": f"{pair} {dataset} {epochs} ep" + (f" {train_size} ex" if train_size else ""),
                "arm": arm,
                "model": name,
                "role": which,
                "seeds": len(members),
                "accuracy_mean": acc_mean,
                "accuracy_std": acc_std,
                "forward_flops": f if f is not None else (dual if which == "base" else flops.get("motivated")),
                "motivated_share": statistics.mean(a["activation_rate"] for a in act),
                "noise_rate": act[0].get("noise_activation_rate"),
                "triggers_per_step": statistics.mean(a.get("triggers_per_step", 0.0) for a in act),
                "wall_clock_s": statistics.mean(m["summary"]["wall_clock_s"] for m in members),
            })
    add_ratios(rows)
    return rows


def add_ratios(rows):
    """ACC/FLOPs of every X-Y-B row and ACC/F_Ratio against Y-C, per experiment (per MFLOP)."""
    by_exp = collections.defaultdict(dict)
    for r in rows:
        by_exp[r["experiment"]].setdefault(r["arm"], []).append(r)
    for arms in by_exp.values():
        xc, yc = arms.get("X-C", [None])[0], arms.get("Y-C", [None])[0]
        if not xc or not yc or None in (xc["forward_flops"], yc["forward_flops"], xc["accuracy_mean"], yc["accuracy_mean"]):
            continue
        mf = 1e6
        yc_rate = acc_per_flops(yc["accuracy_mean"], xc["accuracy_mean"], yc["forward_flops"] / mf, xc["forward_flops"] / mf)
        yc["acc_per_mflop"] = yc_rate
        for arm, members in arms.items():
            if not arm.startswith("X-Y"):
                continue
            b = members[0]
            if b["forward_flops"] and b["forward_flops"] != xc["forward_flops"]:
                b["acc_per_mflop"] = acc_per_flops(b["accuracy_mean"], xc["accuracy_mean"], b["forward_flops"] / mf, xc["forward_flops"] / mf)
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


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def markdown(rows):
    """One table per experiment (pair, dataset, budget), under its own heading.
    Δ vs classical: a base (-B) against X-C, a motivated model (-M) against Y-C."""
    head = ("| model | seeds | accuracy % | Δ vs classical | forward MFLOPs | ACC/MFLOP | ACC/F_Ratio "
            "| motivated share | noise 1/(k+1)! | wall-clock s |")
    out = []
    for experiment in dict.fromkeys(r["experiment"] for r in rows):
        out += [f"**{experiment}**", "", head, "|" + "---|" * (head.count("|") - 1)]
        for r in (r for r in rows if r["experiment"] == experiment):
            acc = f"{r['accuracy_mean']:.2f} ± {r['accuracy_std']:.2f}" if r["accuracy_mean"] is not None else ""
            delta = ""
            if "delta_vs_classical" in r:
                delta = f"{r['delta_vs_classical']:+.2f}" + (" (within 1 sd)" if r["within_one_std"] else "")
            out.append(
                f"| {r['model']} | {r['seeds']} | {acc} | {delta} | "
                f"{fmt(r['forward_flops'] and r['forward_flops'] / 1e6, '.2f')} | {fmt(r.get('acc_per_mflop'), '.3g')} | "
                f"{fmt(r.get('acc_f_ratio'), '.2f')} | {r['motivated_share']:.3f} | {fmt(r['noise_rate'], '.3f')} | "
                f"{r['wall_clock_s']:.0f} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_dynamics(run, path):
    """The paper's Figure 2 for one run: loss per batch, validation accuracy, learning rate."""
    batches = read_csv(os.path.join(run["dir"], "batches.csv"))
    history = read_csv(os.path.join(run["dir"], "history.csv"))
    fig, axes = plt.subplots(3, 1, figsize=(8, 9), sharex=False)
    steps = [int(b["step"]) for b in batches]
    loss = [float(b["batch_loss"]) for b in batches]
    axes[0].plot(steps, loss, lw=0.8, color="tab:blue", label="batch loss")
    mot = [(s, l) for s, l, b in zip(steps, loss, batches) if int(b["motivated"])]
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
        if r["forward_flops"] is None or r["accuracy_mean"] is None:
            continue
        marker = "s" if r["arm"] in ("X-C", "Y-C") else ("o" if r["model"].split()[0].endswith("-B") else "^")
        ax.errorbar(r["forward_flops"] / 1e6, r["accuracy_mean"], yerr=r["accuracy_std"], fmt=marker, capsize=3, label=r["model"])
    ax.set(xlabel="forward MFLOPs per image (dual training: average per pass)", ylabel="test accuracy (%), mean ± sd over seeds",
           title="accuracy versus FLOPs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(paths, out):
    runs = find_runs(paths)
    if not runs:
        raise SystemExit(f"No runs (summary.json + config.json) under {', '.join(paths)}.")
    os.makedirs(out, exist_ok=True)
    rows = rows_for(runs)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(markdown(rows))
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        fields = sorted({k for r in rows for k in r})
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    # Figure 2 shows the paper's variant when there is one.
    xy = sorted((r for r in runs if arm_of(r["config"]).startswith("X-Y")),
                key=lambda r: (r["config"].get("differential_init", "paper") != "paper", r["dir"])) or runs
    plot_dynamics(xy[0], os.path.join(out, "dynamics.png"))
    plot_accuracy_vs_flops(rows, os.path.join(out, "accuracy_vs_flops.png"))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="workdirs or folders of workdirs")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    rows = write_report(args.runs, args.out)
    print(markdown(rows))
    print(f"\nwritten: {args.out}/results.md, results.csv, dynamics.png, accuracy_vs_flops.png")


if __name__ == "__main__":
    main()
