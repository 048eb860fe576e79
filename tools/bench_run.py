"""Whole runs on the clock: the trainer's run of a pair or ladder against plain `keras.Model.fit` of its networks.

    python tools/bench.py whole_run --pair=resnet8:resnet8p14 --epochs=3 --repeats=3 --out=run.json
    # a ladder at its rate; a balanced pair against plain fits of both of its networks
    python tools/bench.py whole_run --pair=resnet8:resnet8p14:resnet8p20 --learning_rate=0.05 --out=ladder.json
    python tools/bench.py whole_run --pair=resnet8:resnet14 --alone=all --out=balanced.json
    # the performance page's tables from committed JSON
    python tools/bench.py whole_run --table run.json ladder.json

Each arm is a process of its own, timed from its start to its exit (wall-clock,
and CPU time of the process and its threads from `getrusage`): `trainer`,
`python -m keras_motivation.train` with the quickstart's flagfile (its data,
recipe and per-epoch validation on the 10,000 test images) and the trainer's
default policy; `plain:<network>`, the same network trained alone by plain
`keras.Model.fit`, with the trainer's own input pipeline
(`keras_motivation.data.make_datasets`), optimizer and schedule
(`recipes.optimizer`, without the re-warm-up that only growth has), loss,
metrics and per-epoch validation, and nothing else (no callbacks of its own,
no saving). The arms are interleaved (each repeat in a rotated order) and the
ratios are paired: per repeat, the trainer's time over the reference's
(`--alone=largest`: the largest network's plain fit; `all`: the sum of every
network's, a balanced pair's reference), then the median and the range over
the repeats. The load average is recorded before and after each repeat, each
run's own breakdown (summary.json's `time_breakdown`; the plain fit's start-up,
fit and end) beside it. The JSON is written after every repeat.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGFILE = os.path.join(ROOT, "configs", "quickstart.flags")
# The plain fit's recipe is the trainer's without what only a motivated run has.
PLAIN_FLAGS = ("--condition=always", "--nojoint", "--rewarm_epochs=0", "--bn_statistics=private")
BREAKDOWN = ("startup", "tracing", "train_steps", "validation", "statistics", "callbacks_and_backups", "fit_other")
# The breakdown's phases as the tables name them.
PHASES = {
    "startup": "start-up (data, models)",
    "tracing": "tracing",
    "train_steps": "train steps",
    "validation": "validation",
    "statistics": "statistics recomputed",
    "callbacks_and_backups": "callbacks and backups",
    "fit_other": "other time in `fit`",
    "finish": "finish (evaluation, saving)",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="bench.py whole_run", description=__doc__.splitlines()[0])
    p.add_argument("--pair", default="resnet8:resnet8p14", help="the trainer's --pair (a pair or a ladder)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--learning_rate", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--alone", choices=("largest", "all"), default="largest", help="the reference's networks")
    p.add_argument("--flagfile", default=FLAGFILE, help="the trainer's flagfile (data, recipe, budget)")
    p.add_argument("--trainer_flags", default="", help="more trainer flags, space-separated (both arms)")
    p.add_argument("--workdir", default=None, help="where the runs write (default: a temporary folder, removed)")
    p.add_argument("--out", default=None)
    p.add_argument("--table", nargs="+", metavar="JSON", help="print the tables of these runs' JSON")
    return p.parse_args(argv)


def _flags(args):
    return [
        f"--flagfile={args.flagfile}",
        f"--pair={args.pair}",
        f"--epochs={args.epochs}",
        f"--learning_rate={args.learning_rate:g}",
        *args.trainer_flags.split(),
    ]


def arms(args):
    """{arm: command line}: the trainer's run, then each reference network's plain fit."""
    networks = args.pair.split(":")
    reference = networks if args.alone == "all" else networks[-1:]
    out = {"trainer": [sys.executable, "-m", "keras_motivation.train", *_flags(args)]}
    for network in reference:
        out[f"plain:{network}"] = [sys.executable, os.path.abspath(__file__), "plain_fit", network, *_flags(args)]
    return out


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(command, workdir):
    """(wall-clock s, CPU s) of one process from its start to its exit, and what it reported."""
    os.makedirs(workdir, exist_ok=True)
    log = os.path.join(workdir, "log.txt")
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cpu, wall = _children_cpu(), time.perf_counter()
    with open(log, "w") as f:
        done = subprocess.run([*command, f"--workdir={workdir}/run"], stdout=f, stderr=subprocess.STDOUT, env=env)
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    if done.returncode:
        with open(log) as f:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{f.read()[-3000:]}")
    return wall, cpu, _reported(workdir)


def _reported(workdir):
    """What a run reported: the trainer's summary.json or the plain fit's plain.json (the same keys)."""
    for name in ("summary.json", "plain.json"):
        path = os.path.join(workdir, "run", name)
        if os.path.exists(path):
            with open(path) as f:
                summary = json.load(f)
            largest = summary.get("motivated") or {}
            return {
                "accuracy": largest.get("accuracy", summary.get("accuracy")),
                "accuracies": {k: v["accuracy"] for k, v in summary.items() if isinstance(v, dict) and "accuracy" in v},
                "time_breakdown": summary.get("time_breakdown"),
                "training_flops": summary.get("training_flops"),
                "forward_flops": {
                    k: v["forward_flops_per_image"]
                    for k, v in summary.items()
                    if isinstance(v, dict) and "forward_flops_per_image" in v
                },
                "steps": (summary.get("activations") or {}).get("steps", summary.get("steps")),
                "batch_size": summary.get("batch_size"),
            }
    raise SystemExit(f"{workdir}/run has no summary.json or plain.json")


def _spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "each": values}


def ratios(result):
    """Per clock: the trainer's time over the reference's, paired per repeat (process and in-run times)."""
    reference = [a for a in result["arms"] if a != "trainer"]
    out = {}
    for clock in ("wall_s", "cpu_s"):
        trainer = result["arms"]["trainer"][clock]
        alone = [sum(result["arms"][a][clock][i] for a in reference) for i in range(len(trainer))]
        out[clock] = _spread([t / r for t, r in zip(trainer, alone)])
    return out


def flops_ratio(result):
    """The trainer's training FLOPs (recomputed statistics included) over its reference networks' trained alone for
    the same steps (from the trainer's summary)."""
    reported = result["arms"]["trainer"]["reported"][0]
    flops, forward = reported.get("training_flops") or {}, reported.get("forward_flops") or {}
    if "total" not in flops:
        return None
    names = list(forward)
    reference = names if result["args"]["alone"] == "all" else names[-1:]
    largest_alone = flops["motivated_alone"]
    alone = sum(largest_alone * forward[n] / forward[names[-1]] for n in reference)
    return (flops["total"] + flops.get("recalibration_for_validation", 0.0)) / alone


def run(args):
    commands = arms(args)
    own = args.workdir is None
    top = args.workdir or tempfile.mkdtemp(prefix="bench_run_")
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "commit": _commit(),
        "args": vars(args),
        "commands": {k: " ".join(v) for k, v in commands.items()},
        "arms": {a: {"wall_s": [], "cpu_s": [], "reported": []} for a in commands},
        "load": [],
        "complete": False,
    }
    names = list(commands)
    try:
        for repeat in range(args.repeats):
            before = os.getloadavg()
            order = names[repeat % len(names) :] + names[: repeat % len(names)]
            for arm in order:
                workdir = os.path.join(top, f"{arm.replace(':', '_')}_{repeat}")
                wall, cpu, reported = timed_run(commands[arm], workdir)
                entry = result["arms"][arm]
                entry["wall_s"].append(wall)
                entry["cpu_s"].append(cpu)
                entry["reported"].append(reported)
                shutil.rmtree(workdir, ignore_errors=True)
                print(f"repeat {repeat} {arm}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
            result["load"].append({"order": order, "before": before, "after": os.getloadavg()})
            result["ratios"] = ratios(result)
            result["training_flops_ratio"] = flops_ratio(result)
            result["complete"] = repeat + 1 == args.repeats
            if args.out:
                with open(args.out, "w") as f:
                    f.write(json.dumps(result, indent=2))
    finally:
        if own:
            shutil.rmtree(top, ignore_errors=True)
    print(table(result))
    return result


def _commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def fmt_spread(s, fmt=".2f"):
    return f"{s['median']:{fmt}} ({s['min']:{fmt}}-{s['max']:{fmt}})"


def _median_breakdown(arm, clock="cpu_time_s"):
    """{phase: median seconds} of an arm's in-run breakdown over the repeats."""
    runs = [r["time_breakdown"][clock] for r in arm["reported"] if r.get("time_breakdown")]
    if not runs:
        return {}
    return {phase: statistics.median(run.get(phase, 0.0) for run in runs) for phase in (*BREAKDOWN, "finish", "total")}


def _outside(arm):
    """Median CPU s of the process outside its in-run breakdown (imports before the run, exit after it)."""
    pairs = [(c, r["time_breakdown"]) for c, r in zip(arm["cpu_s"], arm["reported"]) if r.get("time_breakdown")]
    return statistics.median(c - t["cpu_time_s"]["total"] for c, t in pairs) if pairs else None


def _alone_tflops(result, network):
    """A reference network's training FLOPs trained alone for the trainer's steps (from the trainer's summary)."""
    reported = result["arms"]["trainer"]["reported"][0]
    flops, forward = reported.get("training_flops") or {}, reported.get("forward_flops") or {}
    if "motivated_alone" not in flops:
        return None
    names = result["args"]["pair"].split(":")
    by_network = dict(zip(names, forward.values()))
    return flops["motivated_alone"] * by_network[network] / by_network[names[-1]] / 1e12


def table(result):
    """Markdown, the table of one run of the benchmark: a column per arm (the trainer's run, then each reference
    network's plain fit) and the paired ratio; rows: the process's CPU and wall-clock time (medians over the
    repeats), the training FLOPs, the largest network's accuracy, the load average, then each arm's CPU time per
    phase of its run (`time_breakdown`, medians)."""
    a, arms_ = result["args"], result["arms"]
    names = list(arms_)
    reference = names[1:]
    trainer_flops = arms_["trainer"]["reported"][0].get("training_flops") or {}
    header = [f"{a['pair']}, {a['epochs']} epochs", "trainer"]
    header += [f"{k.split(':')[1]} plain `fit`" for k in reference]
    header.append("trainer / " + (" + ".join(k.split(":")[1] for k in reference) if len(reference) > 1 else "plain"))
    rows = [header, ["---"] * len(header)]

    def row(label, cells, last=""):
        rows.append([label, *cells, last])

    loads = [x for entry in result["load"] for x in (entry["before"][0], entry["after"][0])]
    row(
        "repeats (interleaved)",
        [str(len(arms_[k]["cpu_s"])) for k in names],
        "" if result.get("complete") else "incomplete",
    )
    row(
        "CPU s, process",
        [f"{statistics.median(arms_[k]['cpu_s']):.0f}" for k in names],
        fmt_spread(result["ratios"]["cpu_s"]),
    )
    row(
        "wall-clock s, process",
        [f"{statistics.median(arms_[k]['wall_s']):.0f}" for k in names],
        fmt_spread(result["ratios"]["wall_s"]),
    )
    if "total" in trainer_flops:
        total = (trainer_flops["total"] + trainer_flops.get("recalibration_for_validation", 0.0)) / 1e12
        ratio = result.get("training_flops_ratio")
        row(
            "training TFLOPs",
            [f"{total:.2f}", *(f"{_alone_tflops(result, k.split(':')[1]):.2f}" for k in reference)],
            "" if ratio is None else f"{ratio:.2f}",
        )
    accuracy = []
    for k in names:
        values = [r["accuracy"] for r in arms_[k]["reported"] if r.get("accuracy") is not None]
        accuracy.append(f"{100 * statistics.median(values):.2f}" if values else "")
    row("accuracy of the largest network, %", accuracy)
    row("load average (1 min)", [f"{min(loads):.1f}-{max(loads):.1f}", *[""] * len(reference)])
    medians = {k: _median_breakdown(arms_[k]) for k in names}
    for phase, label in PHASES.items():
        row(f"CPU s: {label}", [f"{medians[k][phase]:.1f}" if medians[k] else "" for k in names])
    outside = [_outside(arms_[k]) for k in names]
    row("CPU s: before and after the run", ["" if o is None else f"{o:.1f}" for o in outside])
    return "\n".join("| " + " | ".join(r) + " |" if r[0] != "---" else "|" + "---|" * len(r) for r in rows)


def tables(results):
    """The table of each run, a blank line apart."""
    return "\n\n".join(table(r) for r in results)


# -- the plain fit (a child process) -----------------------------------------------------


def plain_fit(network, argv):
    """Trains `network` alone with plain `keras.Model.fit` on the trainer's data, pipeline and recipe (the trainer's
    flags `argv`), and writes <workdir>/plain.json: its accuracy and its breakdown (`run_clock`, as the trainer's)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_motivation import config as config_lib
    from keras_motivation import data as data_lib
    from keras_motivation import models as models_lib
    from keras_motivation import run_clock
    from keras_motivation import trainer

    clock = run_clock.RunClock()
    config = config_lib.config_from_args(["plain_fit", *argv, *PLAIN_FLAGS])
    trainer.check_config(config)
    strategy = trainer.start_strategy(config)
    record = trainer.load_run_data(config, strategy)
    train_ds, val_ds, _, steps = data_lib.make_datasets(
        config, record.train, record.val, record.n_train, record.shape, record.num_classes, strategy, 0
    )
    with strategy.scope():
        model = models_lib.build_model(network, record.num_classes, record.shape, **config.model_kwargs)
        trainer.compile_model(model, config, steps)
    history = model.fit(
        train_ds,
        epochs=config.epochs,
        steps_per_epoch=steps,
        validation_data=val_ds,
        verbose=2,
        shuffle=False,
        callbacks=clock.callbacks([]),
    )
    clock.finish()
    os.makedirs(config.workdir, exist_ok=True)
    with open(os.path.join(config.workdir, "plain.json"), "w") as f:
        json.dump(
            {
                "network": network,
                "accuracy": float(history.history["val_accuracy"][-1]),
                "steps": steps * config.epochs,
                "batch_size": config.batch_size,
                "time_breakdown": clock.breakdown(),
            },
            f,
        )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "plain_fit":
        return plain_fit(argv[1], argv[2:])
    args = parse_args(argv)
    if args.table:
        results = []
        for path in args.table:
            with open(path) as f:
                results.append(json.load(f))
        text = tables(results)
        print(text)
        return text
    return run(args)


if __name__ == "__main__":
    main()
