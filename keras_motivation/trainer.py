"""One training run from a TrainConfig: the library behind `python -m keras_motivation.train`.

`run(config)` builds the strategy, data, models and optimizers, trains with
`MotivatedModel.fit`, evaluates both models and writes the workdir:

    <workdir>/config.json        the resolved config (checked on resume)
    <workdir>/backup/            state.weights.h5 + state.json, written atomically
                                 every `backup_every` steps and at epoch ends
    <workdir>/history.csv        one row per epoch (CSVLogger)
    <workdir>/batches.csv        per-batch loss, motivated flag, learning rate
    <workdir>/tensorboard/       TensorBoard logs
    <workdir>/final/             base.keras, motivated.keras, motivated_model.keras
    <workdir>/summary.json       accuracies, FLOPs, activation statistics, timing
"""

import dataclasses
import json
import math
import os
import platform
import shutil
import tempfile
import time

import keras
import tensorflow as tf

import keras_motivation
from keras_motivation import callbacks as callbacks_lib
from keras_motivation import conditions as conditions_lib
from keras_motivation import data as data_lib
from keras_motivation import models as models_lib
from keras_motivation import recipes
from keras_motivation import workdir_lock
from keras_motivation.config import ConfigError
from keras_motivation.config import TrainConfig
from keras_motivation.motivated_model import MotivatedModel

BACKUP_EVERY_STEPS = 200


# -- strategy ----------------------------------------------------------------------


def make_strategy(config):
    if config.strategy == "default":
        return tf.distribute.get_strategy()
    if config.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if config.strategy == "multi_worker":
        resolver = None
        if "TF_CONFIG" not in os.environ and "SLURM_JOB_ID" in os.environ:
            resolver = tf.distribute.cluster_resolver.SlurmClusterResolver()
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    if config.strategy == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="" if config.tpu == "local" else config.tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ConfigError(f"Unknown --strategy {config.strategy!r}.")


def is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict())


# -- workdir -------------------------------------------------------------------------


def check_workdir(config):
    """Raises ConfigError, before anything is written, when the workdir holds
    a run of an incompatible config. Returns the backup to resume from, or None."""
    path = os.path.join(config.workdir, "config.json")
    if os.path.exists(path):
        with open(path) as f:
            previous = TrainConfig.from_json(f.read())
        different = config.incompatibilities(previous)
        if different:
            raise ConfigError(
                f"Workdir {config.workdir} holds a run with a different config "
                f"({', '.join(different)}): use another --workdir, or delete it to start over."
            )
    backup = os.path.join(config.workdir, "backup", "state.weights.h5")
    return backup if config.resume and os.path.exists(backup) else None


def _atomic_write(path, text):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# -- data and models ------------------------------------------------------------------


def load_data(config):
    """(train examples, validation examples, dataset info): unbatched datasets."""
    try:
        info = data_lib.dataset_info(config.dataset, config.data_dir)
    except (ValueError, FileNotFoundError) as err:
        raise ConfigError(str(err)) from err
    if config.dataset == data_lib.IMAGE_FOLDER:
        if not config.image_size:
            raise ConfigError(f"--dataset={data_lib.IMAGE_FOLDER} needs --image_size: the images are resized to it.")
        size = (config.image_size, config.image_size)
        try:
            train, n_train = data_lib.load_image_folder(config.data_dir, "train", size, info["class_names"])
            val, _ = data_lib.load_image_folder(config.data_dir, config.validation_split, size, info["class_names"])
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(str(err)) from err
    elif config.dataset == "fashion_mnist_idx":
        (x, y), (xt, yt) = data_lib.load_fashion_mnist_idx(config.data_dir)
        train = tf.data.Dataset.from_tensor_slices((x, y))
        val = tf.data.Dataset.from_tensor_slices((xt, yt))
        n_train = len(x)
    else:
        train, tinfo = data_lib.load_tfds(config.dataset, "train", data_dir=config.data_dir, download=config.download)
        val, _ = data_lib.load_tfds(config.dataset, config.validation_split, data_dir=config.data_dir, download=config.download)
        n_train = int(train.cardinality())
        if n_train < 0:
            n_train = tinfo.splits["train"].num_examples
    if config.train_size:
        train = train.take(config.train_size)
        n_train = min(n_train, config.train_size)
    if config.eval_size:
        val = val.take(config.eval_size)
    return train, val, n_train, info


def input_shape(config, info):
    h, w, c = info["image_shape"]
    if config.image_size:
        h = w = config.image_size
    return (h, w, c)


def build_model(config, num_classes, shape, heldout=None):
    base, motivated, wmap = models_lib.get_pair(config.pair, num_classes=num_classes, input_shape=shape, **config.model_kwargs)
    if config.init_from:
        _init_from(config, base, motivated)
    model = MotivatedModel(base, motivated, wmap, make_condition(config, heldout), bn_statistics=config.bn_statistics,
                           recalibration_batches=config.recalibration_batches)
    if config.differential_init == "identity":
        from keras_motivation.weights_map import identity_start

        identity_start(model.weights_map)
    return model


def make_condition(config, heldout=None):
    """The condition of `config`; `--k` fills in k for the streak conditions."""
    name, _, args = config.condition.partition(":")
    if name == "valloss":
        x, y = heldout
        return conditions_lib.ValidationBatch(config.k, x=x, y=y, y_dtype=str(y.dtype))
    if name in ("consecutive", "ema", "slope") and "k=" not in args:
        args = ",".join(filter(None, [f"k={config.k}", args]))
    if name in ("random", "matched_random", "random_share") and "seed=" not in args:
        # Random batches from the run's seed: a resumed run draws the same ones.
        args = ",".join(filter(None, [args, f"seed={config.seed}"]))
    try:
        return conditions_lib.get(f"{name}:{args}" if args else name)
    except ValueError as err:
        raise ConfigError(f"--condition={config.condition}: {err}") from err


def _init_from(config, base, motivated):
    """Transfer: start both models from a finished run's base or motivated model.

    Every layer whose name and weight shapes match the source's is loaded;
    the rest (the classifier head for a new number of classes, layers the
    source lacks) keeps its fresh initialisation.
    """
    path = os.path.join(config.init_from, "final", f"{config.init_from_model}.keras")
    if not os.path.exists(path):
        raise ConfigError(f"--init_from={config.init_from} has no {path}: point it at a finished run's workdir.")
    source = {layer.name: layer for layer in keras.models.load_model(path, compile=False).layers if layer.weights}
    loaded = 0
    for target in (base, motivated):
        for layer in target.layers:
            src = source.get(layer.name)
            if src is not None and [tuple(w.shape) for w in layer.weights] == [tuple(w.shape) for w in src.weights]:
                layer.set_weights(src.get_weights())
                loaded += 1
    if loaded == 0:
        raise ConfigError(f"--init_from={config.init_from}: no layer of {path} matches the models of --pair={config.pair}.")
    return loaded


# -- training ------------------------------------------------------------------------


def make_datasets(config, train, val, n_train, shape, num_classes, strategy, start_step):
    """Batched train dataset (resumable: seeded order, skips `start_step` batches) and val dataset."""
    replicas = strategy.num_replicas_in_sync
    data_lib.split_for_replicas(config.batch_size, replicas)
    steps = n_train // config.batch_size
    if steps == 0:
        raise ConfigError(f"--batch_size={config.batch_size} is larger than the {n_train} training examples.")
    common = dict(image_size=shape[:2], num_classes=num_classes, one_hot=uses_one_hot(config))
    # The order of every epoch is fixed by the seed, so a resumed run sees the
    # same batches: shuffle, repeat, then skip what was already trained.
    ordered = train.shuffle(min(n_train, 50_000), seed=config.seed, reshuffle_each_iteration=True).repeat()
    ordered = ordered.skip(start_step * config.batch_size)
    train_ds = data_lib.make_pipeline(
        ordered, batch_size=config.batch_size, training=True, augment=config.augment, seed=config.seed, shuffle_buffer=0, **common
    )
    val_ds = data_lib.make_pipeline(val, batch_size=config.batch_size, training=False, **common)
    # BatchNorm statistics are recomputed from the first training batches, as
    # evaluation preprocesses them: the same images at every epoch end, also
    # after a resume.
    recal_ds = data_lib.make_pipeline(train, batch_size=config.batch_size, training=False, **common)
    # Across workers, every worker reads the same seeded order and keeps its
    # share of each batch: deterministic, and resumable at any step.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return train_ds.with_options(options), val_ds.with_options(options), recal_ds.with_options(options), steps


def uses_one_hot(config):
    return any(a in ("mixup", "cutmix") for a in config.augment) or config.label_smoothing > 0


def compile_model(model, config, steps_per_epoch):
    if config.label_smoothing:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        loss = "sparse_categorical_crossentropy"
        metrics = ["accuracy"]
    if any(a in ("mixup", "cutmix") for a in config.augment) and not config.label_smoothing:
        loss = "categorical_crossentropy"
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    model.compile(
        optimizer=recipes.optimizer(config, steps_per_epoch),
        loss=loss,
        metrics=metrics,
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
    )


def run(config):
    """Trains, evaluates and writes the workdir; returns the summary dict.

    The chief holds `<workdir>/.lock` for the whole run: a second run on the
    same workdir is refused at once (WorkdirBusyError names the running one).
    """
    held = []
    try:
        return _run(config, held)
    finally:
        for lock in held:
            lock.release()


def _run(config, held):
    config.validate()
    if not config.workdir:
        raise ConfigError("--workdir is required: the directory for checkpoints, logs and summary.json.")
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(
            f"--batch_size={config.batch_size} is not divisible by the {strategy.num_replicas_in_sync} replicas: "
            "use a multiple of the replica count."
        )
    if config.pair not in models_lib.list_pairs():
        raise ConfigError(f"Unknown --pair {config.pair!r}: use one of {', '.join(models_lib.list_pairs())}.")
    backup = check_workdir(config)
    if is_chief(strategy):
        held.append(workdir_lock.acquire(config.workdir))
    train, val, n_train, info = load_data(config)
    shape = input_shape(config, info)
    heldout = None
    if config.condition.startswith("valloss"):
        # The paper's `valloss`: one training batch is held out and its loss
        # drives the condition; the model never trains on it.
        batch = data_lib.make_pipeline(train.take(config.batch_size), batch_size=config.batch_size, training=False,
                                       image_size=shape[:2], num_classes=info["num_classes"],
                                       one_hot=uses_one_hot(config))
        heldout = [t.numpy() for t in next(iter(batch))]
        train, n_train = train.skip(config.batch_size), n_train - config.batch_size
    with strategy.scope():
        try:
            model = build_model(config, info["num_classes"], shape, heldout)
        except ValueError as err:
            raise ConfigError(f"--pair={config.pair} cannot be built for input shape {shape}: {err}") from err
    steps = n_train // config.batch_size
    with strategy.scope():
        compile_model(model, config, steps)
    # Under MultiWorkerMirroredStrategy every worker runs the same steps (the
    # collectives need them all) but only the chief writes the workdir; the
    # others write to a temporary directory, removed at the end. All read the
    # backup from the shared workdir.
    chief = is_chief(strategy)
    writer = config if chief else dataclasses.replace(config, workdir=tempfile.mkdtemp(prefix="keras_motivation_worker_"))
    try:
        if backup:
            # The step counter is part of the weights: position and state agree.
            model.load_weights(backup)
        start_step = model.counters()["steps"]
        os.makedirs(writer.workdir, exist_ok=True)
        _atomic_write(os.path.join(writer.workdir, "config.json"), config.to_json())
        # Logs written after the backup describe batches that will be trained again.
        callbacks_lib.truncate_csv(os.path.join(writer.workdir, "batches.csv"), lambda r: int(r["step"]) <= start_step)
        callbacks_lib.truncate_csv(
            os.path.join(writer.workdir, "history.csv"), lambda r: int(r["epoch"]) < start_step // max(n_train // config.batch_size, 1)
        )
        train_ds, val_ds, recal_ds, steps = make_datasets(
            config, train, val, n_train, shape, info["num_classes"], strategy, start_step
        )

        timer = callbacks_lib.ModeTimer()
        # Logs before the backup: a kill between the two leaves logs that the
        # resumed run truncates, never a backup whose logs are missing.
        cbs = [
            callbacks_lib.BatchLog(os.path.join(writer.workdir, "batches.csv")),
            keras.callbacks.CSVLogger(os.path.join(writer.workdir, "history.csv"), append=True),
            # Per-batch scalars (batch_loss, motivated) every 10 steps, epoch logs
            # (both models' losses and accuracies, activation rate) every epoch.
            keras.callbacks.TensorBoard(os.path.join(writer.workdir, "tensorboard"), update_freq=10),
            keras.callbacks.TerminateOnNaN(),
            timer,
            callbacks_lib.ResumableBackup(os.path.join(writer.workdir, "backup"), steps, every=BACKUP_EVERY_STEPS,
                                          elapsed=lambda: {"wall_clock_s": time.time() - start + before.get("wall_clock_s", 0.0),
                                                           "cpu_time_s": time.process_time() - cpu_start + before.get("cpu_time_s", 0.0)}),
        ]
        # Time spent by the interrupted runs this one resumes (from their backup).
        before = callbacks_lib.ResumableBackup.read_state(os.path.join(config.workdir, "backup")) if backup else {}
        start, cpu_start = time.time(), time.process_time()
        epoch, done_in_epoch = divmod(start_step, steps)
        # A progress bar on a terminal, one line per epoch otherwise.
        verbose = int(config.verbose) if config.verbose != "auto" else ("auto" if os.isatty(1) else 2)
        if done_in_epoch:
            # Finish the interrupted epoch with its remaining batches first.
            model.fit(train_ds, epochs=epoch + 1, initial_epoch=epoch, steps_per_epoch=steps - done_in_epoch,
                      validation_data=val_ds, callbacks=cbs, verbose=verbose, shuffle=False,  # the pipeline shuffles
                      recalibration_data=recal_ds)
            epoch += 1
            train_ds, val_ds, recal_ds, steps = make_datasets(
                config, train, val, n_train, shape, info["num_classes"], strategy, epoch * steps
            )
        if epoch < config.epochs and not model.stop_training:
            model.fit(train_ds, epochs=config.epochs, initial_epoch=epoch, steps_per_epoch=steps,
                      validation_data=val_ds, callbacks=cbs, verbose=verbose, shuffle=False,  # the pipeline shuffles
                      recalibration_data=recal_ds)
        wall = time.time() - start + before.get("wall_clock_s", 0.0)
        cpu = time.process_time() - cpu_start + before.get("cpu_time_s", 0.0)
        return finish(writer, model, val_ds, recal_ds, timer, wall, cpu, info, shape, strategy)
    finally:
        if not chief:
            shutil.rmtree(writer.workdir, ignore_errors=True)


def finish(config, model, val_ds, recal_ds, timer, wall, cpu, info, shape, strategy):
    """Final evaluation, saved models and summary.json."""
    # A no-op after a complete epoch; after a resume with nothing left to
    # train it recomputes the statistics ("recalibrated") the backup lacks.
    model.close_epoch(recalibration_data=recal_ds)
    evaluation = model.evaluate(val_ds, verbose=0, return_dict=True)
    final = os.path.join(config.workdir, "final")
    os.makedirs(final, exist_ok=True)
    for name, m in (("base", model.base), ("motivated", model.motivated), ("motivated_model", model)):
        tmp = os.path.join(final, f".tmp-{name}.keras")
        m.save(tmp)
        os.replace(tmp, os.path.join(final, f"{name}.keras"))
    history = callbacks_lib.read_csv(os.path.join(config.workdir, "history.csv"))
    counters = model.counters()
    summary = {
        "pair": config.pair,
        "dataset": config.dataset,
        "condition": config.condition,
        "k": config.k,
        "differential_init": config.differential_init,
        "bn_statistics": config.bn_statistics,
        "recalibration_batches": config.recalibration_batches if config.bn_statistics == "recalibrated" else 0,
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
        "activations": activation_statistics(counters, config),
        "wall_clock_s": wall,
        "cpu_time_s": cpu,
        "wall_clock_per_mode_s": timer.per_mode(),
        "stopped": stop_reason(config.workdir, model),
        "versions": {
            "keras_motivation": keras_motivation.__version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "python": platform.python_version(),
        },
        "replicas": strategy.num_replicas_in_sync,
    }
    if config.statistics_check_batches:
        # Training images the recalibration did not use, when there are any.
        check_ds = recal_ds.unbatch().skip(config.recalibration_batches * config.batch_size).batch(config.batch_size)
        if not any(True for _ in check_ds.take(1)):
            check_ds = recal_ds
        summary["statistics_check"] = statistics_check(model, val_ds, check_ds, config.statistics_check_batches)
    final_batches = 0
    if config.bn_statistics == "recalibrated":
        available = int(recal_ds.cardinality())  # negative when unknown
        final_batches = config.recalibration_batches if available < 0 else min(config.recalibration_batches, available)
    summary.update(flops_summary(model, counters, config.batch_size, final_batches))
    summary["switch_seconds"] = switch_seconds(model)
    summary["time_in_switches_s"] = summary["switch_seconds"] * counters["switches"]
    summary["speedup_vs_motivated_alone"] = speedup(summary)
    if config.export:
        from keras_motivation import export

        summary["export"] = export.export_pair(
            model.base, model.motivated, os.path.join(config.workdir, "export"), image_size=shape[:2],
            channels=shape[2], overwrite=True,
            metadata={"pair": config.pair, "flops": summary.get("flops"), "validation": summary["final"]},
        )
    _atomic_write(os.path.join(config.workdir, "summary.json"), json.dumps(summary, indent=2))
    return summary


def stop_reason(workdir, model):
    """Why training ended early (TerminateOnNaN), or None."""
    rows = callbacks_lib.read_csv(os.path.join(workdir, "batches.csv"))
    if model.stop_training and rows and not math.isfinite(float(rows[-1]["batch_loss"])):
        return f"non-finite loss at step {rows[-1]['step']} (TerminateOnNaN)"
    return None


def activation_statistics(counters, config):
    steps = max(counters["steps"], 1)
    stats = {
        **counters,
        "activation_rate": counters["motivated_steps"] / steps,
        "triggers_per_step": counters["activations"] / steps,
        "mean_activation_length": counters["motivated_steps"] / counters["activations"] if counters["activations"] else 0.0,
    }
    if config.condition == "consecutive":
        # For i.i.d. losses, a batch is motivated when the k+1 losses before
        # it fell strictly: probability 1/(k+1)!; a trigger additionally needs
        # the streak to start there: 1/(k+1)! - 1/(k+2)!.
        stats["noise_activation_rate"] = 1.0 / math.factorial(config.k + 1)
        stats["noise_triggers_per_step"] = 1.0 / math.factorial(config.k + 1) - 1.0 / math.factorial(config.k + 2)
    return stats


def flops_summary(model, counters, batch_size, final_recalibration_batches=0):
    """Forward FLOPs per image of both models, the paper's F_{X-Y}, and what the
    paper leaves out: training FLOPs with the backward passes (about 2x forward)."""
    from keras_motivation import flops

    fx, fy = flops.count_flops(model.base), flops.count_flops(model.motivated)
    base_steps = counters["steps"] - counters["motivated_steps"]
    out = {"flops": {"base": fx, "motivated": fy, "base_macs": fx // 2, "motivated_macs": fy // 2}}
    if counters["steps"]:
        out["flops"]["dual_training_average"] = flops.dual_training_flops(fx, fy, base_steps, counters["motivated_steps"])
        out["flops"]["training_total"] = (flops.training_flops(fx, base_steps * batch_size)
                                          + flops.training_flops(fy, counters["motivated_steps"] * batch_size))
        out["flops"]["training_total_motivated_alone"] = flops.training_flops(fy, counters["steps"] * batch_size)
        # Recomputing BatchNorm statistics is one forward pass of each model
        # per image. The last recalibration makes the deployed models and
        # counts as training; the earlier ones served validation only.
        done = counters.get("recalibration_batches", 0) * batch_size * (fx + fy)
        final = min(done, final_recalibration_batches * batch_size * (fx + fy))
        out["flops"]["recalibration"] = final
        out["flops"]["recalibration_for_validation"] = done - final
        out["flops"]["training_total"] += final
    return out


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
                copy.compile(loss=model.loss, metrics=["accuracy"] if not _one_hot_metrics(model) else
                             [keras.metrics.CategoricalAccuracy(name="accuracy")])
            accuracies.append(float(copy.evaluate(val_ds, verbose=0, return_dict=True)["accuracy"]))
        out[name] = {"as_saved": accuracies[0], "recomputed": accuracies[1]}
    return out


def _one_hot_metrics(model):
    return isinstance(model.loss, keras.losses.CategoricalCrossentropy) or model.loss == "categorical_crossentropy"


def switch_seconds(model, repeats=10):
    """Measured seconds of one switch: `MotivatedModel.time_switch`."""
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


def describe(config, summary):
    """The lines printed at the end of a run: where everything is."""
    w = config.workdir
    f = summary["final"]
    lines = [
        f"base accuracy {f.get('accuracy', float('nan')):.4f}, motivated accuracy {f.get('motivated_accuracy', float('nan')):.4f} "
        f"on the validation split; motivated share of steps {summary['activations']['activation_rate']:.3f}",
        f"summary:     {os.path.join(w, 'summary.json')}",
        f"history:     {os.path.join(w, 'history.csv')} (per batch: {os.path.join(w, 'batches.csv')})",
        f"models:      {os.path.join(w, 'final')}/base.keras, motivated.keras",
        f"tensorboard: tensorboard --logdir {os.path.join(w, 'tensorboard')}",
    ]
    return "\n".join(lines)

