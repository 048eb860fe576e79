"""Does the dual run pay? The whole study, in one resumable command.

    python tools/pay_study.py --out=runs/pay_study && python tools/report.py runs/pay_study --out=runs/pay_study/report

On real Fashion-MNIST (Debian's IDX files; tools/pay_study.flags: 20,000 training
images, the 10,000 test images, ResNet-8 with motivated ResNet-14, width 16,
SGD 0.05 with momentum and cosine decay, batch 128), 3 seeds each:

- `front`: the classical compute-accuracy front, X-C and Y-C trained alone
  (ordinary initialisation, plain Keras BatchNorm) for 1, 2, 3, 4 and 6 epochs.
- `bn`: the paper's trigger (k = 2) with both starts and the three BatchNorm
  statistics options, at the study's budget (3 epochs).
- `policies`: at 3 epochs, identity start, the default BatchNorm option: the
  trigger with k = 1, 2, 3, each next to Exp B matched to its share (random
  batches, as many per epoch); random shares 0.5 and 0.8 (the differential
  layers trained as stochastic depth / LayerDrop would drop them); a share
  ramp 0.2 -> 0.5 -> 0.8 over the three epochs (base-heavy to
  motivated-heavy, towards growing late as Net2Net / progressive growing do).

`--groups=solo` (not in the default groups) trains X-C and Y-C alone at 6
epochs at each rate of the sweep; `--arms` picks some, `--pair` and
`--model_kwargs` (after the study flagfile's, so they win) say which networks:

    python tools/pay_study.py --out=runs/solo_resnet8p14 --pair=resnet8:resnet8p14 --groups=solo --arms=Y-C-lr0.1

Every dual run also reports its models' accuracy with BatchNorm statistics
recomputed from 40 training batches (`statistics_check` in summary.json).
Rerun the same command after a stop: finished runs are kept. `--groups`
runs a part (for example two processes, one per group).
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reproduce  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The study's base setting (the quickstart's former flagfile: ResNet-8 -> ResNet-14, 3 epochs), its own file so
# that the quickstart can move on and the committed runs keep their config.
FLAGFILE = os.path.join(ROOT, "tools", "pay_study.flags")
# The study's setting beyond that flagfile's: what it set when the committed runs were made (the paper's trigger,
# the identity start, recalibrated statistics, rate 0.05). Every run of the study passes these first, and an
# arm's own flags win.
STUDY_FLAGS = (
    "--condition=consecutive",
    "--k=2",
    "--nojoint",
    "--differential_init=identity",
    "--bn_statistics=recalibrated",
    "--learning_rate=0.05",
)
FRONT_EPOCHS = (1, 2, 3, 4, 6)
DUAL_EPOCHS = 3
CHECK = "--statistics_check_batches=40"
# A run's differential and shared gammas (`gamma_table`), kept where its final model is not.
GAMMAS_FILE = "gammas.json"

FRONT = {
    "X-C": ["--condition=never", "--differential_init=paper", "--bn_statistics=private"],
    "Y-C": ["--condition=always", "--differential_init=paper", "--bn_statistics=private"],
}
BN = {
    f"k2-{init}-{bn}": ["--k=2", f"--differential_init={init}", f"--bn_statistics={bn}", CHECK]
    for init in ("paper", "id")
    for bn in ("shared", "private", "recalibrated")
}
for flags in BN.values():
    flags[1] = flags[1].replace("=id", "=identity")

ID = ["--differential_init=identity", "--bn_statistics=recalibrated", CHECK]
POLICIES = {
    "k1-id": ["--k=1", *ID],
    "k2-id-recalibrated": BN["k2-id-recalibrated"],
    "k3-id": ["--k=3", *ID],
    "ExpB:k1-id": "ExpB:k1-id",
    "ExpB:k2-id-recalibrated": "ExpB:k2-id-recalibrated",
    "ExpB:k3-id": "ExpB:k3-id",
    "share0.5-id": ["--condition=random_share:share=0.5", *ID],
    "share0.8-id": ["--condition=random_share:share=0.8", *ID],
    "ramp-id": ["--condition=random_share:share=[0.2,0.5,0.8]", *ID],
}
# The front at each network's best learning rate (the study's 0.05 is
# untuned): `tune` sweeps it at TUNE_EPOCHS on seed 0, then every seed at the
# TUNE_TOP best; `tuned_front` trains each network at its best 3-seed rate for
# TUNED_EPOCHS (the 3-epoch runs are the sweep's own).
LEARNING_RATES = (0.025, 0.05, 0.1, 0.2, 0.4)
TUNE_EPOCHS = 3
TUNE_TOP = 2
TUNED_EPOCHS = (3, 6)
JOINT_EPOCHS = (3, 6)
# Both models on one batch (the nested-network way), at the tuned front's
# budgets (6 epochs cost twice 3: `--arms` picks the few worth it), most
# telling first: joint on every batch at three rates; a base-only first
# epoch then joint (growth at an epoch boundary, from the identity start);
# joint with the base's loss weighted 2; growth after 15% of the steps with a
# re-warmed rate, from the identity start, from a last gamma of 0.25 and from
# the paper's start (the differential layers as initialised, not function-
# preserving); the paper's trigger with joint steps; joint with in-place
# distillation; and, for comparison, the trainer's former defaults (the trigger with k = 3).
PAPER_PRIVATE = ["--differential_init=paper", "--bn_statistics=private"]
GROWTH = ["--condition=growth:epochs=0.45", "--joint"]
REWARM = ["--rewarm_epochs=0.1", "--learning_rate=0.1"]
GROW_GAMMA = [*GROWTH, "--differential_init=identity:gamma=0.25", "--bn_statistics=private", *REWARM]
# Growth from the paper's start with the base's loss weighted 2: the paper's start gave the bigger model the
# most and cost the base; the weight gave the base back on every batch (6 epochs).
GROW_PAPER_BW2 = [*GROWTH, "--joint_base_weight=2", *PAPER_PRIVATE, *REWARM]


def _recalibrated(flags):
    """`flags` with the statistics option that is the trainer's default (recomputed when read)."""
    return [f for f in flags if not f.startswith("--bn_statistics=")] + ["--bn_statistics=recalibrated"]


JOINT = {
    "joint-lr0.05": ["--condition=always", "--joint", *PAPER_PRIVATE, "--learning_rate=0.05"],
    "joint-lr0.1": ["--condition=always", "--joint", *PAPER_PRIVATE, "--learning_rate=0.1"],
    "joint-lr0.2": ["--condition=always", "--joint", *PAPER_PRIVATE, "--learning_rate=0.2"],
    "grow1ep-joint-id-lr0.1": [
        "--condition=random_share:share=[0.0,1.0,1.0]",
        "--joint",
        "--differential_init=identity",
        "--bn_statistics=private",
        "--learning_rate=0.1",
    ],
    "joint-bw2-lr0.1": [
        "--condition=always",
        "--joint",
        "--joint_base_weight=2",
        *PAPER_PRIVATE,
        "--learning_rate=0.1",
    ],
    "grow0.45-joint-id-rewarm0.1-lr0.1": [
        "--condition=growth:epochs=0.45",
        "--joint",
        "--differential_init=identity",
        "--bn_statistics=private",
        "--rewarm_epochs=0.1",
        "--learning_rate=0.1",
    ],
    "grow0.45-joint-gamma0.25-rewarm0.1-lr0.1": GROW_GAMMA,
    "grow0.45-joint-gamma0.25-rewarm0.1-recalibrated-lr0.1": _recalibrated(GROW_GAMMA),
    "grow0.45-joint-paper-rewarm0.1-lr0.1": [
        "--condition=growth:epochs=0.45",
        "--joint",
        *PAPER_PRIVATE,
        "--rewarm_epochs=0.1",
        "--learning_rate=0.1",
    ],
    # Growth from the paper's start with the base's loss weighted 2: the paper's start gave the bigger model
    # the most and cost the base; the weight gave the base back on every batch (6 epochs).
    "grow0.45-joint-paper-bw2-rewarm0.1-lr0.1": GROW_PAPER_BW2,
    "grow0.45-joint-paper-bw2-rewarm0.1-recalibrated-lr0.1": _recalibrated(GROW_PAPER_BW2),
    "k2-joint-lr0.1": ["--k=2", "--joint", *PAPER_PRIVATE, "--learning_rate=0.1"],
    "joint-distill0.5-lr0.1": [
        "--condition=always",
        "--joint",
        "--distillation=0.5",
        *PAPER_PRIVATE,
        "--learning_rate=0.1",
    ],
    # The trainer's defaults before growth became the default (the trigger with k = 3, no joint step, the
    # identity start, recalibrated statistics) at the joint arms' rate; STUDY_FLAGS give the rest.
    "defaults-k3-lr0.1": ["--k=3", "--learning_rate=0.1"],
}
# The arm the trainer's defaults are (tests/test_config.py checks them flag for flag).
DEFAULT_ARM = "grow0.45-joint-paper-bw2-rewarm0.1-recalibrated-lr0.1"
# The partial joint step (issue 40): the default policy with the base's own layers on a share of each joint batch,
# so that a step costs the motivated model's plus that share of the base's tail (the pairs' first block is shared).
for _share in (0.25, 0.5):
    JOINT[f"{DEFAULT_ARM[: -len('-lr0.1')]}-share{_share:g}-lr0.1"] = [
        *JOINT[DEFAULT_ARM],
        f"--joint_base_share={_share:g}",
    ]


def policy_arm(base_weight=2, equilibrium=False, distillation=0.0, teachers="largest"):
    """(name, flags) of the default policy's arm with another joint step (issue 45): the base's loss weight,
    gradient equilibrium, in-place distillation from the largest model or from every larger one (one-for-all)."""
    name = f"grow0.45-joint-paper-bw{base_weight:g}" + ("-eq" if equilibrium else "")
    flags = [f for f in JOINT[DEFAULT_ARM] if not f.startswith("--joint_base_weight=")]
    flags.append(f"--joint_base_weight={base_weight:g}")
    if equilibrium:
        flags.append("--equilibrium")
    if distillation:
        name += f"-distill{distillation:g}" + ("all" if teachers == "all" else "")
        flags += [f"--distillation={distillation:g}", f"--distillation_teachers={teachers}"]
    return f"{name}-rewarm0.1-recalibrated-lr0.1", flags


# Gradient equilibrium and the base's weight (issue 45; 3 and 4 after the screen favoured 2 over 1 on the ladder),
# each with in-place distillation from the largest model and from every larger one: the prefix ladder and the
# deeper prefix pair run them at --rates=0.05,0.1,0.2.
for _bw in (1, 2, 3, 4):
    for _eq in (False, True):
        for _distillation, _teachers in ((0.0, "largest"), (0.5, "largest"), (0.5, "all")):
            _name, _flags = policy_arm(_bw, _eq, _distillation, _teachers)
            JOINT.setdefault(_name, _flags)
GROUPS = ("bn", "front", "policies", "tune", "tuned_front", "joint")
# `solo` (only when named): X-C and Y-C alone at every rate of the sweep, at SOLO_EPOCHS, each seed;
# `--arms` picks the few needed (Y-C-lr0.1: a new network's solo twin at the study's budget, without
# the 3-epoch sweep). Workdirs as the tuned front's: OUT/ep6/Y-C-lr0.1/seed0.
SOLO_EPOCHS = (6,)
OPTIONAL_GROUPS = ("solo",)


def lr_arm(arm, lr):
    """The workdir name of a front arm at one learning rate: X-C-lr0.2."""
    return f"{arm}-lr{lr:g}"


def _with_lr(flags, lr):
    return [*flags, f"--learning_rate={lr:g}"]


def at_rates(arms, rates):
    """Each arm named ...-lr<rate> once at each of `rates` (its name's and its flag's rate replaced); arms
    without a rate in their name as they are. A network that trains at other rates (a ViT with AdamW)
    runs the joint arms at its own."""
    if rates is None:
        return arms
    out = {}
    for name, flags in arms.items():
        stem, sep, _ = name.rpartition("-lr")
        if not sep or isinstance(flags, str):
            out[name] = flags
            continue
        for lr in rates:
            out[lr_arm(stem, lr)] = [f for f in flags if not f.startswith("--learning_rate=")] + [
                f"--learning_rate={lr:g}"
            ]
    return out


def _accuracy(path, arm):
    from keras_motivation import summary_json as summary_lib

    with open(os.path.join(path, "summary.json")) as f:
        return summary_lib.accuracy(json.load(f), "motivated" if arm == "Y-C" else "base")


def lr_means(out, arm, seeds, epochs=TUNE_EPOCHS):
    """{learning rate: [accuracy per finished seed]} of a front arm's sweep."""
    means = {}
    for lr in LEARNING_RATES:
        paths = [reproduce.workdir(os.path.join(out, f"ep{epochs}"), lr_arm(arm, lr), s) for s in seeds]
        accs = [_accuracy(p, arm) for p in paths if reproduce.finished(p)]
        if accs:
            means[lr] = accs
    return means


def best_lr(out, arm, seeds):
    """The rate with the best mean over every seed (ties: the smaller rate); None before the sweep is done."""
    full = {lr: a for lr, a in lr_means(out, arm, seeds).items() if len(a) == len(seeds)}
    if not full:
        return None
    return max(sorted(full), key=lambda lr: statistics.mean(full[lr]))


def _top_rates(out, first_seed):
    """The TUNE_TOP best rates of each front arm on the first seed, as arms."""
    top = {}
    for arm, flags in FRONT.items():
        first = lr_means(out, arm, first_seed)
        for lr in sorted(first, key=lambda lr: -first[lr][0])[:TUNE_TOP]:
            top[lr_arm(arm, lr)] = _with_lr(flags, lr)
    return top


def _tuned(out, seeds):
    """Each front arm at its best rate over every seed, as arms."""
    tuned = {}
    for arm, flags in FRONT.items():
        lr = best_lr(out, arm, seeds)
        if lr is None:
            raise SystemExit(f"tuned_front needs the finished sweep of {arm}: run --groups=tune first.")
        tuned[lr_arm(arm, lr)] = _with_lr(flags, lr)
    return tuned


def _specs(arms):
    return reproduce.parse_arms([], [v if isinstance(v, str) else f"{k}={' '.join(v)}" for k, v in arms.items()])


def run(
    out,
    seeds=(0, 1, 2),
    groups=GROUPS,
    flagfile=FLAGFILE,
    front_epochs=FRONT_EPOCHS,
    dual_epochs=DUAL_EPOCHS,
    extra=(),
    policies=None,
    only=None,
    epochs=None,
    rates=None,
    log=print,
):
    """Runs the study's groups into `out` (OUT/ep<E>/<arm>/seed<S>); returns the workdirs.

    `only` keeps the named arms, `epochs` the named budgets (both: all when None); `rates` replaces the
    solo sweep's learning rates and runs each joint arm at each of them (`at_rates`)."""
    # Each step is made when it is reached: the sweep's top rates and the tuned
    # front read the runs of the steps before them.
    plan = []
    if "bn" in groups:
        plan.append(lambda: (dual_epochs, BN, seeds))
    if "front" in groups:
        plan += [lambda e=epochs: (e, FRONT, seeds) for epochs in front_epochs]
    if "policies" in groups:
        plan.append(lambda: (dual_epochs, POLICIES if policies is None else policies, seeds))
    if "tune" in groups:
        sweep = {lr_arm(a, lr): _with_lr(f, lr) for a, f in FRONT.items() for lr in LEARNING_RATES}
        plan.append(lambda: (TUNE_EPOCHS, sweep, seeds[:1]))
        plan.append(lambda: (TUNE_EPOCHS, _top_rates(out, seeds[:1]), seeds))
    if "tuned_front" in groups:
        plan += [lambda e=epochs: (e, _tuned(out, seeds), seeds) for epochs in TUNED_EPOCHS]
    if "joint" in groups:
        plan += [lambda e=epochs: (e, at_rates(JOINT, rates), seeds) for epochs in JOINT_EPOCHS]
    if "solo" in groups:
        solo = {lr_arm(a, lr): _with_lr(f, lr) for a, f in FRONT.items() for lr in rates or LEARNING_RATES}
        plan += [lambda e=epochs: (e, solo, seeds) for epochs in SOLO_EPOCHS]
    done = []
    for step in plan:
        step_epochs, arms, step_seeds = step()
        if epochs is not None and step_epochs not in epochs:
            continue
        if only is not None:
            arms = {name: flags for name, flags in arms.items() if name in only}
        done += reproduce.run_arms(
            flagfile,
            os.path.join(out, f"ep{step_epochs}"),
            step_seeds,
            _specs(arms),
            step_epochs,
            extra=(*STUDY_FLAGS, *extra),
            log=log,
        )
    return done


def _summaries(out):
    """{(epochs, arm): [summary of each finished seed]} of a study directory OUT/ep<E>/<arm>/seed<S>."""
    groups = {}
    for ep in sorted(os.listdir(out)):
        if not ep.startswith("ep") or not ep[2:].isdigit():
            continue
        for arm in sorted(os.listdir(os.path.join(out, ep))):
            for seed in sorted(os.listdir(os.path.join(out, ep, arm))):
                path = os.path.join(out, ep, arm, seed, "summary.json")
                if os.path.exists(path):
                    with open(path) as f:
                        groups.setdefault((int(ep[2:]), arm), []).append(json.load(f))
    return groups


def _mean_std(values):
    """(mean, standard deviation) of `values`; the deviation is None for one value, both for none."""
    if not values:
        return None, None
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def _fmt(mean_std, missing=""):
    """A (mean, std) as report.fmt_mean_sd writes it ("85.57 ± 0.27"; one seed: "85.57"); `missing` without a mean."""
    import report

    return report.fmt_mean_sd(*mean_std) or missing


def _best_classical(groups, epochs, arm, model):
    """The mean accuracy (%) of `arm` (X-C or Y-C; `model`: "base" or "motivated") at its best rate at `epochs`,
    among its rates with the most finished seeds there (all three once the sweep is done; the 6-epoch front has
    the tuned rate only)."""
    from keras_motivation import summary_json as summary_lib

    runs = {name: members for (e, name), members in groups.items() if e == epochs and name.startswith(f"{arm}-lr")}
    if not runs:
        return None
    most = max(len(members) for members in runs.values())
    return max(
        statistics.mean(100 * summary_lib.accuracy(s, model) for s in m) for m in runs.values() if len(m) == most
    )


def tuned_table(out):
    """The tuned study as a markdown table: every arm at each budget, both models' accuracy (mean ± std over
    its seeds; one seed: the mean alone), compute, and each model's difference from the best-rate X-C / Y-C at
    the same epochs."""
    from keras_motivation import summary_json as summary_lib

    groups = _summaries(out)
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
            _mean_std([100 * summary_lib.accuracy(s, "base") for s in members])
            if not arm.startswith("Y-C")
            else (None, None)
        )
        mot = (
            _mean_std([100 * summary_lib.accuracy(s, "motivated") for s in members])
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

    groups = _summaries(out)
    names = summary_lib.rung_names(max(len(summary_lib.model_names(s["pair"])) for m in groups.values() for s in m))
    lines = [
        "| arm | epochs | seeds | training TFLOPs | CPU s | " + " | ".join(f"{n} %" for n in names) + " |",
        "|---|---|---|---|---|" + "---|" * len(names),
    ]
    for (epochs, arm), members in sorted(groups.items()):
        accs = [_fmt(_mean_std([100 * summary_lib.accuracy(s, name) for s in members])) for name in names]
        tflops = statistics.mean(summary_lib.training_flops(s, "total") for s in members) / 1e12
        cpu = statistics.mean(s["cpu_time_s"] for s in members)
        lines.append(f"| {arm} | {epochs} | {len(members)} | {tflops:.2f} | {cpu:.0f} | " + " | ".join(accs) + " |")
    return "\n".join(lines)


def _config(run_dir):
    with open(os.path.join(run_dir, "config.json")) as f:
        return json.load(f)


def twin(network, epochs, model_kwargs):
    """(mean accuracy %, sd, mean training FLOPs, mean CPU s, its study/arm) of `network` trained alone at its best
    rate at `epochs`, with the same model arguments, from the committed tuned studies (TUNED_STUDIES), or None."""
    from keras_motivation import summary_json as summary_lib

    for pair, study in TUNED_STUDIES.items():
        names = pair.split(":")
        if network not in names:
            continue
        role, model = ("X-C", "base") if names.index(network) == 0 else ("Y-C", "motivated")
        groups = _summaries(os.path.join(EXAMPLES, study))
        runs = {n: m for (e, n), m in groups.items() if e == epochs and n.startswith(f"{role}-lr")}
        folder = os.path.join(EXAMPLES, study, f"ep{epochs}")
        runs = {
            n: m
            for n, m in runs.items()
            if _config(os.path.join(folder, n, sorted(os.listdir(os.path.join(folder, n)))[0]))["model_kwargs"]
            == model_kwargs
        }
        if not runs:
            continue
        most = max(len(m) for m in runs.values())
        name, best = max(
            ((n, m) for n, m in sorted(runs.items()) if len(m) == most),
            key=lambda nm: statistics.mean(summary_lib.accuracy(s, model) for s in nm[1]),
        )
        mean, sd = _mean_std([100 * summary_lib.accuracy(s, model) for s in best])
        flops = statistics.mean(summary_lib.training_flops(s, "total") for s in best)
        return mean, sd, flops, statistics.mean(s["cpu_time_s"] for s in best), f"{study}/ep{epochs}/{name}"
    return None


def rung_rows(out, arms=None):
    """Per arm of a pair or ladder study in `out` (or of `arms`, [(study folder, epochs, arm)] under
    tools/examples): each model's accuracy (mean, sd), its difference from its twin (the same network trained
    alone at its best rate, `twin`) and the run's training FLOPs and CPU time against the largest twin's."""
    from keras_motivation import summary_json as summary_lib

    if arms is None:
        groups = {(out, e, a): m for (e, a), m in _summaries(out).items() if not a.startswith(("X-C", "Y-C"))}
    else:
        groups = {}
        for study, epochs, arm in arms:
            folder = os.path.join(EXAMPLES, study)
            groups[(folder, epochs, arm)] = _summaries(folder)[(epochs, arm)]
    rows = []
    for (folder, epochs, arm), members in sorted(groups.items()):
        seed_dir = os.path.join(folder, f"ep{epochs}", arm)
        config = _config(os.path.join(seed_dir, sorted(os.listdir(seed_dir))[0]))
        networks = config["pair"].split(":")
        row = {"arm": arm, "pair": config["pair"], "epochs": epochs, "seeds": len(members), "models": []}
        twins = [twin(n, epochs, config["model_kwargs"]) for n in networks]
        for network, name, alone in zip(networks, summary_lib.model_names(config["pair"]), twins):
            mean, sd = _mean_std([100 * summary_lib.accuracy(s, name) for s in members])
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
    summaries, pair = [], None
    for seed in sorted(os.listdir(folder)):
        with open(os.path.join(folder, seed, "summary.json")) as f:
            summaries.append(json.load(f))
        with open(os.path.join(folder, seed, "config.json")) as f:
            pair = json.load(f)["pair"]
    return summaries, pair


def evidence_rows(evidence=EVIDENCE):
    """One dict per row of EVIDENCE: both models' mean accuracy (%) and spread, their twins' (each network alone
    at its best rate, the same epochs), and the run's training compute as a share of the twins' together and of
    the bigger twin's."""
    from keras_motivation import summary_json as summary_lib

    rows = []
    for label, study, epochs, arm in evidence:
        members, pair = _arm_runs(study, epochs, arm)
        groups = _summaries(os.path.join(EXAMPLES, TUNED_STUDIES[pair]))
        twins = {}
        for role, model in (("X-C", "base"), ("Y-C", "motivated")):
            # The accuracy at the best rate; the compute is the same at every rate.
            runs = next(m for (e, name), m in sorted(groups.items()) if e == epochs and name.startswith(f"{role}-lr"))
            twins[role] = (
                _best_classical(groups, epochs, role, model),
                statistics.mean(summary_lib.training_flops(s, "total") for s in runs),
            )
        compute = statistics.mean(summary_lib.training_flops(s, "total") for s in members)
        row = {
            "policy": label,
            "pair": pair,
            "epochs": epochs,
            "seeds": len(members),
            "arm": f"{study}/ep{epochs}/{arm}",
        }
        for model in ("base", "motivated"):
            row[model] = _mean_std([100 * summary_lib.accuracy(s, model) for s in members])
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
    import report

    from keras_motivation import summary_json as summary_lib

    groups = _summaries(out)
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
            mean, std = _mean_std([100 * summary_lib.accuracy(s, model) for s in best])
            front[model].append(
                report.FrontPoint(
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
            row[f"{model}_mean"], row[f"{model}_sd"] = _mean_std(
                [100 * summary_lib.accuracy(s, model) for s in members]
            )
        rows.append(row)
    # The pair from a run of the bigger network (a study may hold the base's runs copied from another pair's).
    names = report.model_names(next(m for (_, n), m in groups.items() if not n.startswith("X-C"))[0]["pair"])
    report.plot_front(front, rows, path, names)
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
    for epochs, arm in sorted(_summaries(out)):
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
            with open(os.path.join(run_dir, "summary.json")) as f:
                summary = json.load(f)
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="root directory of the study's workdirs")
    p.add_argument(
        "--table",
        action="store_true",
        help="print the tuned study's table from --out (a ladder study's: ladder_table) and stop",
    )
    p.add_argument(
        "--rungs",
        action="store_true",
        help="print each model's accuracy in --out against the same network trained alone (rung_table) and stop",
    )
    p.add_argument("--gammas", action="store_true", help="print the differential blocks' gammas from --out and stop")
    p.add_argument(
        "--evidence", action="store_true", help="print the README's table of each policy against its twins and stop"
    )
    p.add_argument("--figure", default="", help="write the tuned study in --out as this accuracy-against-compute PNG")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--groups", default=",".join(GROUPS), help=f"some of {', '.join(GROUPS + OPTIONAL_GROUPS)}")
    p.add_argument("--arms", default="", help="only these arms of the groups (comma-separated names); default all")
    p.add_argument(
        "--epochs", default="", help="only these budgets (comma-separated epochs, for example 3); default all"
    )
    p.add_argument(
        "--pair",
        default="",
        help="train this pair or ladder instead of the study flagfile's (for example resnet8:resnet20 or "
        "resnet8:resnet8p14:resnet8p20), into its own --out",
    )
    p.add_argument(
        "--model_kwargs",
        default="",
        help="the models' arguments instead of the study flagfile's width=16 (for example width=8), into its own --out",
    )
    p.add_argument(
        "--rates",
        default="",
        help="learning rates (comma-separated) of the solo sweep and the joint arms instead of theirs, "
        "for a network with its own recipe (--flags), into its own --out",
    )
    p.add_argument(
        "--flags",
        default="",
        help='trainer flags after the study\'s (space-separated: "--optimizer=adamw --warmup_epochs=0.5"); '
        "an arm's own flags still win",
    )
    args = p.parse_args(argv)
    if args.table:
        from keras_motivation import models

        ladder = any(models.is_ladder(s["pair"]) for members in _summaries(args.out).values() for s in members)
        print(ladder_table(args.out) if ladder else tuned_table(args.out))
        return
    if args.rungs:
        print(rung_table(args.out))
        return
    if args.gammas:
        print(gamma_table(args.out))
        return
    if args.evidence:
        print(evidence_table())
        return
    if args.figure:
        print(f"written: {tuned_figure(args.out, args.figure)}")
        return
    groups = [g for g in args.groups.split(",") if g]
    unknown = sorted(set(groups) - set(GROUPS + OPTIONAL_GROUPS))
    if unknown:
        raise SystemExit(f"Unknown groups {unknown}: use some of {', '.join(GROUPS + OPTIONAL_GROUPS)}.")
    only = [a for a in args.arms.split(",") if a] or None
    seeds = [int(s) for s in args.seeds.split(",")]
    budgets = [int(e) for e in args.epochs.split(",") if e] or None
    extra = []
    if args.pair:
        from keras_motivation import models

        if models.is_ladder(args.pair):
            try:
                models.registry.check_ladder(args.pair)
            except ValueError as err:
                raise SystemExit(str(err)) from None
        elif args.pair not in models.list_pairs():
            raise SystemExit(f"Unknown --pair {args.pair!r}: use one of {', '.join(models.list_pairs())}.")
        extra = [f"--pair={args.pair}"]
    if args.model_kwargs:
        # After the flagfile's --model_kwargs=width=16: the last value of a flag wins.
        extra.append(f"--model_kwargs={args.model_kwargs}")
    extra += args.flags.split()
    rates = [float(r) for r in args.rates.split(",") if r] or None
    done = run(
        args.out,
        seeds,
        groups,
        only=only,
        epochs=budgets,
        extra=extra,
        rates=rates,
        log=lambda line: print(line, flush=True),
    )
    print(f"{len(done)} runs in {args.out}; report: python tools/report.py {args.out} --out={args.out}/report")


if __name__ == "__main__":
    main()
