"""Real data: Res-8 with Res-14 on a few hundred Fashion-MNIST images."""

import keras
import numpy as np
from testing_utils import load_fashion_mnist
from testing_utils import requires_fashion_mnist

import keras_motivation as km


@requires_fashion_mnist
def test_both_models_learn_on_real_fashion_mnist():
    (x, y), (xt, yt) = load_fashion_mnist(n_train=512, n_test=256)
    base = km.models.resnet_cifar(8, input_shape=(28, 28, 1), width=8)
    motivated = km.models.resnet_cifar(14, input_shape=(28, 28, 1), width=8)
    model = km.MotivatedModel(base, motivated, "resnet_depth", km.conditions.ConsecutiveDecrease(2))
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    before = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    hist = model.fit(x, y, batch_size=32, epochs=2, verbose=0, validation_data=(xt, yt))
    after = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert sum(hist.history["motivated_steps"]) > 0, "the motivated model never trained"
    assert after["loss"] < 0.8 * before["loss"], (before, after)
    assert after["motivated_loss"] < 0.8 * before["motivated_loss"], (before, after)
    # Better than chance (10%) on held-out real images.
    assert hist.history["val_accuracy"][-1] > 0.3
    assert np.isfinite(hist.history["val_motivated_loss"][-1])
