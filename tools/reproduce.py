"""Runs the arms of a paper experiment over several seeds and budgets, one workdir each.

    python tools/reproduce.py --flagfile=configs/quickstart.flags --out=runs/quickstart \
        --seeds=0,1,2 --epochs=3 --train_size=10000

Arms (paper sections 4-5): X-C (`never`, the base trained classically), X-Y
(the experiment's condition: gives X-Y-B and X-Y-M), Y-C (`always`, the
motivated model trained classically), Exp A (`random`) and Exp B
(`matched_random` with the motivated steps per epoch measured in the X-Y runs);
X-Y runs the paper's random start, X-Y-id the identity start. More arms:
`--arm="NAME=--flag=value --flag=value"` (the flags are added to the
experiment's), and `--arm=ExpB:NAME`, Exp B matched to arm NAME (its flags, with
as many motivated batches per epoch as NAME's runs had, at random batches).

`--epochs=1,2,3` runs every arm at each budget, in `OUT/ep<E>/`. Finished runs
are kept, interrupted ones resume from their backup: rerun the same command
after a stop. Then: python tools/report.py runs/quickstart --out=runs/quickstart/report
"""

import argparse
import os
import statistics

import runs as runs_lib

# Every built-in arm but X-Y-id starts the differential layers as the paper
# does (for Y-C that is classical training of the motivated model).
ARMS = {
    "X-C": ["--condition=never", "--differential_init=paper"],
    "X-Y": ["--differential_init=paper"],
    "Y-C": ["--condition=always", "--differential_init=paper"],
    "ExpA": ["--condition=random", "--differential_init=paper"],
    "ExpB": "ExpB:X-Y",
    "X-Y-id": ["--differential_init=identity"],
}
MATCHED = "ExpB:"


def parse_arms(names, custom=()):
    """{arm name: flags, or 'ExpB:OTHER'} in run order (matched arms after the arm they match)."""
    arms = {}
    for spec in list(names) + list(custom):
        name, eq, flags = spec.partition("=")
        if eq:
            arms[name] = flags.split()
        elif name in ARMS:
            arms[name] = ARMS[name]
        elif name.startswith(MATCHED):
            arms[name] = name
        else:
            raise SystemExit(f"Unknown arm {name!r}: use one of {', '.join(ARMS)}, ExpB:<arm>, or NAME=FLAGS.")
    for name, flags in arms.items():
        if isinstance(flags, str) and flags[len(MATCHED) :] not in arms:
            raise SystemExit(f"{name} needs the runs of arm {flags[len(MATCHED) :]}: include it in the arms.")
    return dict(sorted(arms.items(), key=lambda kv: isinstance(kv[1], str)))


def workdir(out, arm, seed):
    return os.path.join(out, arm, f"seed{seed}")


def finished(path):
    return os.path.exists(os.path.join(path, "summary.json"))


def matched_count(out, arm, seeds):
    """Mean motivated steps per epoch over the finished runs of `arm` (for Exp B)."""
    counts = []
    for seed in seeds:
        run = runs_lib.read_run(workdir(out, arm, seed))
        if run is not None:
            counts.append(run["summary"]["activations"]["motivated_steps"] / run["summary"]["epochs"])
    if not counts:
        raise SystemExit(f"Exp B needs finished runs of arm {arm}.")
    return max(1, round(statistics.mean(counts)))


def arm_flags(arms, name, out, seeds):
    flags = arms[name]
    if isinstance(flags, str):
        matched = flags[len(MATCHED) :]
        base = arms[matched] if not isinstance(arms[matched], str) else []
        return [*base, f"--condition=matched_random:per_epoch={matched_count(out, matched, seeds)}"]
    return list(flags)


def run_arms(flagfile, out, seeds, arms, epochs=None, train_size=None, extra=(), log=print):
    """Trains every arm x seed that has no summary.json yet; returns the workdirs."""
    from keras_motivation import config as config_lib
    from keras_motivation import summary_json
    from keras_motivation import trainer

    budget = [f"--epochs={epochs}"] * bool(epochs) + [f"--train_size={train_size}"] * bool(train_size)
    done = []
    for arm in arms:
        flags = None
        for seed in seeds:
            path = workdir(out, arm, seed)
            if not finished(path):
                flags = flags or arm_flags(arms, arm, out, seeds)
                argv = [
                    "reproduce",
                    f"--flagfile={flagfile}",
                    *budget,
                    *extra,
                    f"--seed={seed}",
                    f"--workdir={path}",
                    "--verbose=0",
                    *flags,
                ]
                summary = trainer.run(config_lib.config_from_args(argv))
                log(
                    f"{arm} seed {seed}: base {summary_json.accuracy(summary, 'base'):.4f} "
                    f"motivated {summary_json.accuracy(summary, 'motivated'):.4f} -> {path}"
                )
            done.append(path)
    return done


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flagfile", required=True, help="the experiment's config")
    p.add_argument("--out", required=True, help="root directory of the arms' workdirs")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--arms", default=",".join(ARMS), help=f"built-in arms: {', '.join(ARMS)}, or ExpB:<arm>")
    p.add_argument("--arm", action="append", default=[], help='another arm: "NAME=--flag=value ..." (repeatable)')
    p.add_argument("--epochs", default=None, help="budget: epochs per run; a list (1,2,3) runs each in OUT/ep<E>")
    p.add_argument("--train_size", type=int, default=None, help="budget: training examples per run")
    p.add_argument("--extra", action="append", default=[], help="more trainer flags, e.g. --extra=--batch_size=64")
    args = p.parse_args(argv)
    arms = parse_arms([a for a in args.arms.split(",") if a], args.arm)
    seeds = [int(s) for s in args.seeds.split(",")]
    budgets = [int(e) for e in args.epochs.split(",")] if args.epochs else [None]
    done = []
    for epochs in budgets:
        out = os.path.join(args.out, f"ep{epochs}") if len(budgets) > 1 else args.out
        done += run_arms(
            args.flagfile,
            out,
            seeds,
            arms,
            epochs,
            args.train_size,
            args.extra,
            log=lambda line: print(line, flush=True),
        )
    print(f"{len(done)} runs in {args.out}; report: python tools/report.py {args.out} --out={args.out}/report")
    return done


if __name__ == "__main__":
    from keras_motivation import preemption

    try:
        main()
    except preemption.Preempted as stop:
        # SIGTERM, SIGUSR1 or Ctrl-C: the run in training was saved; the same command resumes it.
        print(stop.line(), flush=True)
        raise SystemExit(preemption.EXIT_CODE) from None
