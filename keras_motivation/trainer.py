"""One training run from a TrainConfig: the library behind `python -m keras_motivation.train`.

`run(config)` is the sequence config -> strategy -> workdir -> data -> model
-> fit -> summary -> export; the data comes from the `data` package, the
summary from `summary.py`, the export from `export.py`. The steps hand on one
`RunRecord`: the run's data, then what its fit leaves. It writes the workdir:

    <workdir>/config.json        the resolved config (checked on resume)
    <workdir>/backup/            state.weights.h5 + state.json, written atomically
                                 every `backup_every` steps and at epoch ends
    <workdir>/history.csv        one row per epoch (CSVLogger)
    <workdir>/batches.csv        per-batch loss, motivated flag, learning rate
    <workdir>/tensorboard/       TensorBoard logs
    <workdir>/final/             base.keras, motivated.keras, motivated_model.keras
    <workdir>/summary.json       accuracies, FLOPs, motivation statistics (motivated share), timing
"""

import dataclasses
import json
import os
import shutil
import tempfile
import time
import warnings

import keras
import tensorflow as tf

import keras_motivation
from keras_motivation import callbacks as callbacks_lib
from keras_motivation import conditions as conditions_lib
from keras_motivation import data as data_lib
from keras_motivation import export as export_lib
from keras_motivation import files
from keras_motivation import models as models_lib
from keras_motivation import recipes
from keras_motivation import strategies
from keras_motivation import summary as summary_lib
from keras_motivation import workdir_lock
from keras_motivation.config import ConfigError
from keras_motivation.config import TrainConfig
from keras_motivation.config import differential_start

# Moved to the data package, strategies.py and summary.py; importable from here as before.
from keras_motivation.data import input_shape  # noqa: F401
from keras_motivation.data import make_datasets  # noqa: F401
from keras_motivation.data import uses_one_hot  # noqa: F401
from keras_motivation.engine import JointStep
from keras_motivation.engine import MotivatedModel
from keras_motivation.strategies import is_chief  # noqa: F401
from keras_motivation.strategies import make_strategy  # noqa: F401
from keras_motivation.summary import describe  # noqa: F401
from keras_motivation.summary import flops_summary  # noqa: F401
from keras_motivation.summary import speedup  # noqa: F401
from keras_motivation.summary import statistics_check  # noqa: F401
from keras_motivation.summary import stop_reason  # noqa: F401
from keras_motivation.summary import switch_seconds  # noqa: F401

BACKUP_EVERY_STEPS = 200


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What one run's steps hand on: its data (`load_run_data`), then what its fit leaves for the evaluation,
    the summary and the export (`fit` returns the record with those filled in)."""

    strategy: tf.distribute.Strategy
    train: tf.data.Dataset  # unbatched training examples (without the held-out batch)
    val: tf.data.Dataset  # unbatched validation examples
    n_train: int
    info: dict  # data.dataset_info: num_classes, image_shape (class_names for image folders)
    shape: tuple  # the models' input shape
    steps_per_epoch: int
    heldout: list | None = None  # valloss: the held-out training batch, [images, labels]
    # Filled in by fit:
    val_ds: tf.data.Dataset | None = None  # the last epoch's batched validation data
    recal_ds: tf.data.Dataset | None = None  # and BatchNorm recalibration data
    timer: callbacks_lib.ModeTimer | None = None  # seconds per mode
    wall: float | None = None  # seconds of this run and of those it resumes
    cpu: float | None = None

    @property
    def num_classes(self):
        return self.info["num_classes"]


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
    check_config(config)
    strategy = start_strategy(config)
    backup = check_workdir(config)
    chief = strategies.is_chief(strategy)
    if chief:
        held.append(workdir_lock.acquire(config.workdir))
    record = load_run_data(config, strategy)
    model = make_model(config, record)
    # Under MultiWorkerMirroredStrategy every worker runs the same steps (the
    # collectives need them all) but only the chief writes the workdir; the
    # others write to a temporary directory, removed at the end. All read the
    # backup from the shared workdir.
    writer = (
        config if chief else dataclasses.replace(config, workdir=tempfile.mkdtemp(prefix="keras_motivation_worker_"))
    )
    try:
        record = fit(writer, model, backup, record)
        return evaluate_summarize_export(writer, model, record)
    finally:
        if not chief:
            shutil.rmtree(writer.workdir, ignore_errors=True)


# -- config and strategy ---------------------------------------------------------------


def check_config(config):
    """ConfigError for a config no run can use (before anything is written); sets the
    process-wide options it asks for (op determinism, mixed precision, seed)."""
    config.validate()
    if not config.workdir:
        raise ConfigError("--workdir is required: the directory for checkpoints, logs and summary.json.")
    if config.pair not in models_lib.list_pairs():
        raise ConfigError(f"Unknown --pair {config.pair!r}: use one of {', '.join(models_lib.list_pairs())}.")
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(config.seed)


def start_strategy(config):
    """The run's tf.distribute strategy, checked against the global batch size."""
    strategy = strategies.make_strategy(config)
    try:
        data_lib.split_for_replicas(
            config.batch_size, strategy.num_replicas_in_sync, name=f"--batch_size={config.batch_size}"
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return strategy


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


# -- data ----------------------------------------------------------------------------


def load_data(config):
    """data.load_data, with settings no data can satisfy reported as ConfigError."""
    try:
        return data_lib.load_data(config)
    except ValueError as err:
        raise ConfigError(str(err)) from err


def load_run_data(config, strategy):
    """The RunRecord of a run's data: examples, dataset info, input shape, held-out batch (or None), steps per
    epoch."""
    train, val, n_train, info = load_data(config)
    shape = data_lib.input_shape(config, info)
    heldout = None
    if conditions_lib.takes_heldout(config.condition):
        heldout, train, n_train = data_lib.hold_out_batch(config, train, n_train, shape, info["num_classes"])
    try:
        steps = data_lib.steps_per_epoch(config.batch_size, n_train, strategy.num_replicas_in_sync)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return RunRecord(
        strategy=strategy,
        train=train,
        val=val,
        n_train=n_train,
        info=info,
        shape=shape,
        steps_per_epoch=steps,
        heldout=heldout,
    )


# -- model ---------------------------------------------------------------------------


def make_model(config, record):
    """The compiled MotivatedModel of a run, built in the strategy's scope."""
    with record.strategy.scope():
        try:
            model = build_motivated_model(config, record.num_classes, record.shape, record.heldout)
        except ValueError as err:
            raise ConfigError(f"--pair={config.pair} cannot be built for input shape {record.shape}: {err}") from err
        compile_model(model, config, record.steps_per_epoch)
    return model


def build_motivated_model(config, num_classes, shape, heldout=None):
    """The (uncompiled) MotivatedModel of `config`: the registry pair, its map, the condition."""
    base, motivated, wmap = models_lib.get_pair(
        config.pair, num_classes=num_classes, input_shape=shape, **config.model_kwargs
    )
    if config.init_from:
        _init_from(config, base, motivated)
    model = MotivatedModel(
        base,
        motivated,
        wmap,
        make_condition(config, heldout),
        bn_statistics=config.bn_statistics,
        recalibration_batches=config.recalibration_batches,
        joint=JointStep(base_weight=config.joint_base_weight, distillation=config.distillation)
        if config.joint
        else None,
    )
    start = differential_start(config.differential_init)
    if start is not None:
        from keras_motivation.weights_map import identity_start

        identity_start(model.weights_map, **start, seed=config.seed)
    return model


def make_condition(config, heldout=None):
    """The condition of `config`; `--k` and `--seed` fill in k and seed where it takes them."""
    try:
        return conditions_lib.from_flag(config.condition, k=config.k, seed=config.seed, heldout=heldout)
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
        raise ConfigError(
            f"--init_from={config.init_from}: no layer of {path} matches the models of --pair={config.pair}."
        )
    return loaded


def compile_model(model, config, steps_per_epoch):
    """Loss and accuracy for the run's labels (one-hot with MixUp, CutMix or label smoothing) and the recipe's
    optimizer."""
    if data_lib.uses_one_hot(config):
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        loss = "sparse_categorical_crossentropy"
        metrics = ["accuracy"]
    model.compile(
        optimizer=recipes.optimizer(config, steps_per_epoch),
        loss=loss,
        metrics=metrics,
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
    )


# -- fit -----------------------------------------------------------------------------


def fit(config, model, backup, record):
    """Trains from the backup (if any) to `config.epochs`, writing config.json, logs and backups.

    Returns `record` with the datasets of the last epoch, the per-mode timer
    and the seconds of this run and those it resumes filled in.
    """
    if backup:
        # The step counter is part of the weights: position and state agree.
        model.load_weights(backup)
    start_step = model.counters()["steps"]
    os.makedirs(config.workdir, exist_ok=True)
    files.atomic_write(os.path.join(config.workdir, "config.json"), config.to_json())
    steps = record.steps_per_epoch
    # Logs written after the backup describe batches that will be trained again.
    files.truncate_csv(os.path.join(config.workdir, "batches.csv"), lambda r: int(r["step"]) <= start_step)
    files.truncate_csv(os.path.join(config.workdir, "history.csv"), lambda r: int(r["epoch"]) < start_step // steps)

    def datasets(from_step):
        return data_lib.make_datasets(
            config,
            record.train,
            record.val,
            record.n_train,
            record.shape,
            record.num_classes,
            record.strategy,
            from_step,
        )

    # Time spent by the interrupted runs this one resumes (from their backup).
    before = callbacks_lib.ResumableBackup.read_state(os.path.join(config.workdir, "backup")) if backup else {}
    start, cpu_start = time.time(), time.process_time()

    def elapsed():
        return {
            "wall_clock_s": time.time() - start + before.get("wall_clock_s", 0.0),
            "cpu_time_s": time.process_time() - cpu_start + before.get("cpu_time_s", 0.0),
        }

    timer = callbacks_lib.ModeTimer()
    # Logs before the backup: a kill between the two leaves logs that the
    # resumed run truncates, never a backup whose logs are missing.
    cbs = [
        callbacks_lib.BatchLog(os.path.join(config.workdir, "batches.csv")),
        keras.callbacks.CSVLogger(os.path.join(config.workdir, "history.csv"), append=True),
        # Per-batch scalars (batch_loss, motivated) every 10 steps, epoch logs
        # (both models' losses and accuracies, motivated share) every epoch.
        keras.callbacks.TensorBoard(os.path.join(config.workdir, "tensorboard"), update_freq=10),
        keras.callbacks.TerminateOnNaN(),
        timer,
        callbacks_lib.ResumableBackup(
            os.path.join(config.workdir, "backup"), steps, every=BACKUP_EVERY_STEPS, elapsed=elapsed
        ),
    ]
    # A progress bar on a terminal, one line per epoch otherwise.
    verbose = int(config.verbose) if config.verbose != "auto" else ("auto" if os.isatty(1) else 2)
    train_ds, val_ds, recal_ds, steps = datasets(start_step)

    def fit_epochs(first, last, steps_per_epoch):
        model.fit(
            train_ds,
            epochs=last,
            initial_epoch=first,
            steps_per_epoch=steps_per_epoch,
            validation_data=val_ds,
            callbacks=cbs,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles
            recalibration_data=recal_ds,
        )

    epoch, done_in_epoch = divmod(start_step, steps)
    if done_in_epoch:
        # Finish the interrupted epoch with its remaining batches first.
        fit_epochs(epoch, epoch + 1, steps - done_in_epoch)
        epoch += 1
        train_ds, val_ds, recal_ds, steps = datasets(epoch * steps)
    if epoch < config.epochs and not model.stop_training:
        fit_epochs(epoch, config.epochs, steps)
    seconds = elapsed()
    return dataclasses.replace(
        record,
        val_ds=val_ds,
        recal_ds=recal_ds,
        timer=timer,
        wall=seconds["wall_clock_s"],
        cpu=seconds["cpu_time_s"],
    )


def evaluate_and_save(config, model, val_ds, recal_ds):
    """Final evaluation (both models) and `<workdir>/final/*.keras`; returns the evaluation dict."""
    # The evaluation recomputes the statistics ("recalibrated") only when they are
    # stale: not after a complete fit (its last validation did); after a resume with
    # nothing left to train (load_weights marks the backup's stale), from recal_ds.
    model.end_epoch(recalibration_data=recal_ds)
    evaluation = model.evaluate(val_ds, verbose=0, return_dict=True)
    final = os.path.join(config.workdir, "final")
    for name, m in (("base", model.base), ("motivated", model.motivated), ("motivated_model", model)):
        with files.replacing(os.path.join(final, f"{name}.keras"), suffix=".keras") as tmp:
            m.save(tmp)
    return evaluation


# -- export --------------------------------------------------------------------------


def export_models(config, model, shape, summary):
    """SavedModels of both models for TF Serving in `<workdir>/export`; returns their paths."""
    return export_lib.export_pair(
        model.base,
        model.motivated,
        os.path.join(config.workdir, "export"),
        image_size=shape[:2],
        channels=shape[2],
        overwrite=True,
        metadata={"pair": config.pair, "flops": summary.get("flops"), "validation": summary["final"]},
    )


def evaluate_summarize_export(config, model, record):
    """The run's last steps, from the RunRecord `fit` returned: evaluate and save both models, summarize,
    export, write summary.json."""
    evaluation = evaluate_and_save(config, model, record.val_ds, record.recal_ds)
    summary = summary_lib.summarize(
        config,
        model,
        evaluation,
        val_ds=record.val_ds,
        recal_ds=record.recal_ds,
        mode_seconds=record.timer.per_mode(),
        wall=record.wall,
        cpu=record.cpu,
        info=record.info,
        shape=record.shape,
        replicas=record.strategy.num_replicas_in_sync,
        library_version=keras_motivation.__version__,
    )
    if config.export:
        summary["export"] = export_models(config, model, record.shape, summary)
    files.atomic_write(os.path.join(config.workdir, "summary.json"), json.dumps(summary, indent=2))
    return summary


# -- deprecated ----------------------------------------------------------------------


def activation_statistics(counters, config):
    """Deprecated: `summary.motivation_statistics(counters, condition, k)`."""
    warnings.warn(
        "keras_motivation.trainer.activation_statistics is deprecated: use "
        "summary.motivation_statistics(counters, config.condition, config.k).",
        DeprecationWarning,
        stacklevel=2,
    )
    return summary_lib.motivation_statistics(counters, config.condition, config.k)
