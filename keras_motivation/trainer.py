"""One training run from a TrainConfig: the library behind `python -m keras_motivation.train`.

`run(config)` is the sequence config -> strategy -> workdir -> data -> model
-> fit -> summary -> export; the data comes from the `data` package, the
summary from `summary.py`, the export from `export.py`. The steps hand on one
`RunRecord`: the run's data, then what its fit leaves. It writes the workdir:

    <workdir>/config.json        the resolved config (checked on resume)
    <workdir>/backup/            state.weights.h5 + state.json, written atomically every
                                 `--backup_every` steps counted from the start of the run, every
                                 `--backup_every_s` seconds (optional), at epoch ends and when a
                                 signal stops the run (`preemption.py`)
    <workdir>/history.csv        one row per epoch (CSVLogger)
    <workdir>/batches.csv        per-batch loss, motivated flag, learning rate
    <workdir>/tensorboard/       TensorBoard logs
    <workdir>/final/             base.keras, motivated.keras (plain Keras models), motivated_model.keras
                                 (the MotivatedModel: both, with the engine's state; loads after
                                 `import keras_motivation`)
    <workdir>/summary.json       both models' accuracies, sizes and FLOPs, motivation statistics, timing
                                 (its keys: keras_motivation/summary.py)

A rerun of the same command resumes from the backup (and says from which
step), or, when the workdir holds a finished run, says so and evaluates both
models again.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf

import keras_motivation
from keras_motivation import callbacks as callbacks_lib
from keras_motivation import data as data_lib
from keras_motivation import export as export_lib
from keras_motivation import files
from keras_motivation import models as models_lib
from keras_motivation import preemption
from keras_motivation import recipes
from keras_motivation import run_clock
from keras_motivation import run_model
from keras_motivation import strategies
from keras_motivation import summary as summary_lib
from keras_motivation import summary_json
from keras_motivation import workdir_lock
from keras_motivation.config import ConfigError
from keras_motivation.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What one run's steps hand on: its data (`load_run_data`), then what its fit leaves for the evaluation,
    the summary and the export (`fit` returns the record with those filled in)."""

    strategy: tf.distribute.Strategy
    train: tf.data.Dataset  # unbatched training examples (without the held-out batch)
    val: tf.data.Dataset  # unbatched validation examples
    n_train: int
    n_val: int  # validation examples (what the final evaluation reads)
    info: dict  # data.dataset_info: num_classes, image_shape (class_names for image folders)
    shape: tuple  # the models' input shape
    steps_per_epoch: int
    heldout: list | None = None  # valloss: the held-out training batch, [images, labels]
    # Filled in by fit:
    val_ds: tf.data.Dataset | None = None  # the last epoch's batched validation data
    recal_ds: tf.data.Dataset | None = None  # and BatchNorm recalibration data
    timer: callbacks_lib.ModeTimer | None = None  # seconds per mode
    last_validation: callbacks_lib.LastValidation | None = None  # the last epoch's validation logs
    clock: run_clock.RunClock | None = None  # where the run's time goes (summary.json's time_breakdown)
    start_step: int = 0  # the step fit started from (from the backup; 0 for a fresh run)
    wall: float | None = None  # seconds of this run and of those it resumes
    cpu: float | None = None

    @property
    def num_classes(self):
        return self.info["num_classes"]


def run(config: TrainConfig) -> dict:
    """Trains, evaluates and writes the workdir; returns the summary dict.

    The chief holds `<workdir>/.lock` for the whole run: a second run on the
    same workdir is refused at once (WorkdirBusyError names the running one).

    SIGTERM, SIGUSR1 and SIGINT during training stop the run after the step
    in flight with its backup written: `preemption.Preempted` (its `line()`
    names the workdir); rerunning resumes from the next step. A backup that
    cannot be written or read raises `preemption.BackupError`.
    """
    held = []
    try:
        return _run(config, held)
    except preemption.Preempted as stop:
        stop.workdir = config.workdir
        raise
    finally:
        for lock in held:
            lock.release()


def _run(config, held):
    clock = run_clock.RunClock()
    check_config(config)
    strategy = start_strategy(config)
    backup = check_workdir(config)
    chief = strategies.is_chief(strategy)
    if chief:
        held.append(workdir_lock.acquire(config.workdir))
    record = load_run_data(config, strategy)
    model = make_model(config, record)
    clock.model = model
    record = dataclasses.replace(record, clock=clock)
    # Under MultiWorkerMirroredStrategy every worker runs the same steps (the
    # collectives need them all) but only the chief writes the workdir; the
    # others write to a temporary directory, removed at the end. All read the
    # backup from the shared workdir.
    writer = (
        config if chief else dataclasses.replace(config, workdir=tempfile.mkdtemp(prefix="keras_motivation_worker_"))
    )
    try:
        try:
            record = fit(writer, model, backup, record, log=print if chief else None)
        except preemption.Preempted as stop:
            stop.chief = chief
            raise
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
    if models_lib.is_ladder(config.pair):
        try:
            models_lib.registry.check_ladder(config.pair)
        except ValueError as err:
            raise ConfigError(f"--pair={config.pair}: {err}") from err
        if config.init_from:
            raise ConfigError("--init_from starts a pair's two models: leave it out with a ladder of three or more.")
    elif config.pair not in models_lib.list_pairs():
        raise ConfigError(
            f"Unknown --pair {config.pair!r}: use one of {', '.join(models_lib.list_pairs())} "
            "(or a ladder of one family, smallest first: resnet8:resnet14:resnet20)."
        )
    missing = models_lib.unavailable(config.pair)
    if missing:
        raise ConfigError(f"--pair={config.pair}: {missing}")
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if config.requeue_on_signal and preemption.slurm_job() is None:
        raise ConfigError(
            "--requeue_on_signal requeues the Slurm job on SIGUSR1, but SLURM_JOB_ID is not set: "
            "use it inside a Slurm job (sbatch), or leave it out."
        )
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
    a run of an incompatible config, and `preemption.BackupError` when its
    backup cannot be read (never a silent start from scratch). Returns the
    backup to resume from, or None."""
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
    if not config.resume:
        return None
    directory = os.path.join(config.workdir, "backup")
    try:
        callbacks_lib.ResumableBackup.check(directory)
    except preemption.BackupError as err:
        raise preemption.BackupError(f"{err}: {_REFUSED}") from None
    backup = os.path.join(directory, callbacks_lib.ResumableBackup.WEIGHTS)
    return backup if os.path.exists(backup) else None


_REFUSED = "the run was not started; restore the backup, or pass --resume=false to train from the start"


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
    if config.condition_spec.takes_heldout:
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
        n_val=data_lib.count_examples(val),
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
            model = run_model.build_motivated_model(config, record.num_classes, record.shape, record.heldout)
        except ValueError as err:
            raise ConfigError(f"--pair={config.pair} cannot be built for input shape {record.shape}: {err}") from err
        compile_model(model, config, record.steps_per_epoch)
    return model


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


def resume_line(workdir, start_step, steps_per_epoch, epochs, models=2):
    """The line a run from a backup prints first: where it resumes, or that the workdir holds a finished run
    (of `models` models)."""
    total = steps_per_epoch * epochs
    if start_step >= total:
        return (
            f"{workdir} already holds a finished run ({start_step} of {total} steps): nothing left to train; "
            f"evaluating {summary_json.every_model(models)} again"
        )
    epoch, batch = divmod(start_step, steps_per_epoch)
    return (
        f"resuming {workdir} from step {start_step} of {total} "
        f"(epoch {epoch + 1} of {epochs}, after its batch {batch} of {steps_per_epoch})"
    )


def fit(config, model, backup, record, log=None):
    """Trains from the backup (if any) to `config.epochs`, writing config.json, logs and backups.

    Returns `record` with the datasets of the last epoch, the per-mode timer,
    the step it started from and the seconds of this run and those it
    resumes filled in. `log`: where the line saying where a resumed run
    starts goes (`print` for the trainer's chief; None: nowhere).
    """
    if backup:
        # The step counter is part of the weights: position and state agree.
        try:
            model.load_weights(backup)
        except Exception as err:
            raise preemption.BackupError(
                f"the backup {backup} cannot be loaded ({preemption.one_line(err)}): {_REFUSED}"
            ) from None
    start_step = model.counters()["steps"]
    if backup and log is not None:
        log(resume_line(config.workdir, start_step, record.steps_per_epoch, config.epochs, len(model.rungs)))
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
    model.restore_statistics_record(before.get("statistics"))
    start, cpu_start = time.time(), time.process_time()

    def elapsed():
        return {
            "wall_clock_s": time.time() - start + before.get("wall_clock_s", 0.0),
            "cpu_time_s": time.process_time() - cpu_start + before.get("cpu_time_s", 0.0),
        }

    timer, last_validation = callbacks_lib.ModeTimer(), callbacks_lib.LastValidation()
    stop = preemption.StopRequest()
    history = keras.callbacks.CSVLogger(os.path.join(config.workdir, "history.csv"), append=True)
    # Per-batch scalars (batch_loss, motivated) every 10 steps, epoch logs
    # (both models' losses and accuracies, motivated share) every epoch.
    tensorboard = callbacks_lib.TensorBoard(os.path.join(config.workdir, "tensorboard"), update_freq=10)
    # Logs before the backup: a kill between the two leaves logs that the
    # resumed run truncates, never a backup whose logs are missing. The
    # backup comes last: when a signal stops the run, every other callback
    # has seen the last step.
    clock = record.clock or run_clock.RunClock()
    cbs = clock.callbacks(
        [
            callbacks_lib.BatchLog(os.path.join(config.workdir, "batches.csv")),
            history,
            tensorboard,
            keras.callbacks.TerminateOnNaN(),
            timer,
            last_validation,
            callbacks_lib.ResumableBackup(
                os.path.join(config.workdir, "backup"),
                steps,
                every=config.backup_every,
                every_s=config.backup_every_s,
                elapsed=elapsed,
                stop=stop,
                kept=lambda: {"statistics": model.statistics_record()},
            ),
        ]
    )
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
    # A signal during training stops it at the next step, saved (ResumableBackup raises Preempted); outside
    # training (start-up, the final evaluation and export) signals keep their usual effect.
    with stop:
        try:
            if done_in_epoch:
                # Finish the interrupted epoch with its remaining batches first.
                fit_epochs(epoch, epoch + 1, steps - done_in_epoch)
                epoch += 1
                train_ds, val_ds, recal_ds, steps = datasets(epoch * steps)
            if epoch < config.epochs and not model.stop_training:
                fit_epochs(epoch, config.epochs, steps)
        except (preemption.Preempted, preemption.BackupError):
            # fit ended without on_train_end: close the epoch log and TensorBoard's writers (flushed). On a
            # full disk that may fail too; the error that stopped the run is the one to report.
            for log in (history, tensorboard):
                with contextlib.suppress(Exception):
                    log.on_train_end()
            raise
    seconds = elapsed()
    return dataclasses.replace(
        record,
        val_ds=val_ds,
        recal_ds=recal_ds,
        timer=timer,
        last_validation=last_validation,
        clock=clock,
        start_step=start_step,
        wall=seconds["wall_clock_s"],
        cpu=seconds["cpu_time_s"],
    )


def evaluate_and_save(config, model, val_ds, recal_ds, last_validation=None):
    """Final evaluation (both models) and `<workdir>/final/*.keras`; returns the evaluation dict. The last
    epoch's validation is that evaluation where nothing changed since (`LastValidation`): no pass again."""
    # The evaluation recomputes the statistics ("recalibrated") only when they are
    # stale: not after a complete fit (its last validation did); after a resume with
    # nothing left to train (load_weights marks the backup's stale), from recal_ds.
    model.end_epoch(recalibration_data=recal_ds)
    evaluation = last_validation.unchanged(model) if last_validation is not None else None
    if evaluation is None:
        evaluation = model.evaluate(val_ds, verbose=0, return_dict=True)
    final = os.path.join(config.workdir, "final")
    named = list(zip(summary_json.model_names(config.pair), model.rungs))
    for name, m in (*named, ("motivated_model", model)):
        with files.replacing(os.path.join(final, f"{name}.keras"), suffix=".keras") as tmp:
            m.save(tmp)
    return evaluation


# -- export --------------------------------------------------------------------------


def export_models(config, model, shape, summary):
    """SavedModels of every model for TF Serving in `<workdir>/export`; returns their paths."""
    return export_lib.export_models(
        dict(zip(summary_json.model_names(config.pair), model.rungs)),
        os.path.join(config.workdir, "export"),
        image_size=shape[:2],
        channels=shape[2],
        overwrite=True,
        metadata=summary_json.export_metadata(summary),
    )


def evaluate_summarize_export(config, model, record):
    """The run's last steps, from the RunRecord `fit` returned: evaluate and save both models, summarize,
    export, write summary.json."""
    evaluation = evaluate_and_save(config, model, record.val_ds, record.recal_ds, record.last_validation)
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
        val_examples=record.n_val,
        resumed_from_step=record.start_step,
    )
    if config.export:
        summary["export"] = export_models(config, model, record.shape, summary)
    if record.clock is not None:
        record.clock.finish()
        summary["time_breakdown"] = record.clock.breakdown()
    files.atomic_write(os.path.join(config.workdir, "summary.json"), json.dumps(summary, indent=2))
    return summary
