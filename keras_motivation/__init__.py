"""keras-motivation: motivated dual-model training for Keras 3.

Acheli & Gaaloul, "Motivation is Something You Need" (2026).
"""

from keras_motivation import batch_norm
from keras_motivation import conditions
from keras_motivation import models
from keras_motivation import weights_map
from keras_motivation.motivated_model import MotivatedModel
from keras_motivation.weights_map import WeightsMap

__version__ = "0.1.0"
