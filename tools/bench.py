"""Benchmark: what the motivation machinery costs next to plain `keras.Model.fit`.

    python tools/bench.py --pair=resnet20:resnet32 --image_size=32 --batch_size=128 \
        --steps=50 --repeats=5 --out=bench.json
    # the short-step regime (accelerator-like): tiny dense models, several settings
    python tools/bench.py --model=tiny_dense --image_size=8 --batch_size=64 --steps=256 --repeats=15 \
        --settings=default:1,default:16,xla:16,mirrored:1 --out=bench_short.json
    # the default BatchNorm option's cost against private, long steps, two kinds only
    python tools/bench.py --pair=resnet20:resnet32 --batch_size=128 --steps=40 --repeats=7 \
        --kinds=condition,recalibrated --out=bench_recalibrated.json
    # the performance page's tables (docs/performance.md): the range over several runs' JSON
    python tools/bench.py --table run_a.json run_b.json run_c.json
    # whole runs: the trainer's run of a pair against plain fit of its bigger network (tools/bench_run.py)
    python tools/bench.py whole_run --pair=resnet8:resnet8p14 --epochs=3 --repeats=3 --out=run.json

`--model=tiny_dense` is a 2-hidden-layer dense base and a 4-hidden-layer
motivated model (32 units; with 8x8x3 inputs and batch 64), where a step
takes well under a millisecond and any fixed per-step cost of the engine
shows. `--settings` runs several `strategy:steps_per_execution` settings in
one process (strategy `default`, `xla` = one device with `jit_compile=True`,
or `mirrored` = MirroredStrategy on 2 logical CPU devices, which this script
creates itself when there is one CPU device); each setting is measured like a
single run and its result lands under `settings` in the JSON.

Same machine, same data, interleaved repetitions (each in a rotated order),
medians; the `paired` ratios are medians of per-repeat ratios, which a drift
of the machine over the run does not move. Measures
(a) MotivatedModel with `Never` (base only) against plain fit of the base;
(b) with `Always` against plain fit of the motivated model;
(c) one switch each way (weights, BN statistics, optimizer slots) in units of
    one base training step;
(d) a real condition's epoch (ConsecutiveDecrease(k)) against the time that
    (a), (b), (c) and its measured counts predict;
(e) input-pipeline throughput against model throughput;
(f) the condition's update alone: ConsecutiveDecrease with a k no streak
    reaches (it updates its state and decides at every step, and never
    switches) against plain fit of the base, which splits (d) into the
    update's per-step cost and the switches';
(g) the joint step on every batch (`Always` with `JointStep()`: both models
    on one batch, one update) against plain fits of both models (the sum of
    their epochs);
(h) the default BatchNorm option (`bn_statistics="recalibrated"`, the real
    condition) against the private statistics every other variant uses
    (`condition`), without validation data: per epoch (from the epoch's start
    to its end inside `fit`: no recomputation, as nothing reads the statistics
    there) and per one-epoch `fit` (with the recomputation at its end);
and per-step times of every variant, plus `d_condition_vs_plain_steps`: the
condition's epoch against the time its steps take as plain fits of the two
models (its base steps at plain-base speed, its motivated steps at
plain-motivated speed, switches free).
`MEASURES` holds each measure once (its JSON key, its label, what it compares);
the JSON, the printed tables and `--table` are written from it. `--kinds`
times only some variants: the measures whose variants are missing are left
out. `--mixed_precision` runs everything under `mixed_float16`. The JSON is
written after every setting (`"complete": false` until the last), so a run
cut short keeps what it measured.
Writes JSON (--out) and prints a Markdown table, from wall-clock and from the
process's CPU time (the second is the one to trust on a shared VM, where the
host can stall the whole machine mid-run).
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# The figures and tables, apart (tools/bench_tables.py): the documentation reads them without TensorFlow.
from bench_tables import IN_EPOCH  # noqa: E402
from bench_tables import PLAIN  # noqa: E402
from bench_tables import clock_results  # noqa: E402
from bench_tables import figures  # noqa: E402
from bench_tables import markdown  # noqa: E402
from bench_tables import range_table  # noqa: E402
from bench_tables import summary_markdown  # noqa: E402

import keras_motivation as km  # noqa: E402
from keras_motivation import conditions  # noqa: E402

# The variants timed: plain fits of the two models, MotivatedModel with Never /
# Always / a real condition, the condition's update alone (measure (f)) and
# the joint step on every batch (measure (g)).
# the joint step on every batch (measure (g)) and the real condition with the
# default BatchNorm option (measure (h); every other variant keeps private statistics).
# `--third=NAME` adds a third, bigger model: its plain fit and the joint step of the three-model ladder
# (measure (j)). On a prefix pair (`--pair=resnet8:resnet8p14`) the joint step computes one forward pass:
# measure (i) compares it with the motivated model's plain fit.
KINDS = (
    "plain_base",
    "never",
    "plain_motivated",
    "always",
    "condition",
    "update_only",
    "joint",
    "recalibrated",
    "plain_third",
    "joint3",
)
# The kinds timed without --kinds (the third model's need --third).
DEFAULT_KINDS = KINDS[:-2]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--model",
        choices=("pair", "tiny_dense"),
        default="pair",
        help="pair: the registry pair of --pair; tiny_dense: 2 vs 4 dense layers of --units (short steps)",
    )
    p.add_argument("--units", type=int, default=32)
    p.add_argument("--pair", default="resnet20:resnet32")
    p.add_argument("--third", default=None, help="a third, bigger model for the kinds plain_third and joint3")
    p.add_argument(
        "--width", type=int, default=None, help="first-stage width of CIFAR ResNets (default: the paper's 16)"
    )
    p.add_argument("--patch_size", type=int, default=None, help="patch size of ViTs (7 for 28x28 images)")
    p.add_argument("--image_size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--num_classes", type=int, default=10)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--steps", type=int, default=50, help="steps per timed epoch")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--switches", type=int, default=20, help="switch pairs timed per repeat")
    p.add_argument("--steps_per_execution", type=int, default=1)
    p.add_argument("--jit_compile", action="store_true")
    p.add_argument("--strategy", choices=("default", "mirrored"), default="default")
    p.add_argument(
        "--settings",
        default=None,
        help="comma-separated strategy:steps_per_execution, strategy in default|xla|mirrored "
        "(overrides --strategy, --steps_per_execution, --jit_compile)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TensorFlow's inter- and intra-op threads (0: TensorFlow's default). 1 takes the thread pool's "
        "hand-offs and idle spinning out of the CPU time, leaving the ops each variant runs",
    )
    p.add_argument(
        "--kinds",
        default=",".join(DEFAULT_KINDS),
        help=f"comma-separated variants to time (default: {','.join(DEFAULT_KINDS)}; also plain_third,joint3 "
        "with --third); measures that need a "
        "missing one are left out",
    )
    p.add_argument("--mixed_precision", action="store_true", help="mixed_float16 compute for every variant")
    p.add_argument("--out", default=None)
    p.add_argument(
        "--table",
        nargs="+",
        metavar="JSON",
        help="print the range over these runs' JSON (docs/performance.md's tables) and measure nothing",
    )
    return p.parse_args(argv)


def make_data(args):
    rng = np.random.default_rng(0)
    n = args.batch_size * args.steps
    x = rng.random((n, args.image_size, args.image_size, args.channels), dtype=np.float32)
    y = rng.integers(0, args.num_classes, n)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size, drop_remainder=True).cache()
    return ds.prefetch(tf.data.AUTOTUNE)


def tiny_dense_pair(args):
    """Dense base (2 hidden layers) and motivated model (4), the base's layers first, and the map."""

    def mlp(depth, name):
        inputs = keras.Input((args.image_size, args.image_size, args.channels))
        h = keras.layers.Flatten()(inputs)
        for i in range(depth):
            h = keras.layers.Dense(args.units, activation="relu", name=f"dense_{i}")(h)
        outputs = keras.layers.Dense(args.num_classes, activation="softmax", name="head")(h)
        return keras.Model(inputs, outputs, name=name)

    base, motivated = mlp(2, "base"), mlp(4, "motivated")
    by_name = {layer.name: layer for layer in motivated.layers}
    entries = [
        (b, mv, None)
        for layer in base.layers
        if layer.weights
        for b, mv in zip(layer.weights, by_name[layer.name].weights)
    ]
    return base, motivated, km.WeightsMap(entries, base, motivated)


def model_kwargs(args):
    """The registry models' arguments the flags set (--width, --patch_size)."""
    kwargs = {"width": args.width, "patch_size": args.patch_size}
    return {k: v for k, v in kwargs.items() if v}


def build(args, kind):
    shape = (args.image_size, args.image_size, args.channels)
    if args.model == "tiny_dense":
        base, motivated, wmap = tiny_dense_pair(args)
    else:
        extra = model_kwargs(args)
        base, motivated, wmap = km.models.get_pair(args.pair, num_classes=args.num_classes, input_shape=shape, **extra)
    compile_kwargs = dict(
        loss="sparse_categorical_crossentropy",
        steps_per_execution=args.steps_per_execution,
        jit_compile=args.jit_compile,
    )
    opt = keras.optimizers.SGD(0.01, momentum=0.9)
    if kind == "plain_base":
        base.compile(optimizer=opt, **compile_kwargs)
        return base
    if kind == "plain_motivated":
        motivated.compile(optimizer=opt, **compile_kwargs)
        return motivated
    if kind in ("plain_third", "joint3"):
        if not args.third or args.model == "tiny_dense":
            raise SystemExit(f"--kinds={kind} needs --third=NAME, a bigger model of --pair's family (e.g. resnet44)")
        extra = model_kwargs(args)
        third = km.models.build_model(args.third, args.num_classes, shape, **extra)
        if kind == "plain_third":
            third.compile(optimizer=opt, **compile_kwargs)
            return third
        # The registry's rule for the ladder (first blocks first in a prefix ladder).
        rule = km.models.registry.ladder_rule(f"{args.pair}:{args.third}")
        model = km.MotivatedModel(
            models=[base, motivated, third],
            weights_map=rule,
            condition=conditions.Always(),
            joint=True,
            bn_statistics="private",
        )
        model.compile(optimizer=opt, **compile_kwargs)
        return model
    condition = {
        "never": conditions.Never(),
        "always": conditions.Always(),
        "condition": conditions.ConsecutiveDecrease(args.k),
        # Decides at every step, never switches: no streak reaches this k.
        "update_only": conditions.ConsecutiveDecrease(2**31 - 1),
        "joint": conditions.Always(),
        "recalibrated": conditions.ConsecutiveDecrease(args.k),
    }[kind]
    # The engine's per-step cost: BatchNorm recalibration (the default
    # "recalibrated", a few forward passes where the statistics are read: here
    # at the end of each one-epoch fit) would be charged to these short epochs;
    # the variant "recalibrated" measures it (h).
    options = {} if kind == "recalibrated" else {"bn_statistics": "private"}  # recalibrated: the default
    model = km.MotivatedModel(base, motivated, wmap, condition, joint=kind == "joint", **options)
    model.compile(optimizer=opt, **compile_kwargs)
    return model


class _EpochClock(keras.callbacks.Callback):
    """(wall-clock, CPU) seconds from the epoch's start to its end, as the last callback sees them."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = (time.perf_counter() - self.start[0], time.process_time() - self.start[1])


def timed_epoch(model, ds):
    """(wall-clock seconds, CPU seconds of this process, all threads) of a one-epoch fit, and the
    same of its epoch alone (from its start to its end inside the fit)."""
    clock = _EpochClock()
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(ds, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    return (time.perf_counter() - start, time.process_time() - cpu), clock.seconds


def switch_timer(model, n):
    """A function returning (wall, CPU) seconds per switch pair (X->Y then Y->X), n pairs per measurement."""

    def timed():
        return 2 * model.time_switch(n), 2 * model.time_switch(n, clock=time.process_time)

    return timed


def time_pipeline(ds):
    start = time.perf_counter()
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    return n / (time.perf_counter() - start)


def parse_settings(args):
    """[(name, strategy, steps_per_execution, jit_compile)] from --settings, or the single-run flags."""
    if not args.settings:
        return [(None, args.strategy, args.steps_per_execution, args.jit_compile)]
    out = []
    for item in args.settings.split(","):
        kind, _, spe = item.strip().partition(":")
        if kind not in ("default", "xla", "mirrored") or not spe.isdigit() or int(spe) < 1:
            raise SystemExit(
                f"--settings: bad item {item!r}; use strategy:steps_per_execution, strategy in default|xla|mirrored"
            )
        out.append((f"{kind}:{spe}", "mirrored" if kind == "mirrored" else "default", int(spe), kind == "xla"))
    return out


def logical_cpus(n=2):
    """Splits the one CPU into n logical devices (must run before TensorFlow initialises)."""
    cpus = tf.config.list_physical_devices("CPU")
    if len(cpus) >= n:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as err:
        raise SystemExit(
            f"--strategy=mirrored needs {n} CPU devices, and TensorFlow is already initialised: {err}"
        ) from err


def parse_kinds(args):
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise SystemExit(f"--kinds: unknown {unknown or 'none given'}; use some of {','.join(KINDS)}")
    return tuple(k for k in KINDS if k in kinds)  # KINDS' order


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "whole_run":
        # Whole runs of the trainer against plain fits: a mode of its own (tools/bench_run.py).
        import bench_run

        return bench_run.main(argv[1:])
    args = parse_args(argv)
    if args.table:
        table = range_table([json.loads(pathlib.Path(path).read_text()) for path in args.table])
        print(table)
        return table
    settings = parse_settings(args)
    parse_kinds(args)
    if args.threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if any(strategy == "mirrored" for _, strategy, _, _ in settings) and not tf.config.list_physical_devices("GPU"):
        logical_cpus(2)
    policy = keras.mixed_precision.global_policy()
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return _run_settings(args, settings)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _run_settings(args, settings):
    results = {}
    for name, strategy, spe, jit in settings:
        run_args = argparse.Namespace(
            **{**vars(args), "strategy": strategy, "steps_per_execution": spe, "jit_compile": jit}
        )
        results[name] = run_setting(run_args)
        if name:
            print(f"\n## {name}\n")
        print(markdown(results[name]))
        result = _result(args, results, single=len(settings) == 1, complete=len(results) == len(settings))
        if args.out:
            # After every setting: a run cut short keeps what it measured.
            with open(args.out, "w") as f:
                f.write(json.dumps(result, indent=2))
    if len(results) > 1:
        print("\n" + summary_markdown(results))
    return result


def _result(args, results, single, complete):
    if single:
        result = dict(next(iter(results.values())))
    else:
        result = {"machine": next(iter(results.values()))["machine"], "args": vars(args), "settings": dict(results)}
    result["date"] = time.strftime("%Y-%m-%d")
    result["complete"] = complete
    return result


def run_setting(args):
    keras.utils.set_random_seed(0)
    if args.strategy == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
    else:
        strategy = tf.distribute.get_strategy()
    ds = make_data(args)
    kinds = parse_kinds(args)
    with strategy.scope():
        models = {k: build(args, k) for k in kinds}
    for m in models.values():  # warm-up: tracing and the first epoch
        timed_epoch(m, ds)
    # A switch is timed on the `Never` model (any MotivatedModel: all switch the same weights).
    switcher = next((models[k] for k in ("never", *kinds) if k in models and k not in PLAIN), None)
    time_switch = switch_timer(switcher, args.switches) if switcher is not None else None
    wall = {k: [] for k in kinds}
    cpu = {k: [] for k in kinds}
    switch, switch_cpu, pipeline = [], [], []
    counted = {k: [] for k in ("condition", "update_only") if k in kinds}  # per epoch, the counters' change
    for repeat in range(args.repeats):  # interleaved, each repeat in a rotated order
        for k in kinds[repeat % len(kinds) :] + kinds[: repeat % len(kinds)]:
            before = models[k].counters() if k in counted else None
            (w, c), (ew, ec) = timed_epoch(models[k], ds)
            wall[k].append(w)
            cpu[k].append(c)
            wall.setdefault(k + IN_EPOCH, []).append(ew)
            cpu.setdefault(k + IN_EPOCH, []).append(ec)
            if before is not None:
                after = models[k].counters()
                counted[k].append({c: after[c] - before[c] for c in after})
        if time_switch is not None:
            w, c = time_switch()
            switch.append(w)
            switch_cpu.append(c)
        pipeline.append(time_pipeline(ds))
    images = args.batch_size * args.steps
    count = None
    if counted.get("condition"):
        counts = counted["condition"]
        count = {c: statistics.median(x[c] for x in counts) for c in counts[0]}
    if any(c["switches"] for c in counted.get("update_only", ())):
        raise RuntimeError(f"the update-only model switched: {counted['update_only']}")

    run = {
        "pipeline": statistics.median(pipeline),
        **({"base_model": images / statistics.median(wall["plain_base"])} if "plain_base" in wall else {}),
    }
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "gpu_names": [
                tf.config.experimental.get_device_details(g).get("device_name", "")
                for g in tf.config.list_physical_devices("GPU")
            ],
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "args": vars(args),
        "kinds": list(kinds),
        "precision": keras.mixed_precision.global_policy().name,
        "replicas": strategy.num_replicas_in_sync,
        **clock_results(wall, switch, count, args.steps, images),
        # CPU time of the process (all threads): immune to the host descheduling
        # the machine, which wall-clock on a shared VM is not.
        "cpu_time": clock_results(cpu, switch_cpu, count, args.steps, images),
        "d_counts_per_epoch": count,
        **figures(run, per_clock=False),
        "raw_seconds": wall,
        "raw_cpu_seconds": cpu,
    }
    return result


if __name__ == "__main__":
    main()
