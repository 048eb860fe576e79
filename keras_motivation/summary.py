"""The summary of a finished run: summary.json and the closing lines the trainer prints.

`summarize(...)` gathers what the run measured: final and best accuracies,
the motivation statistics (with the noise level of the consecutive
condition), forward and training FLOPs, the cost of one switch, the
predicted and measured speed-up over the motivated model alone, the stop
reason and the versions. `describe(config, summary)` is the text printed at
the end of `python -m keras_motivation.train`.

Names: `motivated_share` is the share of training steps the motivated model
took (motivated_steps / steps), in code, logs, summary.json and the README.
Run summaries written before it was named so call it `activation_rate`;
`motivated_share(activations)` reads both.
"""

import math
import os
import platform

import keras
import tensorflow as tf

from keras_motivation import conditions
from keras_motivation import files
from keras_motivation import flops as flops_lib
from keras_motivation.engine.switching import share_of_steps

# Keys of summary["activations"] in summaries written before the rename.
_OLD_KEYS = {"motivated_share": "activation_rate", "noise_motivated_share": "noise_activation_rate"}


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
    name, _, arguments = condition.partition(":")
    cls = conditions.BY_NAME.get(name)
    # The noise level of the paper's rule with --k (a spec that sets its own k gets none).
    if cls is not None and cls.noise_level and not arguments:
        stats["noise_motivated_share"] = noise_motivated_share(k)
        stats["noise_triggers_per_step"] = noise_triggers_per_step(k)
    return stats


def motivated_share(activations, key="motivated_share"):
    """summary["activations"][key] ("motivated_share" or "noise_motivated_share"), also from
    summaries written before the rename; None when the summary has neither name."""
    if key in activations:
        return activations[key]
    return activations.get(_OLD_KEYS[key])


# -- FLOPs, switch cost, speed-up ------------------------------------------------------


def flops_summary(model, counters, batch_size, final_recalibration_batches=0):
    """Forward FLOPs per image of both models, the paper's F_{X-Y}, and what the
    paper leaves out: training FLOPs with the backward passes (about 2x forward)."""
    fx, fy = flops_lib.count_flops(model.base), flops_lib.count_flops(model.motivated)
    base_steps = counters["steps"] - counters["motivated_steps"]
    out = {"flops": {"base": fx, "motivated": fy, "base_macs": fx // 2, "motivated_macs": fy // 2}}
    # A joint step (the motivated mode's update with `joint`) runs both models forward and backward.
    f_motivated_step = fy + fx if getattr(model, "joint", None) is not None else fy
    if counters["steps"]:
        out["flops"]["dual_training_average"] = flops_lib.dual_training_flops(
            fx, f_motivated_step, base_steps, counters["motivated_steps"]
        )
        out["flops"]["training_total"] = flops_lib.training_flops(
            fx, base_steps * batch_size
        ) + flops_lib.training_flops(f_motivated_step, counters["motivated_steps"] * batch_size)
        out["flops"]["training_total_motivated_alone"] = flops_lib.training_flops(fy, counters["steps"] * batch_size)
        # Recomputing BatchNorm statistics is one forward pass of each model
        # per image. The last recalibration makes the deployed models and
        # counts as training; the earlier ones served validation only (they
        # happen only where something read the statistics: before each
        # validation, at the end of a fit that did not validate last).
        done = counters.get("recalibration_batches", 0) * batch_size * (fx + fy)
        final = min(done, final_recalibration_batches * batch_size * (fx + fy))
        out["flops"]["recalibration"] = final
        out["flops"]["recalibration_for_validation"] = done - final
        out["flops"]["training_total"] += final
    return out


def switch_seconds(model, repeats=10):
    """Measured seconds of one switch (the engine's `time_switch`: weights, BN statistics
    and optimizer slots a switch of this run copies; the mean of both directions)."""
    return model.time_switch(repeats)


def speedup(summary):
    """Predicted (forward FLOPs) and measured (wall-clock) speed-up of this run
    over training the motivated model alone for the same steps."""
    out = {}
    f = summary.get("flops", {})
    if f.get("dual_training_average"):
        out["predicted_from_flops"] = f["motivated"] / f["dual_training_average"]
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
    config, model, evaluation, *, val_ds, recal_ds, mode_seconds, wall, cpu, info, shape, replicas, library_version
):
    """summary.json of a finished run (without the export paths, which the trainer adds).

    `evaluation`: the final `model.evaluate` dict; `mode_seconds`: ModeTimer.per_mode();
    `wall`, `cpu`: seconds of this run and the interrupted runs it resumed;
    `library_version`: keras_motivation.__version__, passed in so that this
    module imports no package __init__ (the engine can use its formulas
    without an import circle).
    """
    history = files.read_csv(os.path.join(config.workdir, "history.csv"))
    counters = model.counters()
    summary = {
        "pair": config.pair,
        "dataset": config.dataset,
        "condition": config.condition,
        "k": config.k,
        "differential_init": config.differential_init,
        "bn_statistics": config.bn_statistics,
        "recalibration_batches": config.recalibration_batches if config.bn_statistics == "recalibrated" else 0,
        "joint": {"base_weight": config.joint_base_weight, "distillation": config.distillation}
        if config.joint
        else None,
        "seed": config.seed,
        "epochs": config.epochs,
        "input_shape": list(shape),
        "num_classes": info["num_classes"],
        "final": {k: float(v) for k, v in evaluation.items()},
        "best": {
            "accuracy": max((float(r["val_accuracy"]) for r in history if "val_accuracy" in r), default=None),
            "motivated_accuracy": max(
                (float(r["val_motivated_accuracy"]) for r in history if "val_motivated_accuracy" in r), default=None
            ),
        },
        "activations": motivation_statistics(counters, config.condition, config.k),
        "wall_clock_s": wall,
        "cpu_time_s": cpu,
        "wall_clock_per_mode_s": mode_seconds,
        "stopped": stop_reason(config.workdir, model),
        "versions": {
            "keras_motivation": library_version,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "python": platform.python_version(),
        },
        "replicas": replicas,
    }
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
    summary.update(flops_summary(model, counters, config.batch_size, final_batches))
    summary["switch_seconds"] = switch_seconds(model)
    summary["time_in_switches_s"] = summary["switch_seconds"] * counters["switches"]
    summary["speedup_vs_motivated_alone"] = speedup(summary)
    return summary


def describe(config, summary):
    """The lines printed at the end of a run: where everything is."""
    w = config.workdir
    f = summary["final"]
    lines = [
        f"base accuracy {f.get('accuracy', float('nan')):.4f}, "
        f"motivated accuracy {f.get('motivated_accuracy', float('nan')):.4f} "
        f"on the validation split; motivated share {motivated_share(summary['activations']):.3f} of the steps",
        f"summary:     {os.path.join(w, 'summary.json')}",
        f"history:     {os.path.join(w, 'history.csv')} (per batch: {os.path.join(w, 'batches.csv')})",
        f"models:      {os.path.join(w, 'final')}/base.keras, motivated.keras",
        f"tensorboard: tensorboard --logdir {os.path.join(w, 'tensorboard')}",
    ]
    return "\n".join(lines)
