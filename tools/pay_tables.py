"""tools/pay_study.py's tables and figure, read from the study directories (`--table`, `--rungs`, `--gammas`,
`--evidence`, `--figure`): the tuned study, a ladder study, each model against its twin trained alone, the
README's evidence, the differential blocks' gammas.
"""

import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reproduce  # noqa: E402
import runs as runs_lib  # noqa: E402
from pay_study import DEFAULT_ARM  # noqa: E402
from pay_study import GAMMAS_FILE  # noqa: E402
from pay_study import ROOT  # noqa: E402


def summaries(out):
    """{(epochs, arm): [summary of each finished seed]} of a study directory OUT/ep<E>/<arm>/seed<S>."""
    return {key: [run["summary"] for run in members] for key, members in runs_lib.study_runs(out).items()}


def _fmt(mean_sd, missing=""):
    """A (mean, sd) as runs_lib.fmt_mean_sd writes it ("85.57 ± 0.27"; one seed: "85.57"); `missing` without a mean."""
    return runs_lib.fmt_mean_sd(*mean_sd) or missing


def best_alone(groups, epochs, arm, model):
    """(rate, [summary of each seed]) of `arm` (X-C or Y-C: a network trained alone; `model`: "base" or
    "motivated") at its best rate at `epochs` of `summaries(out)`, among its rates with the most finished seeds
    there (all three once the sweep is done; the 6-epoch front has the tuned rate only); None without one."""
    from keras_motivation import summary_json as summary_lib

    rates = {n.split("-lr", 1)[1]: m for (e, n), m in groups.items() if e == epochs and n.startswith(f"{arm}-lr")}
    most = max((len(m) for m in rates.values()), default=0)
    tops = [(rate, m) for rate, m in rates.items() if len(m) == most]
    return max(tops, key=lambda rm: statistics.mean(100 * summary_lib.accuracy(s, model) for s in rm[1]), default=None)


def _best_classical(groups, epochs, arm, model):
    """The mean accuracy (%) of `best_alone`'s runs, or None."""
    from keras_motivation import summary_json as summary_lib

    best = best_alone(groups, epochs, arm, model)
    return None if best is None else statistics.mean(100 * summary_lib.accuracy(s, model) for s in best[1])


def tuned_table(out):
    """The tuned study as a markdown table: every arm at each budget, both models' accuracy (mean ± std over
    its seeds; one seed: the mean alone), compute, and each model's difference from the best-rate X-C / Y-C at
    the same epochs."""
    from keras_motivation import summary_json as summary_lib

    groups = summaries(out)
    lines = [
        "| arm | epochs | seeds | training TFLOPs | CPU s | base % | motivated % | base − X-C | motivated − Y-C |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    for (epochs, arm), members in sorted(
        groups.items(),
        key=lambda kv: (kv[0][0], not kv[0][1].startswith("X-C"), not kv[0][1].startswith("Y-C"), kv[0][1]),
    ):
        x_ref = _best_classical(groups, epochs, "X-C", "base")
        y_ref = _best_classical(groups, epochs, "Y-C", "motivated")
        base = (
            runs_lib.mean_sd([100 * summary_lib.accuracy(s, "base") for s in members])
            if not arm.startswith("Y-C")
            else (None, None)
        )
        mot = (
            runs_lib.mean_sd([100 * summary_lib.accuracy(s, "motivated") for s in members])
            if not arm.startswith("X-C")
            else (None, None)
        )
        tflops = statistics.mean(summary_lib.training_flops(s, "total") for s in members) / 1e12
        cpu = statistics.mean(s["cpu_time_s"] for s in members)
        d_base = "—" if base[0] is None or x_ref is None else f"{base[0] - x_ref:+.2f}"
        d_mot = "—" if mot[0] is None or y_ref is None else f"{mot[0] - y_ref:+.2f}"
        lines.append(
            f"| {arm} | {epochs} | {len(members)} | {tflops:.2f} | {cpu:.0f} | {_fmt(base, '—')} | {_fmt(mot, '—')} | "
            f"{d_base} | {d_mot} |"
        )
    return "\n".join(lines)


def ladder_table(out):
    """A ladder study (`--pair=a:b:c`) as a markdown table: each arm's models' accuracy (mean ± std over its
    seeds; one seed: the mean alone), smallest first, and its compute. Each model's twin is in its pair's study."""
    from keras_motivation import summary_json as summary_lib

    groups = summaries(out)
    names = summary_lib.rung_names(max(len(summary_lib.model_names(s["pair"])) for m in groups.values() for s in m))
    lines = [
        "| arm | epochs | seeds | training TFLOPs | CPU s | " + " | ".join(f"{n} %" for n in names) + " |",
        "|---|---|---|---|---|" + "---|" * len(names),
    ]
    for (epochs, arm), members in sorted(groups.items()):
        accs = [_fmt(runs_lib.mean_sd([100 * summary_lib.accuracy(s, name) for s in members])) for name in names]
        tflops = statistics.mean(summary_lib.training_flops(s, "total") for s in members) / 1e12
        cpu = statistics.mean(s["cpu_time_s"] for s in members)
        lines.append(f"| {arm} | {epochs} | {len(members)} | {tflops:.2f} | {cpu:.0f} | " + " | ".join(accs) + " |")
    return "\n".join(lines)


def twin(network, epochs, model_kwargs):
    """(mean accuracy %, sd, mean training FLOPs, mean CPU s, its study/arm) of `network` trained alone at its best
    rate at `epochs`, with the same model arguments, from the committed tuned studies (TUNED_STUDIES), or None."""
    from keras_motivation import summary_json as summary_lib

    for pair, study in TUNED_STUDIES.items():
        names = pair.split(":")
        if network not in names:
            continue
        role, model = ("X-C", "base") if names.index(network) == 0 else ("Y-C", "motivated")
        groups = summaries(os.path.join(EXAMPLES, study))
        runs = {n: m for (e, n), m in groups.items() if e == epochs and n.startswith(f"{role}-lr")}
        folder = os.path.join(EXAMPLES, study, f"ep{epochs}")
        runs = {
            n: m
            for n, m in runs.items()
            if runs_lib.read_run(os.path.join(folder, n, sorted(os.listdir(os.path.join(folder, n)))[0]))["config"][
                "model_kwargs"
            ]
            == model_kwargs
        }
        if not runs:
            continue
        most = max(len(m) for m in runs.values())
        name, best = max(
            ((n, m) for n, m in sorted(runs.items()) if len(m) == most),
            key=lambda nm: statistics.mean(summary_lib.accuracy(s, model) for s in nm[1]),
        )
        mean, sd = runs_lib.mean_sd([100 * summary_lib.accuracy(s, model) for s in best])
        flops = statistics.mean(summary_lib.training_flops(s, "total") for s in best)
        return mean, sd, flops, statistics.mean(s["cpu_time_s"] for s in best), f"{study}/ep{epochs}/{name}"
    return None


def rung_rows(out, arms=None):
    """Per arm of a pair or ladder study in `out` (or of `arms`, [(study folder, epochs, arm)] under
    tools/examples): each model's accuracy (mean, sd), its difference from its twin (the same network trained
    alone at its best rate, `twin`) and the run's training FLOPs and CPU time against the largest twin's."""
    from keras_motivation import summary_json as summary_lib

    if arms is None:
        groups = {(out, e, a): m for (e, a), m in summaries(out).items() if not a.startswith(("X-C", "Y-C"))}
    else:
        groups = {}
        for study, epochs, arm in arms:
            folder = os.path.join(EXAMPLES, study)
            groups[(folder, epochs, arm)] = summaries(folder)[(epochs, arm)]
    rows = []
    # A study's arms in name order; arms given, in their order.
    for (folder, epochs, arm), members in sorted(groups.items()) if arms is None else groups.items():
        seed_dir = os.path.join(folder, f"ep{epochs}", arm)
        config = runs_lib.read_run(os.path.join(seed_dir, sorted(os.listdir(seed_dir))[0]))["config"]
        networks = config["pair"].split(":")
        row = {"arm": arm, "pair": config["pair"], "epochs": epochs, "seeds": len(members), "models": []}
        twins = [twin(n, epochs, config["model_kwargs"]) for n in networks]
        for network, name, alone in zip(networks, summary_lib.model_names(config["pair"]), twins):
            mean, sd = runs_lib.mean_sd([100 * summary_lib.accuracy(s, name) for s in members])
            row["models"].append(
                {
                    "network": network,
                    "mean": mean,
                    "sd": sd,
                    "alone": None if alone is None else alone[0],
                    "alone_sd": None if alone is None else alone[1],
                    "difference": None if alone is None else mean - alone[0],
                }
            )
        largest = twins[-1]
        flops = statistics.mean(summary_lib.training_flops(s, "total") for s in members)
        cpu = statistics.mean(s["cpu_time_s"] for s in members)
        row["flops_vs_largest"] = None if largest is None else flops / largest[2]
        row["cpu_vs_largest"] = None if largest is None else cpu / largest[3]
        rows.append(row)
    return rows


def rung_table(out=None, arms=None):
    """`rung_rows` as a markdown table: each model's accuracy and its difference from the same network trained
    alone (mean ± sd over seeds), smallest first, and the run's cost against the largest network alone."""
    rows = rung_rows(out, arms)
    width = max(len(r["models"]) for r in rows)
    lines = [
        "| arm | epochs | seeds | "
        + " | ".join(f"model {i + 1} % (− alone)" for i in range(width))
        + " | FLOPs / largest alone | CPU / largest alone |",
        "|---|---|---|" + "---|" * width + "---|---|",
    ]
    for r in rows:
        cells = []
        for m in r["models"]:
            cell = f"{m['network']} {_fmt((m['mean'], m['sd']))}"
            cells.append(cell if m["difference"] is None else f"{cell} ({m['difference']:+.2f})")
        cells += [""] * (width - len(cells))
        cost = [("—" if v is None else f"{v:.2f}") for v in (r["flops_vs_largest"], r["cpu_vs_largest"])]
        lines.append(f"| {r['arm']} | {r['epochs']} | {r['seeds']} | " + " | ".join(cells + cost) + " |")
    return "\n".join(lines)


def arm_label(arm):
    """A joint arm's plain name for the pages: "default, lr 0.05"; "base weight 4, equilibrium, lr 0.2";
    "... distillation 0.5 from every larger model"."""
    match = re.fullmatch(
        r"grow0\.45-joint-paper-bw(?P<bw>[\d.]+)(?P<eq>-eq)?(?:-distill(?P<d>[\d.]+)(?P<all>all)?)?"
        r"-rewarm0\.1-recalibrated-lr(?P<lr>[\d.]+)",
        arm,
    )
    if not match:
        return arm
    if match["bw"] == "2" and not match["eq"] and not match["d"]:
        return f"default, lr {match['lr']}"
    parts = [f"base weight {match['bw']}"] + (["equilibrium"] if match["eq"] else [])
    if match["d"]:
        parts.append(f"distillation {match['d']} from " + ("every larger model" if match["all"] else "the largest"))
    return ", ".join(parts + [f"lr {match['lr']}"])


# Issue 45's studies (every model of a ladder or prefix pair against the same network trained alone): each folder
# under tools/examples with the default policy's committed runs it is read beside ((study, epochs, arm) each).
RUNG_STUDIES = {
    "every_rung_ladder": [("prefix_ladder", 6, f"{DEFAULT_ARM[: -len('-lr0.1')]}-lr{lr}") for lr in ("0.05", "0.1")],
    "every_rung_prefix20": [
        ("pay_study_prefix20", 6, f"{DEFAULT_ARM[: -len('-lr0.1')]}-lr{lr}") for lr in ("0.05", "0.1")
    ],
    "every_rung_prefix14": [("pay_study_prefix14", 6, DEFAULT_ARM)],
    "every_rung_vit": [
        ("pay_study_vit_d2_d4", 6, f"{DEFAULT_ARM[: -len('-lr0.1')]}-lr{lr}") for lr in ("0.0005", "0.001")
    ],
}


def rung_study_arms(folder):
    """[(study, epochs, arm)] of a RUNG_STUDIES folder: the default's committed arms, then every arm of `folder`."""
    return list(RUNG_STUDIES[folder]) + [(folder, e, a) for e, a in sorted(summaries(os.path.join(EXAMPLES, folder)))]


def rung_study_table(folder):
    """A RUNG_STUDIES folder's page table: the default's rows, then every arm of the folder, each model's accuracy
    and its difference from the same network trained alone (mean ± sd over seeds), smallest first, and the
    run's training FLOPs against the largest network alone."""
    rows = rung_rows(None, rung_study_arms(folder))
    width = max(len(r["models"]) for r in rows)
    lines = [
        "| policy | seeds | "
        + " | ".join(f"model {i + 1} (− alone)" for i in range(width))
        + " | FLOPs / largest alone |",
        "|---|---|" + "---|" * width + "---|",
    ]
    for r in rows:
        cells = [f"`{m['network']}` {_fmt((m['mean'], m['sd']))} ({m['difference']:+.2f})" for m in r["models"]]
        lines.append(
            f"| {arm_label(r['arm'])} | {r['seeds']} | " + " | ".join(cells) + f" | {r['flops_vs_largest']:.2f} |"
        )
    return "\n".join(lines)


# The README's evidence: each policy of the trainer as the committed studies measured it, against each network
# trained alone at its best rate at the same epochs (the tuned study of the same pair).
# (label, study folder under tools/examples, epochs, arm); the tuned study of the pair holds the twins.
EXAMPLES = os.path.join(ROOT, "tools", "examples")
TUNED_STUDIES = {
    "resnet8:resnet14": "pay_study_tuned",
    "resnet8:resnet20": "pay_study_tuned_resnet20",
    # The prefix pair (issue 40): ResNet-8's X-C runs copied from pay_study_tuned, [1, 1, 4] alone at its rates.
    "resnet8:resnet8p14": "pay_study_prefix14",
    # The deeper prefix pair (issue 40): ResNet-8's X-C runs copied from pay_study_tuned, [1, 1, 7] alone at its rates.
    "resnet8:resnet8p20": "pay_study_prefix20",
    # The stress pair (issue 40), width 8.
    "resnet8:resnet32": "stress_resnet8_resnet32_w8",
    # The ViT depth pair (issue 40): ViT-Tiny's width at depth 2 inside depth 4, patch 7, AdamW (--flags, --rates).
    "vit_tiny_d2:vit_tiny_d4": "pay_study_vit_d2_d4",
}
EQUILIBRIUM_ARM = "grow0.45-joint-paper-bw4-eq-rewarm0.1-recalibrated-lr0.2"
EVIDENCE = (
    ("default", "pay_study_tuned", 3, "grow0.45-joint-paper-bw2-rewarm0.1-lr0.1"),
    ("default", "pay_study_tuned", 6, "grow0.45-joint-paper-bw2-rewarm0.1-recalibrated-lr0.1"),
    ("default", "pay_study_tuned_resnet20", 3, "grow0.45-joint-paper-bw2-rewarm0.1-lr0.1"),
    ("default", "pay_study_tuned_resnet20", 6, "grow0.45-joint-paper-bw2-rewarm0.1-recalibrated-lr0.1"),
    ("default (a prefix pair: one shared forward pass)", "pay_study_prefix14", 6, DEFAULT_ARM),
    ("default (a deeper prefix pair, lr 0.1: one shared forward pass)", "pay_study_prefix20", 6, DEFAULT_ARM),
    (
        "default (a deeper prefix pair, lr 0.05: one shared forward pass)",
        "pay_study_prefix20",
        6,
        DEFAULT_ARM.replace("-lr0.1", "-lr0.05"),
    ),
    # The ViT pair's default at the bigger twin's best rate (as on the ResNet pairs) and at the smaller's.
    (
        "default (a ViT depth pair, AdamW at 0.0005: one shared forward pass)",
        "pay_study_vit_d2_d4",
        6,
        DEFAULT_ARM.replace("-lr0.1", "-lr0.0005"),
    ),
    (
        "default (a ViT depth pair, AdamW at 0.001: one shared forward pass)",
        "pay_study_vit_d2_d4",
        6,
        DEFAULT_ARM.replace("-lr0.1", "-lr0.001"),
    ),
    (
        "default (the stress pair, width 8; two passes on seed 0, a shared trunk on 1 and 2)",
        "stress_resnet8_resnet32_w8",
        6,
        DEFAULT_ARM,
    ),
    # Issue 45's best arm, equilibrium with the base's loss weighted 4 at twice the rate: a ladder row gives its
    # smallest and largest model (every model on docs/studies/every-rung.md) and its compute against all alone.
    (
        "equilibrium, base weight 4, lr 0.2 (the prefix ladder: its smallest and largest)",
        "every_rung_ladder",
        6,
        EQUILIBRIUM_ARM,
    ),
    ("equilibrium, base weight 4, lr 0.2 (the deeper prefix pair)", "every_rung_prefix20", 6, EQUILIBRIUM_ARM),
    ("paper (lr 0.05)", "pay_study", 3, "k2-paper-shared"),
    ("paper's trigger, identity start, recalibrated statistics (lr 0.05)", "pay_study", 3, "k2-id-recalibrated"),
    (
        "paper's trigger at k=3, identity start, recalibrated statistics (lr 0.1)",
        "pay_study_tuned",
        3,
        "defaults-k3-lr0.1",
    ),
)
EVIDENCE_HEAD = (
    "| policy | pair | epochs | seeds | base % | base alone % | motivated % | motivated alone % "
    "| compute / both alone | compute / bigger alone |"
)


def _arm_runs(study, epochs, arm):
    """The summaries of one committed arm at one budget, and the pair its config names."""
    folder = os.path.join(EXAMPLES, study, f"ep{epochs}", arm)
    members = [runs_lib.read_run(os.path.join(folder, seed)) for seed in sorted(os.listdir(folder))]
    return [run["summary"] for run in members], members[-1]["config"]["pair"]


def evidence_rows(evidence=EVIDENCE):
    """One dict per row of EVIDENCE: both models' mean accuracy (%) and spread, their twins' (each network alone
    at its best rate, the same epochs), and the run's training compute as a share of the twins' together and of
    the bigger twin's."""
    from keras_motivation import summary_json as summary_lib

    rows = []
    for label, study, epochs, arm in evidence:
        members, pair = _arm_runs(study, epochs, arm)
        twins = {}
        if pair in TUNED_STUDIES:
            groups = summaries(os.path.join(EXAMPLES, TUNED_STUDIES[pair]))
            for role, model in (("X-C", "base"), ("Y-C", "motivated")):
                # The accuracy at the best rate; the compute is the same at every rate.
                sweep = next(
                    m for (e, name), m in sorted(groups.items()) if e == epochs and name.startswith(f"{role}-lr")
                )
                twins[role] = (
                    _best_classical(groups, epochs, role, model),
                    statistics.mean(summary_lib.training_flops(s, "total") for s in sweep),
                )
        else:  # a ladder: its smallest and largest model against their networks alone, every network's compute
            kwargs = runs_lib.read_run(os.path.join(EXAMPLES, study, f"ep{epochs}", arm, "seed0"))["config"]
            alone = [twin(network, epochs, kwargs["model_kwargs"]) for network in pair.split(":")]
            twins["X-C"] = (alone[0][0], sum(a[2] for a in alone[:-1]))
            twins["Y-C"] = (alone[-1][0], alone[-1][2])
        compute = statistics.mean(summary_lib.training_flops(s, "total") for s in members)
        row = {
            "policy": label,
            "pair": pair,
            "epochs": epochs,
            "seeds": len(members),
            "arm": f"{study}/ep{epochs}/{arm}",
        }
        for model in ("base", "motivated"):
            row[model] = runs_lib.mean_sd([100 * summary_lib.accuracy(s, model) for s in members])
        row["base_alone"], row["motivated_alone"] = twins["X-C"][0], twins["Y-C"][0]
        row["share_of_both"] = compute / (twins["X-C"][1] + twins["Y-C"][1])
        row["share_of_bigger"] = compute / twins["Y-C"][1]
        rows.append(row)
    return rows


def evidence_table(evidence=EVIDENCE):
    """The README's table of current evidence (`--evidence`), from the committed studies."""
    lines = [EVIDENCE_HEAD, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in evidence_rows(evidence):
        lines.append(
            f"| {r['policy']} | {r['pair']} | {r['epochs']} | {r['seeds']} | {_fmt(r['base'])} | {r['base_alone']:.2f} "
            f"| {_fmt(r['motivated'])} | {r['motivated_alone']:.2f} | {r['share_of_both']:.2f} "
            f"| {r['share_of_bigger']:.2f} |"
        )
    return "\n".join(lines)


# The figure's dual arms (the others are in the tables), each with its legend's plain name: the default, joint on
# every batch, growth from a gamma of 0.25, the trigger with k = 3 and the paper's trigger with joint steps.
FIGURE_ARMS = {
    "grow0.45-joint-paper-bw2-rewarm0.1-lr0.1": "default policy, each model's own statistics",
    "grow0.45-joint-paper-bw2-rewarm0.1-recalibrated-lr0.1": "default policy",
    "joint-lr0.1": "both models on every batch",
    "grow0.45-joint-gamma0.25-rewarm0.1-lr0.1": "growth from a near-identity start",
    "defaults-k3-lr0.1": "the paper's trigger (k = 3), identity start",
    "k2-joint-lr0.1": "the paper's trigger (k = 2) with joint steps",
}


def tuned_figure(out, path, arms=FIGURE_ARMS):
    """Accuracy against training compute for a tuned study (`--figure`): each network trained alone at its best
    rate (3 and 6 epochs) as the line, `arms` as points, one panel per model (tools/report.py's plot)."""
    import pay_rule
    import pays_report

    from keras_motivation import summary_json as summary_lib

    groups = summaries(out)
    front = {"base": [], "motivated": []}
    for role, model in (("X-C", "base"), ("Y-C", "motivated")):
        for epochs in sorted({e for e, _ in groups}):
            runs = {n: m for (e, n), m in groups.items() if e == epochs and n.startswith(f"{role}-lr")}
            if not runs:
                continue
            most = max(len(m) for m in runs.values())
            best = max(
                (m for m in runs.values() if len(m) == most),
                key=lambda m: statistics.mean(summary_lib.accuracy(s, model) for s in m),
            )
            mean, std = runs_lib.mean_sd([100 * summary_lib.accuracy(s, model) for s in best])
            front[model].append(
                pay_rule.FrontPoint(
                    epochs=epochs,
                    compute=statistics.mean(summary_lib.training_flops(s, "total") for s in best),
                    accuracy=mean,
                    sd=std,
                    cpu_s=statistics.mean(s["cpu_time_s"] for s in best),
                    seeds=len(best),
                )
            )
    rows = []
    for (epochs, arm), members in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if arm not in arms:
            continue
        row = {"policy": arms[arm] if isinstance(arms, dict) else arm, "epochs": epochs, "training_tflops": 0.0}
        row["training_tflops"] = statistics.mean(summary_lib.training_flops(s, "total") for s in members) / 1e12
        for model in ("base", "motivated"):
            row[f"{model}_mean"], row[f"{model}_sd"] = runs_lib.mean_sd(
                [100 * summary_lib.accuracy(s, model) for s in members]
            )
        rows.append(row)
    # The pair from a run of the bigger network (a study may hold the base's runs copied from another pair's).
    names = runs_lib.model_names(next(m for (_, n), m in groups.items() if not n.startswith("X-C"))[0]["pair"])
    pays_report.plot_front(front, rows, path, names)
    return path


def gamma_table(out):
    """Why the motivated model ends where it does: per dual arm, the mean |gamma| of the last BatchNorm of
    the differential blocks' residual branches at the end of training (0: the block is the identity),
    next to the blocks the base shares, and the two models' gap, each the mean over the seeds with gammas.
    Each run's two means are written to its `gammas.json`, which is read where the final model is gone."""
    import keras

    import keras_motivation  # noqa: F401  (registers MotivatedModel for loading)
    from keras_motivation import files as files_lib
    from keras_motivation import summary_json as summary_lib
    from keras_motivation import weights_map as weights_map_lib

    lines = [
        "| arm | epochs | seeds | differential blocks' mean abs gamma | shared blocks' | motivated − base % |",
        "|---|---|---|---|---|---|",
    ]
    for epochs, arm in sorted(summaries(out)):
        if arm.startswith(("X-C", "Y-C")):
            continue
        differential, shared, gaps = [], [], []
        for seed in sorted(os.listdir(os.path.join(out, f"ep{epochs}", arm))):
            run_dir = os.path.join(out, f"ep{epochs}", arm, seed)
            path = os.path.join(run_dir, "final", "motivated_model.keras")
            record = os.path.join(run_dir, GAMMAS_FILE)
            if not reproduce.finished(run_dir):
                continue
            if os.path.exists(path):
                rows = weights_map_lib.branch_gammas(keras.models.load_model(path).weights_map)
                gammas = {
                    "differential": statistics.mean(g for *_, d, g in rows if d),
                    "shared": statistics.mean(g for *_, d, g in rows if not d),
                }
                # Kept beside summary.json (and committed with it): the final models are not.
                files_lib.atomic_write(record, json.dumps(gammas, indent=2) + "\n")
            elif os.path.exists(record):
                with open(record) as f:
                    gammas = json.load(f)
            else:
                continue
            summary = runs_lib.read_run(run_dir)["summary"]
            differential.append(gammas["differential"])
            shared.append(gammas["shared"])
            gaps.append(100 * (summary_lib.accuracy(summary, "motivated") - summary_lib.accuracy(summary, "base")))
        if not differential:
            continue
        gap = statistics.mean(gaps)
        lines.append(
            f"| {arm} | {epochs} | {len(differential)} | {statistics.mean(differential):.3f} | "
            f"{statistics.mean(shared):.3f} | {gap:+.2f} |"
        )
    return "\n".join(lines)
