"""FLOPs: pinned counts of known models and the paper's Table 1 arithmetic."""

import keras
import pytest

import keras_motivation as km
from keras_motivation import flops


def test_hand_checkable_model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, use_bias=False)(x))
    conv = 8 * 8 * 4 * (3 * 3 * 3)  # outputs x (kernel taps x input channels)
    dense = 8 * 8 * 4 * 5
    assert flops.count_macs(model) == conv + dense
    assert flops.count_flops(model) == 2 * (conv + dense)


def test_resnet20_and_32_match_the_paper():
    # Paper Table 1: 82.82M and 140.13M "FLOPs", i.e. 41.4M and 70.1M MACs.
    assert flops.count_macs(km.models.resnet_cifar(20)) == pytest.approx(41.41e6, rel=0.03)
    assert flops.count_macs(km.models.resnet_cifar(32)) == pytest.approx(70.07e6, rel=0.03)


def test_efficientnet_b0():
    # Tan & Le: 0.39G FLOPs (multiply-adds) at 224 px.
    macs = flops.count_macs(keras.applications.EfficientNetB0(weights=None))
    assert 0.39e9 * 0.97 <= macs <= 0.40e9 * 1.03


def test_resnet50():
    # keras.applications' ResNet50 is He et al.'s v1 (stride in the first 1x1
    # convolution): 3.8e9 multiply-adds (their Table 1). The 4.1G often quoted
    # is "v1.5" (stride in the 3x3 convolution, as in torchvision).
    macs = flops.count_macs(keras.applications.ResNet50(weights=None))
    assert macs == pytest.approx(3.8e9, rel=0.03)
    # Doubling the side (no odd sizes on the way down) quadruples the cost; shown on a small ResNet
    # (a second ResNet-50 build took 12 s).
    small = flops.count_macs(km.models.resnet_cifar(20, input_shape=(32, 32, 3)))
    large = flops.count_macs(km.models.resnet_cifar(20, input_shape=(64, 64, 3)))
    assert large == pytest.approx(4 * small, rel=0.01)


def test_paper_table_1_ratios():
    # Res-20-32B on CIFAR-10: 92.62 / 92.83 / 93.63 % at 82.82 / 92.47 / 140.13 MFLOPs.
    rate = flops.acc_per_flops(92.83, 92.62, 92.47, 82.82)
    assert rate == pytest.approx(2.18e-2, abs=0.005e-2)
    ratio = flops.acc_flops_ratio(92.83, 92.62, 93.63, 92.47, 82.82, 140.13)
    # 1.235 unrounded; the paper divides its rounded rates, 2.18e-2 / 1.76e-2 = 1.24.
    assert ratio == pytest.approx(1.24, abs=0.006)
    y_rate = flops.acc_per_flops(93.63, 92.62, 140.13, 82.82)
    assert round(rate * 100, 2) / round(y_rate * 100, 2) == pytest.approx(1.24, abs=0.005)
    # F_{X-Y}: the motivated model on 16.8% of the batches.
    assert flops.dual_training_flops(82.82, 140.13, 832, 168) == pytest.approx(92.4, abs=0.1)
    with pytest.raises(ValueError):
        flops.acc_per_flops(1, 0, 5, 5)
    with pytest.raises(ValueError):
        flops.dual_training_flops(1, 2, 0, 0)
