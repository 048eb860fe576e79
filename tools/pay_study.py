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
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reproduce  # noqa: E402
import runs as runs_lib  # noqa: E402

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

    return summary_lib.accuracy(runs_lib.read_run(path)["summary"], "motivated" if arm == "Y-C" else "base")


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
    import pay_tables

    if args.table:
        from keras_motivation import models

        ladder = any(
            models.is_ladder(s["pair"]) for members in pay_tables.summaries(args.out).values() for s in members
        )
        print(pay_tables.ladder_table(args.out) if ladder else pay_tables.tuned_table(args.out))
        return
    if args.rungs:
        print(pay_tables.rung_table(args.out))
        return
    if args.gammas:
        print(pay_tables.gamma_table(args.out))
        return
    if args.evidence:
        print(pay_tables.evidence_table())
        return
    if args.figure:
        print(f"written: {pay_tables.tuned_figure(args.out, args.figure)}")
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
