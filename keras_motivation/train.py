r"""Trains a motivated pair: `python -m keras_motivation.train --flagfile=configs/quickstart.flags`.

Flags fill a `TrainConfig` (flags given after --flagfile override it); all the
work is in `keras_motivation.trainer.run`. See `--helpfull` for every flag.

Exit codes: 0 the run finished; 1 an error (one `error:` line); 75
(`preemption.EXIT_CODE`) SIGTERM, SIGUSR1 or SIGINT stopped the run at a step
with its backup written (one `preempted:` line): rerun the same command to
resume it.
"""

import sys

from keras_motivation import console

console.quiet_tensorflow()  # before TensorFlow is imported (also for the keras-motivation-train script)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from keras_motivation import config as config_lib  # noqa: E402
from keras_motivation import data as data_lib  # noqa: E402
from keras_motivation import preemption  # noqa: E402
from keras_motivation import summary as summary_lib  # noqa: E402
from keras_motivation import trainer  # noqa: E402
from keras_motivation.config import ConfigError  # noqa: E402
from keras_motivation.config import config_from_flags  # noqa: E402
from keras_motivation.config import define_flags  # noqa: E402


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]}: every setting is a --flag (see --helpfull).")
    try:
        config = config_from_flags(flags.FLAGS)
        summary = trainer.run(config)
    except preemption.Preempted as stop:
        exit_preempted(stop, requeue=config.requeue_on_signal)
    except (ConfigError, FileNotFoundError, data_lib.DatasetUnavailableError, preemption.BackupError) as err:
        sys.exit(f"error: {err}")
    print(summary_lib.describe(config, summary))


def exit_preempted(stop, requeue=False):
    """The end of a run a signal stopped: its one line, the Slurm requeue `--requeue_on_signal` asks for
    (the chief, on SIGUSR1; what happened goes to stderr), exit code `preemption.EXIT_CODE`."""
    if sys.stdout.isatty():
        print()  # past a progress bar's line
    print(stop.line(), flush=True)
    if requeue and stop.chief and stop.signal == preemption.REQUEUE_SIGNAL:
        print(preemption.requeue(), file=sys.stderr, flush=True)
    sys.exit(preemption.EXIT_CODE)


def cli():
    """The `keras-motivation-train` command: defines the flags and runs `main`."""
    define_flags()
    # The flags are defined in config.py; --help lists the main module's own.
    flags.adopt_module_key_flags(config_lib)
    app.run(main)


if __name__ == "__main__":
    cli()
