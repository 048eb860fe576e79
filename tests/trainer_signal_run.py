"""`python -m keras_motivation.train FLAGS...` for the stop-signal tests: with PAUSE_AT_STEP=N it pauses
once N steps are trained until the test's signal has arrived (testing_utils.pause_at_step)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from testing_utils import configure_grappler  # noqa: E402
from testing_utils import pause_at_step  # noqa: E402

from keras_motivation import train  # noqa: E402

configure_grappler()  # as in the test process, which trains the rest of the run and the reference
if os.environ.get("PAUSE_AT_STEP"):
    pause_at_step(int(os.environ["PAUSE_AT_STEP"]))
sys.argv = ["train", *sys.argv[1:]]
train.cli()
