"""The summary of a finished run: summary.json and the closing lines the trainer prints.

`summarize(...)` gathers what the run measured: both models' accuracies, the
motivation statistics (with the noise level of the consecutive condition),
forward and training FLOPs, the cost of one switch, the predicted and
measured speed-up over the motivated model alone, the stop reason and the
versions. `describe(config, summary)` is the text printed at the end of
`python -m keras_motivation.train`.

summary.json (`"schema": 2`). Every number says whose it is, by the key it is
under, and its unit, by its name: `_s` seconds, `_flops` / `flops` floating-point
operations (2 per multiply-add), `_macs` multiply-adds, accuracies as
fractions in [0, 1].

    evaluation          {"split": the split both models were evaluated on (--validation_split),
                         "images": how many of its images (--eval_size or all)}
    base, motivated     each model: "architecture" (its name in --pair), "parameters" (all
                        weights, BatchNorm statistics included), "forward_flops_per_image" and
                        "forward_macs_per_image" (one forward pass of one image), "accuracy" and
                        "loss" (and any other compiled metric) on the evaluation split after
                        training, "best_epoch_accuracy" (the best epoch-end validation)
    training_flops      of the whole run: "total" (forward and backward of every trained
                        example, about 3x forward; a joint step counts both models; with the
                        final BatchNorm recalibration), "motivated_alone" (the motivated model
                        trained alone for the same steps), "average_forward_per_image" (the
                        paper's F_X-Y: mean forward FLOPs of a training pass), "recalibration"
                        (the final recalibration, in "total") and "recalibration_for_validation"
                        (the earlier ones, not in "total")
    activations         the engine's counters (steps, motivated_steps, switches, activations,
                        recalibration_batches) and "motivated_share" (motivated_steps / steps),
                        "noise_motivated_share" (1/(k+1)!, the consecutive condition only),
                        "triggers_per_step", "mean_activation_length" (steps)
    wall_clock_s, cpu_time_s, wall_clock_per_mode_s, switch_seconds, time_in_switches_s
    speedup_vs_motivated_alone   "predicted_from_flops", "measured_wall_clock" (ratios)
    resumed_from_step   the step this run started from (0: a fresh run)
    the config's pair, dataset, policy (the name the policy fields were filled from),
    condition, k, differential_init, bn_statistics,
    recalibration_batches, joint, seed, epochs; input_shape, num_classes, replicas,
    stopped (why training ended early, or null), versions; statistics_check and
    export when asked for.

Reading a summary.json, of this schema or an older one, is summary_json.py's
(`accuracy`, `forward_flops`, `training_flops`, `model_entry`, `motivated_share`,
`export_metadata`), which the export and the tools use without this module.

Names: `motivated_share` is the share of training steps the motivated model
took (motivated_steps / steps), in code, logs, summary.json and the docs.
"""

import math
import os
import platform

import keras
import tensorflow as tf

from keras_motivation import conditions
from keras_motivation import files
from keras_motivation import flops as flops_lib
from keras_motivation import policy as policy_lib
from keras_motivation import summary_json
from keras_motivation.engine import joint as joint_lib
from keras_motivation.engine.switching import share_of_steps

SCHEMA = 2


# -- motivation statistics -------------------------------------------------------------


def noise_motivated_share(k):
    """Motivated share of the consecutive condition on i.i.d. losses: a batch is
    motivated when the k+1 losses before it fell strictly, probability 1/(k+1)!."""
    return 1.0 / math.factorial(k + 1)


def noise_triggers_per_step(k):
    """Triggers per step on i.i.d. losses: the streak must also start there, 1/(k+1)! - 1/(k+2)!."""
    return 1.0 / math.factorial(k + 1) - 1.0 / math.factorial(k + 2)


def motivation_statistics(counters, condition, k):
    """summary["activations"]: the engine's counters and the rates derived from them."""
    steps = max(counters["steps"], 1)
    stats = {
        **counters,
        "motivated_share": share_of_steps(counters),
        "triggers_per_step": counters["activations"] / steps,
        "mean_activation_length": counters["motivated_steps"] / counters["activations"]
        if counters["activations"]
        else 0.0,
    }
    spec = conditions.ConditionSpec.parse(condition)
    cls = conditions.BY_NAME.get(spec.name)
    # The noise level of the paper's rule with --k (a spec that sets its own k gets none).
    if cls is not None and cls.noise_level and not spec.arguments:
        stats["noise_motivated_share"] = noise_motivated_share(k)
        stats["noise_triggers_per_step"] = noise_triggers_per_step(k)
    return stats


# -- FLOPs, switch cost, speed-up ------------------------------------------------------


def flops_summary(model, counters, batch_size, final_recalibration_batches=0):
    """Forward FLOPs and multiply-adds per image of both models (summary["base"] / ["motivated"]) and the run's
    training FLOPs (summary["training_flops"]): with the backward passes (about 2x forward) and the paper's F_X-Y
    (`average_forward_per_image`)."""
    if len(model.rungs) > 2:
        return _ladder_flops_summary(model, counters, batch_size, final_recalibration_batches)
    fx, fy = flops_lib.count_flops(model.base), flops_lib.count_flops(model.motivated)
    base_steps = counters["steps"] - counters["motivated_steps"]
    out = {
        "base": {"forward_flops_per_image": fx, "forward_macs_per_image": fx // 2},
        "motivated": {"forward_flops_per_image": fy, "forward_macs_per_image": fy // 2},
        "training_flops": {},
    }
    # A joint step (the motivated mode's update with `joint`) runs the motivated model and the base's own
    # layers (all of them, or the tail after a shared trunk) on its share of the batch, forward and backward.
    f_motivated_step = fy
    joint = getattr(model, "joint", None)
    if joint is not None:
        plan = model.shared_forward
        tail = flops_lib.count_flops(plan.tail) if plan is not None else None
        f_motivated_step = joint_lib.forward_flops(joint, plan, fx, fy, tail)
    if counters["steps"]:
        t = out["training_flops"]
        t["total"] = flops_lib.training_flops(fx, base_steps * batch_size) + flops_lib.training_flops(
            f_motivated_step, counters["motivated_steps"] * batch_size
        )
        t["motivated_alone"] = flops_lib.training_flops(fy, counters["steps"] * batch_size)
        t["average_forward_per_image"] = flops_lib.dual_training_flops(
            fx, f_motivated_step, base_steps, counters["motivated_steps"]
        )
        # Recomputing BatchNorm statistics is one forward pass of each model
        # per image. The last recalibration makes the deployed models and
        # counts as training; the earlier ones served validation only (they
        # happen only where something read the statistics: before each
        # validation, at the end of a fit that did not validate last).
        done = counters.get("recalibration_batches", 0) * batch_size * (fx + fy)
        final = min(done, final_recalibration_batches * batch_size * (fx + fy))
        t["recalibration"] = final
        t["recalibration_for_validation"] = done - final
        t["total"] += final
    return out


def _ladder_flops_summary(model, counters, batch_size, final_recalibration_batches):
    """`flops_summary` of a ladder: each model's forward FLOPs under its name, and the run's training FLOPs from
    each rung's steps (a joint step of rung r: its model's pass and `base_share` of every smaller one's, or of
    its tail after a shared trunk)."""
    names = summary_json.rung_names(len(model.rungs))
    f = [flops_lib.count_flops(m) for m in model.rungs]
    out = {name: {"forward_flops_per_image": fi, "forward_macs_per_image": fi // 2} for name, fi in zip(names, f)}
    out["training_flops"] = {}
    joint = getattr(model, "joint", None)
    step = list(f)
    if joint is not None:
        plans = model.shared_forward_plans
        for r in range(1, len(f)):
            own = [flops_lib.count_flops(t.model) for t in plans[r].tails] if r in plans else f[:r]
            step[r] += joint.base_share * sum(own)
    if counters["steps"]:
        forward = sum(n * fs for n, fs in zip(counters["rung_steps"], step))
        t = out["training_flops"]
        t["total"] = flops_lib.training_flops(forward, batch_size)
        t["motivated_alone"] = flops_lib.training_flops(f[-1], counters["steps"] * batch_size)
        t["average_forward_per_image"] = forward / counters["steps"]
        done = counters.get("recalibration_batches", 0) * batch_size * sum(f)
        final = min(done, final_recalibration_batches * batch_size * sum(f))
        t["recalibration"] = final
        t["recalibration_for_validation"] = done - final
        t["total"] += final
    return out


def switch_seconds(model, repeats=10):
    """Measured seconds of one switch (the engine's `time_switch`: weights, BN statistics
    and optimizer slots a switch of this run copies; the mean of both directions)."""
    return model.time_switch(repeats)


def speedup(summary):
    """Predicted (forward FLOPs) and measured (wall-clock) speed-up of this run
    over training the motivated model alone for the same steps."""
    out = {}
    average = summary_json.training_flops(summary, "average_forward_per_image")
    if average:
        out["predicted_from_flops"] = summary_json.forward_flops(summary, "motivated") / average
    modes = summary["wall_clock_per_mode_s"]
    mot, base = modes["motivated"], modes["base"]
    if mot["seconds_per_batch"] and mot["batches"] + base["batches"]:
        alone = mot["seconds_per_batch"] * (mot["batches"] + base["batches"])
        out["measured_wall_clock"] = alone / (mot["seconds"] + base["seconds"])
    return out


# -- accuracy checks and the stop reason -----------------------------------------------


def statistics_check(model, val_ds, recal_ds, batches):
    """Both models' validation accuracy as saved and with BatchNorm statistics
    recomputed from `batches` training batches (on copies; nothing saved changes).
    Statistics that are already right give the same accuracy both ways."""
    from keras_motivation import batch_norm

    out = {"batches": batches}
    for name, m in (("base", model.base), ("motivated", model.motivated)):
        with model.distribute_strategy.scope():
            copy = keras.models.clone_model(m)
            copy.set_weights(m.get_weights())
        accuracies = []
        for recompute in (False, True):
            if recompute:
                batch_norm.recalibrate(copy, recal_ds, batches)
            with model.distribute_strategy.scope():
                copy.compile(
                    loss=model.loss,
                    metrics=["accuracy"]
                    if not _one_hot_metrics(model)
                    else [keras.metrics.CategoricalAccuracy(name="accuracy")],
                )
            accuracies.append(float(copy.evaluate(val_ds, verbose=0, return_dict=True)["accuracy"]))
        out[name] = {"as_saved": accuracies[0], "recomputed": accuracies[1]}
    return out


def _one_hot_metrics(model):
    return isinstance(model.loss, keras.losses.CategoricalCrossentropy) or model.loss == "categorical_crossentropy"


def stop_reason(workdir, model):
    """Why training ended early (TerminateOnNaN), or None."""
    rows = files.read_csv(os.path.join(workdir, "batches.csv"))
    if model.stop_training and rows and not math.isfinite(float(rows[-1]["batch_loss"])):
        return f"non-finite loss at step {rows[-1]['step']} (TerminateOnNaN)"
    return None


# -- the summary -----------------------------------------------------------------------


def summarize(
    config,
    model,
    evaluation,
    *,
    val_ds,
    recal_ds,
    mode_seconds,
    wall,
    cpu,
    info,
    shape,
    replicas,
    library_version,
    val_examples=None,
    resumed_from_step=0,
):
    """summary.json of a finished run (without the export paths, which the trainer adds); the module
    docstring lists its keys.

    `evaluation`: the final `model.evaluate` dict; `mode_seconds`: ModeTimer.per_mode();
    `wall`, `cpu`: seconds of this run and the interrupted runs it resumed;
    `library_version`: keras_motivation.__version__, passed in so that this
    module imports no package __init__ (the engine can use its formulas
    without an import circle); `val_examples`: the number of images evaluated;
    `resumed_from_step`: where this run started (0 for a fresh one).
    """
    history = files.read_csv(os.path.join(config.workdir, "history.csv"))
    counters = model.counters()
    names = summary_json.model_names(config.pair)
    architectures = dict(zip(names, config.pair.split(":")))
    # Each model's logs: none for the base, motivated_ for the largest, rung<i>_ between.
    prefixes = {name: "" if i == 0 else f"{name}_" for i, name in enumerate(names)}
    summary = {
        "schema": SCHEMA,
        "pair": config.pair,
        "dataset": config.dataset,
        "policy": config.policy,
        "condition": config.condition,
        "k": config.k,
        "differential_init": config.differential_init,
        "bn_statistics": config.bn_statistics,
        "recalibration_batches": config.recalibration_batches if config.bn_statistics == "recalibrated" else 0,
        "joint": {
            "base_weight": config.joint_base_weight,
            "weights": policy_lib.parse_weights(config.joint_weights) or None,
            "equilibrium": config.equilibrium,
            "distillation": config.distillation,
            "distillation_teachers": config.distillation_teachers,
            "base_share": config.joint_base_share,
            "shared_forward": config.shared_forward,
        }
        if config.joint
        else None,
        "seed": config.seed,
        "epochs": config.epochs,
        "input_shape": list(shape),
        "num_classes": info["num_classes"],
        "evaluation": {"split": config.validation_split, "images": val_examples},
    }
    for name, keras_model in zip(names, model.rungs):
        prefix = prefixes[name]
        others = [p for p in prefixes.values() if p and p != prefix]
        metrics = {
            k[len(prefix) :]: float(v)
            for k, v in evaluation.items()
            if (k.startswith(prefix) if prefix else not any(k.startswith(p) for p in others))
        }
        summary[name] = {
            "architecture": architectures.get(name),
            "parameters": int(keras_model.count_params()),
            **metrics,
            "best_epoch_accuracy": max(
                (float(r[f"val_{prefix}accuracy"]) for r in history if r.get(f"val_{prefix}accuracy")), default=None
            ),
        }
    summary.update(
        {
            "activations": motivation_statistics(counters, config.condition, config.k),
            "wall_clock_s": wall,
            "cpu_time_s": cpu,
            "wall_clock_per_mode_s": mode_seconds,
            "resumed_from_step": resumed_from_step,
            "stopped": stop_reason(config.workdir, model),
            "versions": {
                "keras_motivation": library_version,
                "keras": keras.__version__,
                "tensorflow": tf.__version__,
                "python": platform.python_version(),
            },
            "replicas": replicas,
        }
    )
    if config.statistics_check_batches:
        # Training images the recalibration did not use, when there are any.
        check_ds = recal_ds.unbatch().skip(config.recalibration_batches * config.batch_size).batch(config.batch_size)
        if not any(True for _ in check_ds.take(1)):
            check_ds = recal_ds
        summary["statistics_check"] = statistics_check(model, val_ds, check_ds, config.statistics_check_batches)
    final_batches = 0
    if config.bn_statistics == "recalibrated":
        # The recomputation the saved models carry: the model's own record of it, or (a run
        # that recomputed nothing in this process) what one draws from the recalibration data.
        final_batches = getattr(model, "last_recalibration_batches", 0)
        if not final_batches:
            available = int(recal_ds.cardinality())  # negative when unknown
            final_batches = (
                config.recalibration_batches if available < 0 else min(config.recalibration_batches, available)
            )
    counted = flops_summary(model, counters, config.batch_size, final_batches)
    for name in names:
        summary[name].update(counted[name])
    summary["training_flops"] = counted["training_flops"]
    summary["switch_seconds"] = switch_seconds(model)
    summary["time_in_switches_s"] = summary["switch_seconds"] * counters["switches"]
    summary["speedup_vs_motivated_alone"] = speedup(summary)
    return summary


# -- the closing lines ------------------------------------------------------------------


def _quantity(value, unit):
    """A count with an SI prefix: 4.50 TFLOPs, 18.85 MFLOPs."""
    for prefix, factor in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}"


def _duration(seconds):
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, s = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {s} s"
    return f"{minutes // 60} h {minutes % 60} min"


def model_table(summary, split=None):
    """Both models side by side: architecture, parameters, forward MFLOPs per image, accuracy on the
    evaluation split and its size (the first lines `describe` prints)."""
    evaluation = summary.get("evaluation") or {}
    split = evaluation.get("split") or split or "the validation split"
    images = evaluation.get("images")
    head = ["model", "architecture", "parameters", "forward MFLOPs per image", f"accuracy on {split}"]
    if images:
        head[-1] += f" ({images:,} images)"
    rows = [head]
    pair = (summary.get("pair") or ":").split(":")
    for name, arch in zip(summary_json.model_names(summary.get("pair") or ":"), pair):
        entry = summary_json.model_entry(summary, name)
        flops, acc, params = entry.get("forward_flops_per_image"), entry.get("accuracy"), entry.get("parameters")
        rows.append(
            [
                name,
                entry.get("architecture") or arch or "-",
                "-" if params is None else f"{params:,}",
                "-" if flops is None else f"{flops / 1e6:.2f}",
                "-" if acc is None else f"{100 * acc:.2f}%",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    # Names left-aligned, numbers right-aligned under their heading.
    return [
        "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows
    ]


def describe(config, summary):
    """The lines printed at the end of a run: both models side by side, what the run cost, where everything is."""
    w = config.workdir
    a = summary.get("activations") or {}
    share = summary_json.motivated_share(a)
    steps = a.get("steps")
    lines = model_table(summary, config.validation_split)
    cpu = summary.get("cpu_time_s")
    lines.append(
        f"training:    {steps if steps is not None else '-'} steps, {_duration(summary.get('wall_clock_s'))} "
        f"of wall-clock ({_duration(cpu)} of CPU time); motivated share "
        + ("-" if share is None else f"{share:.3f}")
        + " of the steps"
    )
    total, alone = (
        summary_json.training_flops(summary, "total"),
        summary_json.training_flops(summary, "motivated_alone"),
    )
    if total is not None:
        lines.append(
            f"compute:     {_quantity(total, 'FLOPs')} forward and backward, both models"
            + (f" (the motivated model alone for the same steps: {_quantity(alone, 'FLOPs')})" if alone else "")
        )
    if summary.get("stopped"):
        lines.append(f"stopped:     {summary['stopped']}")
    final = os.path.join(w, "final")
    names = summary_json.model_names(config.pair)
    lines += [
        f"summary:     {os.path.join(w, 'summary.json')}",
        f"history:     {os.path.join(w, 'history.csv')} (per batch: {os.path.join(w, 'batches.csv')})",
        f"models:      {final}/{', '.join(n + '.keras' for n in names)} (keras.models.load_model)",
        f"             {final}/motivated_model.keras ({'both' if len(names) == 2 else 'all'} in one MotivatedModel: "
        "import keras_motivation first)",
        f"tensorboard: tensorboard --logdir {os.path.join(w, 'tensorboard')}",
    ]
    return "\n".join(lines)
