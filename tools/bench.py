"""Benchmark: what the motivation machinery costs next to plain `keras.Model.fit`.

    python tools/bench.py --pair=resnet20:resnet32 --image_size=32 --batch_size=128 \
        --steps=50 --repeats=5 --out=bench.json

Same machine, same data, interleaved repetitions, medians. Measures
(a) MotivatedModel with `Never` (base only) against plain fit of the base;
(b) with `Always` against plain fit of the motivated model;
(c) one switch each way (weights, BN statistics, optimizer slots) in units of
    one base training step;
(d) a real condition's epoch (ConsecutiveDecrease(k)) against the time that
    (a), (b), (c) and its measured counts predict;
(e) input-pipeline throughput against model throughput.
Writes JSON (--out) and prints a Markdown table, from wall-clock and from the
process's CPU time (the second is the one to trust on a shared VM, where the
host can stall the whole machine mid-run).
"""

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_motivation as km  # noqa: E402
from keras_motivation import conditions  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", default="resnet20:resnet32")
    p.add_argument("--width", type=int, default=None, help="first-stage width of CIFAR ResNets (default: the paper's 16)")
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
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


def make_data(args):
    rng = np.random.default_rng(0)
    n = args.batch_size * args.steps
    x = rng.random((n, args.image_size, args.image_size, args.channels), dtype=np.float32)
    y = rng.integers(0, args.num_classes, n)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size, drop_remainder=True).cache()
    return ds.prefetch(tf.data.AUTOTUNE)


def build(args, kind):
    shape = (args.image_size, args.image_size, args.channels)
    extra = {"width": args.width} if args.width else {}
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
    condition = {
        "never": conditions.Never(),
        "always": conditions.Always(),
        "condition": conditions.ConsecutiveDecrease(args.k),
    }[kind]
    model = km.MotivatedModel(base, motivated, wmap, condition)
    model.compile(optimizer=opt, **compile_kwargs)
    return model


def timed_epoch(model, ds):
    """(wall-clock seconds, CPU seconds of this process, all threads) of one epoch."""
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(ds, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - start, time.process_time() - cpu


def switch_timer(model, n):
    """A function returning (wall, CPU) seconds per switch pair (X->Y then Y->X), n pairs in one compiled call."""

    @tf.function
    def switch_pairs():
        for _ in tf.range(n):
            model._switch_to(tf.constant(True))
            model._switch_to(tf.constant(False))

    switch_pairs()  # trace once, untimed

    def timed():
        start, cpu = time.perf_counter(), time.process_time()
        switch_pairs()
        return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n

    return timed


def time_pipeline(ds):
    start = time.perf_counter()
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    return n / (time.perf_counter() - start)


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy() if args.strategy == "mirrored" else tf.distribute.get_strategy()
    ds = make_data(args)
    kinds = ("plain_base", "never", "plain_motivated", "always", "condition")
    with strategy.scope():
        models = {k: build(args, k) for k in kinds}
    for m in models.values():  # warm-up: tracing and the first epoch
        timed_epoch(m, ds)
    time_switch = switch_timer(models["never"], args.switches)
    wall = {k: [] for k in kinds}
    cpu = {k: [] for k in kinds}
    switch, switch_cpu, counts, pipeline = [], [], [], []
    for _ in range(args.repeats):  # interleaved
        for k in kinds:
            before = models[k].counters() if k == "condition" else None
            w, c = timed_epoch(models[k], ds)
            wall[k].append(w)
            cpu[k].append(c)
            if before is not None:
                after = models[k].counters()
                counts.append({c: after[c] - before[c] for c in after})
        w, c = time_switch()
        switch.append(w)
        switch_cpu.append(c)
        pipeline.append(time_pipeline(ds))
    images = args.batch_size * args.steps
    count = {c: statistics.median(x[c] for x in counts) for c in counts[0]}

    def ratios(times, switch_times):
        """The measures (a)-(d) from one clock's medians."""
        med = {k: statistics.median(v) for k, v in times.items()}
        base_step, mot_step = med["never"] / args.steps, med["always"] / args.steps
        switch_s = statistics.median(switch_times)
        predicted = ((count["steps"] - count["motivated_steps"]) * base_step + count["motivated_steps"] * mot_step
                     + count["switches"] * switch_s / 2)
        return {
            "images_per_s": {k: images / med[k] for k in kinds},
            "a_never_vs_plain_base": med["never"] / med["plain_base"],
            "b_always_vs_plain_motivated": med["always"] / med["plain_motivated"],
            "c_switch_pair_s": switch_s,
            "c_switch_one_way_in_base_steps": switch_s / 2 / base_step,
            "d_condition_epoch_s": med["condition"],
            "d_predicted_epoch_s": predicted,
            "d_measured_vs_predicted": med["condition"] / predicted,
        }

    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "gpus": len(tf.config.list_physical_devices("GPU"))},
        "args": vars(args),
        **ratios(wall, switch),
        # CPU time of the process (all threads): immune to the host descheduling
        # the machine, which wall-clock on a shared VM is not.
        "cpu_time": ratios(cpu, switch_cpu),
        "d_counts_per_epoch": count,
        "e_pipeline_images_per_s": statistics.median(pipeline),
        "e_pipeline_vs_base_model": statistics.median(pipeline) / (images / statistics.median(wall["plain_base"])),
        "raw_seconds": wall,
        "raw_cpu_seconds": cpu,
    }
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(markdown(result))
    return result


def markdown(r):
    c = r["cpu_time"]
    rows = [
        ("(a) Never / plain fit of the base (time ratio)", r["a_never_vs_plain_base"], c["a_never_vs_plain_base"], ".3f"),
        ("(b) Always / plain fit of the motivated model", r["b_always_vs_plain_motivated"], c["b_always_vs_plain_motivated"], ".3f"),
        ("(c) one switch, in base training steps", r["c_switch_one_way_in_base_steps"], c["c_switch_one_way_in_base_steps"], ".4f"),
        ("(d) k-condition epoch, measured / predicted", r["d_measured_vs_predicted"], c["d_measured_vs_predicted"], ".3f"),
    ]
    rows += [(f"images/s {k}", v, c["images_per_s"][k], ".0f") for k, v in r["images_per_s"].items()]
    lines = ["| measure | wall-clock | CPU time |", "|---|---|---|"]
    lines += [f"| {a} | {format(w, f)} | {format(t, f)} |" for a, w, t, f in rows]
    lines.append(f"| (e) input pipeline / base model throughput | {r['e_pipeline_vs_base_model']:.1f} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
