"""keras-motivation: motivated dual-model training for Keras 3.

Acheli & Gaaloul, "Motivation is Something You Need" (2026).
"""

import sys as _sys

if _sys.argv[:1] == ["-m"]:
    # `python -m keras_motivation.<tool>`: Python imports this package while
    # argv[0] is still "-m", before the tool's own code can run. The tools'
    # console opens without TensorFlow's start-up noise (keras_motivation.console).
    from keras_motivation import console as _console

    _console.quiet_tensorflow()

from keras_motivation import batch_norm  # noqa: E402
from keras_motivation import conditions  # noqa: E402
from keras_motivation import models  # noqa: E402
from keras_motivation import policy  # noqa: E402
from keras_motivation import recipes  # noqa: E402  (registers Rewarmed, which saved optimizers name)
from keras_motivation import weights_map  # noqa: E402
from keras_motivation.engine import JointStep  # noqa: E402
from keras_motivation.engine import MotivatedModel  # noqa: E402
from keras_motivation.policy import Policy  # noqa: E402
from keras_motivation.version import __version__  # noqa: E402
from keras_motivation.weights_map import WeightsMap  # noqa: E402
