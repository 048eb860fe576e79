"""BatchNorm statistics: recalibration against statistics computed directly,
private statistics untouched by the other model, the option in fit/save."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from testing_utils import Scripted
from testing_utils import assert_same
from testing_utils import random_data
from testing_utils import snapshot
from testing_utils import tiny_pair

import keras_motivation as km
from keras_motivation import batch_norm


def _two_bn_model(dropout=0.0):
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Conv2D(3, 3, strides=2, use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.99)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x))


def test_recalibration_matches_statistics_computed_from_the_same_batches():
    model = _two_bn_model()
    bns = batch_norm.batch_norm_layers(model)
    assert len(bns) == 2
    x = np.random.default_rng(0).normal(2.0, 3.0, (48, 8, 8, 2)).astype("float32")
    batches = [x[i : i + 16] for i in (0, 16, 32)]
    # Independent oracle: each BatchNorm layer's input in training mode (the
    # first layer normalises with batch moments), moments per batch in numpy.
    probe = keras.Model(model.inputs, [bn.input for bn in bns])
    expected = [[0, 0] for _ in bns]
    for b in batches:
        for e, inp in zip(expected, probe(b, training=True)):
            inp = np.asarray(inp, np.float64)
            e[0] = e[0] + inp.mean(axis=(0, 1, 2)) / len(batches)
            e[1] = e[1] + inp.var(axis=(0, 1, 2)) / len(batches)
    trainable = snapshot(model.trainable_variables)

    used = batch_norm.recalibrate(model, tf.data.Dataset.from_tensor_slices(x).batch(16), batches=3)

    assert used == 3
    for bn, (mean, var) in zip(bns, expected):
        np.testing.assert_allclose(bn.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(bn.moving_variance.numpy(), var, rtol=1e-5, atol=1e-5)
    assert [bn.momentum for bn in bns] == [0.9, 0.99]
    assert_same(trainable, model.trainable_variables)
    # Only `batches` batches are used, and arrays work as datasets do.
    batch_norm.recalibrate(model, x, batches=1, batch_size=16)
    np.testing.assert_allclose(
        bns[0].moving_mean.numpy(),
        np.asarray(probe(batches[0], training=True)[0]).mean(axis=(0, 1, 2)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_recalibration_leaves_random_layers_where_they_were():
    model = _two_bn_model(dropout=0.5)
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    assert seeds
    before = snapshot(seeds)
    x = np.random.default_rng(1).random((32, 8, 8, 2), dtype=np.float32)
    batch_norm.recalibrate(model, x, batches=2, batch_size=16)
    assert_same(before, seeds)
    # Without the restore the draws would have moved on.
    model(x, training=True)
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, seeds))


def _model(bn_statistics, schedule, **kwargs):
    base, motivated = tiny_pair()
    model = km.MotivatedModel(
        base, motivated, "resnet_depth", Scripted(schedule), bn_statistics=bn_statistics, **kwargs
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


SCHEDULE = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 0]


class _StatisticsWatch(keras.callbacks.Callback):
    """Per batch: did each model's moving statistics change during it?"""

    def __init__(self, model):
        super().__init__()
        self.stats = {
            "base": batch_norm.moving_statistics(model.base),
            "motivated": batch_norm.moving_statistics(model.motivated),
        }
        self.changed = []

    def on_train_batch_begin(self, batch, logs=None):
        self._before = {k: snapshot(v) for k, v in self.stats.items()}

    def on_train_batch_end(self, batch, logs=None):
        self.changed.append(
            {
                k: any(not np.array_equal(b, v.numpy()) for b, v in zip(self._before[k], vs))
                for k, vs in self.stats.items()
            }
        )


@pytest.mark.parametrize("bn_statistics", ["private", "recalibrated"])
def test_private_statistics_are_untouched_while_the_other_model_trains(bn_statistics):
    model = _model(bn_statistics, SCHEDULE)
    x, y = random_data(256)
    watch = _StatisticsWatch(model)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False, callbacks=[watch])
    assert model.counters()["switches"] >= 8
    for motivated, changed in zip(SCHEDULE, watch.changed):
        # Bit-identical across every switch while the other model trains;
        # changed by the model's own steps.
        assert changed == {"base": not motivated, "motivated": bool(motivated)}


@pytest.mark.parametrize("bn_statistics", ["shared", "private"])
def test_only_shared_statistics_are_copied(bn_statistics):
    # The epoch ends on a motivated batch: the forced copy back writes the
    # motivated model's slices into the base, statistics too when shared.
    model = _model(bn_statistics, SCHEDULE[:-1] + [1])
    x, y = random_data(256)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    own = {id(v) for v in batch_norm.moving_statistics(model.base)}
    entries = [e for e in model.weights_map.entries if id(e.base) in own]
    assert len(entries) == len(own)
    same = [
        np.array_equal(e.base.numpy(), e.motivated.numpy()[tuple(slice(0, n) for n in e.base.shape)]) for e in entries
    ]
    assert all(same) if bn_statistics == "shared" else not any(same)


def test_the_three_options_train_the_same_weights(deterministic):
    x, y = random_data(128)
    results = {}
    for option in batch_norm.BN_STATISTICS:
        keras.utils.set_random_seed(0)
        model = _model(option, SCHEDULE[:8], recalibration_batches=2)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        results[option] = model
    ref = results["shared"]
    for option, model in results.items():
        for a, b in zip(
            ref.base.trainable_variables + ref.motivated.trainable_variables,
            model.base.trainable_variables + model.motivated.trainable_variables,
        ):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{option}: {a.path}")
    # ... while what evaluation sees differs.
    stats = {
        o: np.concatenate([v.numpy().ravel() for v in batch_norm.moving_statistics(m.motivated)])
        for o, m in results.items()
    }
    assert not np.array_equal(stats["shared"], stats["private"])
    assert not np.array_equal(stats["private"], stats["recalibrated"])


def test_recalibrated_fit_ends_with_statistics_recomputed_from_training_batches():
    model = _model("recalibrated", SCHEDULE, recalibration_batches=3)
    x, y = random_data(256)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, validation_data=(x[:32], y[:32]))
    # Recomputed once per epoch (before validation), 3 batches per model.
    assert model.counters()["recalibration_batches"] == 2 * 3
    after_fit = snapshot(batch_norm.moving_statistics(model.base) + batch_norm.moving_statistics(model.motivated))
    for m in (model.base, model.motivated):
        batch_norm.recalibrate(m, tf.data.Dataset.from_tensor_slices(x).batch(16), batches=3)
    for a, v in zip(
        after_fit, batch_norm.moving_statistics(model.base) + batch_norm.moving_statistics(model.motivated)
    ):
        np.testing.assert_allclose(a, v.numpy(), rtol=1e-5, atol=1e-6, err_msg=v.path)


def test_option_round_trips_and_bad_input(tmp_path):
    model = _model("private", SCHEDULE, recalibration_batches=5)
    x, y = random_data(32)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", custom_objects={"Scripted": Scripted})
    assert (loaded.bn_statistics, loaded.recalibration_batches) == ("private", 5)
    base, motivated = tiny_pair()
    with pytest.raises(ValueError, match="bn_statistics must be one of shared, private, recalibrated, got 'mine'"):
        km.MotivatedModel(base, motivated, bn_statistics="mine")
    with pytest.raises(ValueError, match="recalibration_batches must be an integer >= 1"):
        km.MotivatedModel(base, motivated, recalibration_batches=0)
    model = _model("recalibrated", SCHEDULE)

    def generator():
        while True:
            yield x[:16], y[:16]

    with pytest.raises(ValueError, match="recalibration_data"):
        model.fit(generator(), steps_per_epoch=1, epochs=1, verbose=0)
    assert model.counters()["steps"] == 0
