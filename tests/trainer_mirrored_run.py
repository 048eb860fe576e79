"""The trainer with --strategy=mirrored on 2 logical CPU devices (run in a subprocess)."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testing_utils import PAPERS_TRIGGER_FLAGS  # noqa: E402
from testing_utils import STUDY_FLAGFILE  # noqa: E402
from testing_utils import TINY_MODEL_FLAG  # noqa: E402

from keras_motivation import config as config_lib  # noqa: E402
from keras_motivation import trainer  # noqa: E402

configs, workdir = sys.argv[1], sys.argv[2]
# Further arguments are flags of both runs (a ladder's --pair, say).
extra = sys.argv[3:]
common = [
    "train",
    f"--flagfile={STUDY_FLAGFILE}",
    *PAPERS_TRIGGER_FLAGS,
    "--strategy=mirrored",
    "--train_size=256",
    "--eval_size=64",
    "--epochs=1",
    TINY_MODEL_FLAG,
    "--verbose=0",
    *extra,
]
try:
    trainer.run(config_lib.config_from_args([*common, "--batch_size=31", f"--workdir={workdir}/bad"]))
    error = None
except trainer.ConfigError as err:
    error = str(err)
summary = trainer.run(config_lib.config_from_args([*common, "--batch_size=32", f"--workdir={workdir}/run"]))
print(
    json.dumps(
        {
            "replicas": summary["replicas"],
            "steps": summary["activations"]["steps"],
            "rung_steps": summary["activations"].get("rung_steps"),
            "error": error,
            "bad_workdir_exists": os.path.exists(f"{workdir}/bad"),
        }
    )
)
