"""BatchNorm statistics: recalibration against statistics computed directly,
private statistics untouched by the other model, the option in fit/save, and
the default option's recomputation: from every input fit accepts, only where
the statistics are read, once per set of weights."""

import logging

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


def test_recalibrated_fit_recomputes_the_statistics_training_left_stale():
    model = _model("recalibrated", SCHEDULE, recalibration_batches=3)
    x, y = random_data(256)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, validation_data=(x[:32], y[:32]))
    # Before each validation, 3 batches: at the first both models' (the schedule trained both); the second epoch
    # trained only the base, whose own steps moved its statistics, so only the motivated model's were stale.
    assert model.counters()["recalibration_batches"] == 2 * 3
    passes = model.recalibration_passes
    assert [(batches, step) for batches, _, step in passes] == [(3, 16), (3, 32)]
    assert set(passes[0][1]) == {model.base, model.motivated} and passes[1][1] == (model.motivated,)
    after_fit = snapshot(batch_norm.moving_statistics(model.base) + batch_norm.moving_statistics(model.motivated))
    for m in (model.base, model.motivated):
        batch_norm.recalibrate(m, tf.data.Dataset.from_tensor_slices(x).batch(16), batches=3)
    recomputed = batch_norm.moving_statistics(model.base) + batch_norm.moving_statistics(model.motivated)
    split = len(batch_norm.moving_statistics(model.base))
    for a, v in zip(after_fit[split:], recomputed[split:]):
        np.testing.assert_allclose(a, v.numpy(), rtol=1e-5, atol=1e-6, err_msg=v.path)
    assert not all(np.allclose(a, v.numpy()) for a, v in zip(after_fit[:split], recomputed[:split]))


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
    with pytest.raises(TypeError, match="recalibrate\\(\\) needs a batched tf.data.Dataset"):
        batch_norm.recalibrate(base, 3)


def _statistics(model):
    return snapshot(batch_norm.moving_statistics(model.base) + batch_norm.moving_statistics(model.motivated))


def _assert_recomputed_from(model, stats, batches, n):
    """`stats` (both models') are what `n` batches of `batches` give the models' current weights."""
    for m in (model.base, model.motivated):
        batch_norm.recalibrate(m, batches, batches=n)
    for a, v in zip(stats, batch_norm.moving_statistics(model.base) + batch_norm.moving_statistics(model.motivated)):
        np.testing.assert_allclose(a, v.numpy(), rtol=1e-5, atol=1e-6, err_msg=v.path)


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, i):
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[part], self.y[part]


@pytest.mark.parametrize("source", ["py_dataset", "generator"])
def test_fits_on_a_py_dataset_and_a_generator_recompute_with_the_defaults(source, tmp_path):
    base, motivated = tiny_pair()
    model = km.MotivatedModel(base, motivated, "resnet_depth", Scripted(SCHEDULE), recalibration_batches=3)
    assert model.bn_statistics == "recalibrated"  # the default
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    x, y = random_data(128)
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 128, 16)]
    if source == "py_dataset":
        model.fit(_Batches(x[:64], y[:64], 16), epochs=2, verbose=0, shuffle=False)  # 4 batches an epoch
        drawn = batches[:3]  # by index, the first ones
    else:
        # A generator is read once: the last batches it gave fit (8 steps, 8 batches).
        model.fit((b for b in batches), steps_per_epoch=4, epochs=2, verbose=0)
        drawn = batches[-3:]
    assert model.counters()["steps"] == 8
    # No validation data: once, at the end of the fit.
    assert model.counters()["recalibration_batches"] == 3 and not model.statistics_stale
    stats = _statistics(model)
    model.save(tmp_path / "m.keras")
    model.base.save(tmp_path / "base.keras")
    assert model.counters()["recalibration_batches"] == 3  # the same weights: not again
    loaded = keras.models.load_model(tmp_path / "m.keras", custom_objects={"Scripted": Scripted})
    assert_same(stats, batch_norm.moving_statistics(loaded.base) + batch_norm.moving_statistics(loaded.motivated))
    deployed = keras.models.load_model(tmp_path / "base.keras")
    assert_same(stats[: len(batch_norm.moving_statistics(base))], batch_norm.moving_statistics(deployed))
    _assert_recomputed_from(model, stats, drawn, 3)


def test_recomputed_once_at_the_end_of_a_fit_and_before_each_validation(tmp_path):
    model = _model("recalibrated", SCHEDULE, recalibration_batches=2)
    x, y = random_data(128)

    def recomputed():
        return model.counters()["recalibration_batches"] // 2

    class PerEpoch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(recomputed())

    per_epoch = PerEpoch()
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False, callbacks=[per_epoch])
    # Nothing read the statistics between epochs; the end of the fit did.
    assert per_epoch.seen == [0, 0, 0] and recomputed() == 1
    # Reads of the same weights recompute nothing.
    model.evaluate(x[:32], y[:32], verbose=0)
    model.predict(x[:16], verbose=0)
    model.save(tmp_path / "m.keras")
    model.export(tmp_path / "export", verbose=False)
    assert recomputed() == 1
    # The export serves what `call` computes: the base model.
    exported = tf.saved_model.load(str(tmp_path / "export"))
    served = exported.serve(tf.constant(x[:4]))
    np.testing.assert_allclose(served.numpy(), model.base.predict(x[:4], verbose=0), atol=1e-5)
    # With validation data: once before each validation, and not again at the end.
    per_epoch = PerEpoch()
    model.fit(
        x, y, batch_size=16, epochs=3, verbose=0, shuffle=False, validation_data=(x[:32], y[:32]), callbacks=[per_epoch]
    )
    assert per_epoch.seen == [2, 3, 4] and recomputed() == 4
    # Validating every other epoch: before the validation of epoch 2, then at the end.
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_data=(x[:32], y[:32]), validation_freq=2)
    assert recomputed() == 6
    # Training outside fit makes them stale; the next read recomputes them from fit's batches.
    model.train_on_batch(x[:16], y[:16])
    assert model.statistics_stale
    model.predict_on_batch(x[:16])
    assert recomputed() == 7 and not model.statistics_stale
    model.test_on_batch(x[:16], y[:16])
    assert recomputed() == 7


def test_private_and_shared_statistics_are_never_recomputed(tmp_path):
    for option in ("private", "shared"):
        model = _model(option, SCHEDULE)
        x, y = random_data(64)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_data=(x[:16], y[:16]))
        model.save(tmp_path / f"{option}.keras")
        assert model.counters()["recalibration_batches"] == 0, option


def test_a_read_in_the_middle_of_an_epoch_leaves_the_training_as_it_was(deterministic):
    x, y = random_data(256)

    class Reads(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch % 3 == 1:
                self.model.predict_on_batch(x[:16])

    runs = []
    for callbacks in ([], [Reads()]):
        keras.utils.set_random_seed(0)
        model = _model("recalibrated", SCHEDULE, recalibration_batches=2)
        watch = _StatisticsWatch(model)
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False, callbacks=[watch, *callbacks])
        runs.append((model, watch))
    (ref, _), (model, _) = runs
    # Five reads of new weights mid-epoch (no switch back: the schedule goes on), one at the end.
    assert model.counters()["recalibration_batches"] == 2 * 6 and ref.counters()["recalibration_batches"] == 2
    assert {k: v for k, v in model.counters().items() if k != "recalibration_batches"} == {
        k: v for k, v in ref.counters().items() if k != "recalibration_batches"
    }
    for a, b in zip(ref.trainable_variables, model.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # The end of the fit recomputed both from the same batches: the same statistics.
    np.testing.assert_allclose(_flat(_statistics(ref)), _flat(_statistics(model)), rtol=1e-5, atol=1e-6)


def _flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


def test_training_without_fit_keeps_private_statistics_with_one_notice(caplog):
    model = _model("recalibrated", SCHEDULE)
    x, y = random_data(32)
    before = _statistics(model)
    model.train_on_batch(x[:16], y[:16])
    with caplog.at_level(logging.WARNING, logger="keras_motivation"):
        model.predict(x[:16], verbose=0)
        model.train_on_batch(x[16:], y[16:])
        model.predict(x[:16], verbose=0)
    notices = [r.message for r in caplog.records if r.name == "keras_motivation"]
    assert len(notices) == 1 and "recalibrate_statistics" in notices[0], notices
    assert model.counters()["recalibration_batches"] == 0
    assert not all(np.array_equal(a, b) for a, b in zip(before, _statistics(model)))  # its own steps' statistics


def test_loaded_weights_are_recomputed_only_where_training_batches_are_known(tmp_path):
    x, y = random_data(64)
    model = _model("recalibrated", SCHEDULE, recalibration_batches=2)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save_weights(tmp_path / "m.weights.h5")
    assert model.counters()["recalibration_batches"] == 2
    model.load_weights(tmp_path / "m.weights.h5")  # the counters too
    assert model.statistics_stale
    model.evaluate(x[:16], y[:16], verbose=0)
    assert model.counters()["recalibration_batches"] == 4
    # A fresh model knows no training batches: the file's statistics stay, silently.
    other = _model("recalibrated", SCHEDULE, recalibration_batches=2)
    other.load_weights(tmp_path / "m.weights.h5")
    saved = _statistics(other)
    other.evaluate(x[:16], y[:16], verbose=0)
    assert other.counters()["recalibration_batches"] == 2 and not other.statistics_stale
    assert_same(saved, batch_norm.moving_statistics(other.base) + batch_norm.moving_statistics(other.motivated))


def test_recalibrate_reads_every_kind_of_source():
    model = _two_bn_model()
    x = np.random.default_rng(2).normal(1.0, 2.0, (64, 8, 8, 2)).astype("float32")
    reference = batch_norm.recalibrate(model, tf.data.Dataset.from_tensor_slices(x).batch(16), batches=3)
    expected = snapshot(batch_norm.moving_statistics(model))
    sources = {
        "array": x,
        "(x, y)": (x, np.zeros(64)),
        "list of batches": [x[i : i + 16] for i in range(0, 64, 16)],
        "py_dataset": _Batches(x, np.zeros(64), 16),
        "array batches": batch_norm.ArrayBatches(x, 16),
    }
    for name, source in sources.items():
        assert batch_norm.recalibrate(model, source, batches=3, batch_size=16) == reference == 3, name
        for a, v in zip(expected, batch_norm.moving_statistics(model)):
            np.testing.assert_allclose(a, v.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    recent = batch_norm.RecentBatches(max_batches=3)
    assert list(recent.record(iter([(x[i : i + 16], None) for i in range(0, 64, 16)]))) and len(recent) == 3
    batch_norm.recalibrate(model, recent, batches=3)
    from_recent = snapshot(batch_norm.moving_statistics(model))
    batch_norm.recalibrate(model, x[16:], batches=3, batch_size=16)  # the last three batches
    for a, v in zip(from_recent, batch_norm.moving_statistics(model)):
        np.testing.assert_allclose(a, v.numpy(), rtol=1e-5, atol=1e-6)


def test_recent_batches_are_bounded_in_memory():
    batch = np.zeros((16, 8, 8, 2), "float32")  # 8 KiB
    recent = batch_norm.RecentBatches(max_batches=4, max_bytes=3 * batch.nbytes)
    for _ in recent.record(iter([batch.copy() for _ in range(10)])):
        pass
    assert len(recent) == 3 and recent.dropped_for_memory
    one = batch_norm.RecentBatches(max_batches=4, max_bytes=1)
    one.add((batch, None))
    one.add((batch, None))
    assert len(one) == 1  # the last batch, whatever its size
    roomy = batch_norm.RecentBatches(max_batches=4)
    for item in [(batch, None)] * 6:
        roomy.add(item)
    assert len(roomy) == 4 and not roomy.dropped_for_memory
