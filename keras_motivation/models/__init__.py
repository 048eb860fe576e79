"""Model families and their weights-map rules."""

from keras_motivation.models.resnet_cifar import resnet_cifar
