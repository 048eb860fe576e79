"""Model families, each with its weights-map rule, and the registry of pairs."""

from keras_motivation.models.efficientnet import efficientnet
from keras_motivation.models.registry import build_model
from keras_motivation.models.registry import get_ladder
from keras_motivation.models.registry import get_pair
from keras_motivation.models.registry import is_ladder
from keras_motivation.models.registry import is_prefix_pair
from keras_motivation.models.registry import list_pairs
from keras_motivation.models.registry import unavailable
from keras_motivation.models.resnet import resnet
from keras_motivation.models.resnet_cifar import prefix_resnet_cifar
from keras_motivation.models.resnet_cifar import resnet_cifar
from keras_motivation.models.vit import vit
