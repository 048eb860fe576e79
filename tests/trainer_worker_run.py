"""One worker of `python -m keras_motivation.train --strategy=multi_worker` (TF_CONFIG set by the test).

argv: flagfile directory, workdir, then extra flags. With KILL_AFTER_EPOCH=N the
process dies abruptly (os._exit, no clean-up, like SIGKILL) right after the
backup at the end of epoch N, as a lost worker would. With PAUSE_AT_STEP=N it
pauses once N steps are trained until the test's stop signal has arrived
(testing_utils.pause_at_step); stopped by a signal, it prints the preempted
line and exits with its code, as the command does.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testing_utils import PAPERS_TRIGGER_FLAGS  # noqa: E402
from testing_utils import STUDY_FLAGFILE  # noqa: E402
from testing_utils import TINY_MODEL_FLAG  # noqa: E402
from testing_utils import pause_at_step  # noqa: E402

from keras_motivation import callbacks as callbacks_lib  # noqa: E402
from keras_motivation import config as config_lib  # noqa: E402
from keras_motivation import preemption  # noqa: E402
from keras_motivation import trainer  # noqa: E402

configs, workdir, *extra = sys.argv[1:]
kill_after = os.environ.get("KILL_AFTER_EPOCH")
if kill_after is not None:
    save = callbacks_lib.ResumableBackup.on_epoch_end

    def save_then_die(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch + 1 == int(kill_after):
            os._exit(17)

    callbacks_lib.ResumableBackup.on_epoch_end = save_then_die
if os.environ.get("PAUSE_AT_STEP"):
    pause_at_step(int(os.environ["PAUSE_AT_STEP"]))

config = config_lib.config_from_args(
    [
        "train",
        f"--flagfile={STUDY_FLAGFILE}",
        *PAPERS_TRIGGER_FLAGS,
        "--strategy=multi_worker",
        "--train_size=256",
        "--batch_size=32",
        "--eval_size=64",
        "--epochs=2",
        TINY_MODEL_FLAG,
        "--verbose=0",
        "--deterministic",
        f"--workdir={workdir}",
        *extra,
    ]
)
try:
    summary = trainer.run(config)
except preemption.Preempted as stop:
    print(stop.line(), flush=True)
    sys.exit(preemption.EXIT_CODE)
print(
    json.dumps(
        {
            "replicas": summary["replicas"],
            "activations": summary["activations"],
            "accuracy": summary["base"]["accuracy"],
        }
    )
)
