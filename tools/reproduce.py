"""Runs the arms of a paper experiment over several seeds, one workdir each.

    python tools/reproduce.py --flagfile=configs/quickstart.flags --out=runs/quickstart \
        --seeds=0,1,2 --epochs=3 --train_size=10000

Arms (paper sections 4-5): X-C (`never`, the base trained classically), X-Y
(the experiment's condition: gives X-Y-B and X-Y-M), Y-C (`always`, the
motivated model trained classically), Exp A (`random`) and Exp B
(`matched_random` with the motivated steps per epoch measured in the X-Y runs);
X-Y runs the paper's random start, X-Y-id the identity start. Finished runs are kept,
interrupted ones resume from their backup: rerun the same command after a stop.
Then: python tools/report.py runs/quickstart --out=runs/quickstart/report
"""

import argparse
import json
import os
import statistics

ARMS = ("X-C", "X-Y", "Y-C", "ExpA", "ExpB", "X-Y-id")


def arm_flags(arm, matched_per_epoch=None):
    """Flags that turn the experiment's config into one arm."""
    # Every arm but X-Y-id starts the differential layers as the paper does
    # (for Y-C that is classical training of the motivated model).
    init = ["--differential_init=identity" if arm == "X-Y-id" else "--differential_init=paper"]
    return init + {
        "X-C": ["--condition=never"],
        "X-Y": [],
        "X-Y-id": [],
        "Y-C": ["--condition=always"],
        "ExpA": ["--condition=random"],
        "ExpB": [f"--condition=matched_random:per_epoch={matched_per_epoch}"],
    }[arm]


def workdir(out, arm, seed):
    return os.path.join(out, arm, f"seed{seed}")


def finished(path):
    return os.path.exists(os.path.join(path, "summary.json"))


def matched_count(out, seeds):
    """Mean motivated steps per epoch over the finished X-Y runs (for Exp B)."""
    counts = []
    for seed in seeds:
        path = os.path.join(workdir(out, "X-Y", seed), "summary.json")
        if os.path.exists(path):
            with open(path) as f:
                s = json.load(f)
            counts.append(s["activations"]["motivated_steps"] / s["epochs"])
    if not counts:
        raise SystemExit("Exp B needs finished X-Y runs: include X-Y in --arms (it runs first).")
    return max(1, round(statistics.mean(counts)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flagfile", required=True, help="the experiment's config")
    p.add_argument("--out", required=True, help="root directory of the arms' workdirs")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--epochs", type=int, default=None, help="budget: epochs per run")
    p.add_argument("--train_size", type=int, default=None, help="budget: training examples per run")
    p.add_argument("--extra", action="append", default=[], help="more trainer flags, e.g. --extra=--batch_size=64")
    args = p.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise SystemExit(f"Unknown arms {unknown}: use some of {', '.join(ARMS)}.")
    seeds = [int(s) for s in args.seeds.split(",")]
    # Exp B needs the X-Y counts: run X-Y first.
    arms.sort(key=lambda a: (a == "ExpB", a != "X-Y"))

    from keras_motivation import train, trainer

    budget = [f"--epochs={args.epochs}"] * bool(args.epochs) + [f"--train_size={args.train_size}"] * bool(args.train_size)
    done = []
    for arm in arms:
        per_epoch = matched_count(args.out, seeds) if arm == "ExpB" else None
        for seed in seeds:
            path = workdir(args.out, arm, seed)
            if finished(path):
                done.append(path)
                continue
            argv_ = ["reproduce", f"--flagfile={args.flagfile}", *budget, *args.extra, f"--seed={seed}",
                     f"--workdir={path}", "--verbose=0", *arm_flags(arm, per_epoch)]
            config = train.config_from_args(argv_)
            summary = trainer.run(config)
            print(f"{arm} seed {seed}: base {summary['final'].get('accuracy'):.4f} "
                  f"motivated {summary['final'].get('motivated_accuracy'):.4f} -> {path}", flush=True)
            done.append(path)
    print(f"{len(done)} runs in {args.out}; report: python tools/report.py {args.out} --out={args.out}/report")
    return done


if __name__ == "__main__":
    main()
