"""Every rung from one forward pass (engine/evaluation.py): evaluation, prediction and the recomputation of
BatchNorm statistics equal to a pass per rung, on every execution path; and the statistics recomputed only
where training left them stale (engine/statistics.py)."""

import keras
import numpy as np
import pytest
from testing_utils import random_data
from testing_utils import run_json_script
from testing_utils import snapshot
from testing_utils import tiny_pair

import keras_motivation as km
from keras_motivation import batch_norm
from keras_motivation.engine import evaluation
from keras_motivation.engine import statistics
from keras_motivation.models.resnet_cifar import resnet_cifar
from keras_motivation.models.vit import vit

X, Y = random_data(128)


def _model(models=None, condition=None, joint=True, bn_statistics="recalibrated", **compile_kwargs):
    models = models or list(tiny_pair())
    model = km.MotivatedModel(
        models=models,
        weights_map="resnet_depth",
        condition=condition or km.conditions.Growth(epochs=0.5),
        joint=joint,
        bn_statistics=bn_statistics,
        recalibration_batches=3,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        **compile_kwargs,
    )
    return model


def _ladder():
    return [resnet_cifar(depth, num_classes=10, input_shape=X.shape[1:], width=4, stages=1) for depth in (8, 14, 20)]


def _separately(model, monkeypatch, fn):
    """`fn()` with every rung evaluated and predicted on its own pass (as before the one pass)."""
    with monkeypatch.context() as m:
        m.setattr(evaluation, "sharing_rungs", lambda model: frozenset())
        return fn()


def _family_pass(model):
    """What a recomputation of the family runs: the largest model and each smaller rung's tail."""
    return (model.rungs[-1], *(t.model for t in evaluation.family(model).plan.tails))


def _statistics(model):
    return snapshot([v for m in model.rungs for v in batch_norm.moving_statistics(m)])


@pytest.mark.parametrize(
    "path",
    [{}, {"steps_per_execution": 4}, {"jit_compile": True}],
    ids=["one-step", "device-loop", "xla"],
)
def test_one_pass_evaluation_equals_a_pass_per_rung(path, monkeypatch):
    model = _model(**path)
    # One epoch: growth after half of it, then joint steps; the end of the fit recomputes every rung's
    # statistics in one pass of the family (the trunk once), so the trunks hold the same statistics.
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert model.recalibration_passes[-1][1] == _family_pass(model)
    assert evaluation.sharing_rungs(model) == {0}
    one = model.evaluate(X[:64], Y[:64], batch_size=16, verbose=0, return_dict=True)
    assert evaluation.state(model).test_sharing == {0}
    apart = _separately(model, monkeypatch, lambda: model.evaluate(X[:64], Y[:64], batch_size=16, return_dict=True))
    assert evaluation.state(model).test_sharing == frozenset()
    assert set(one) == {"loss", "accuracy", "motivated_loss", "motivated_accuracy"}
    for key in one:
        np.testing.assert_allclose(one[key], apart[key], rtol=1e-6, err_msg=key)
    # Each rung's output from the one pass is its own pass's.
    for shared, own in zip(evaluation.rung_outputs(model, X[:16], {0}), [m(X[:16]) for m in model.rungs]):
        np.testing.assert_allclose(shared, own, rtol=1e-6, atol=1e-6)


def test_a_rung_whose_statistics_differ_takes_its_own_pass(monkeypatch):
    model = _model()
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    stem = model.base.get_layer("stem_bn").moving_mean
    stem.assign(stem + 0.5)
    assert evaluation.sharing_rungs(model) == frozenset()
    own = model.evaluate(X[:64], Y[:64], batch_size=16, verbose=0, return_dict=True)
    base = keras.models.clone_model(model.base)
    base.set_weights(model.base.get_weights())
    base.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    alone = base.evaluate(X[:64], Y[:64], batch_size=16, verbose=0, return_dict=True)
    np.testing.assert_allclose([own["loss"], own["accuracy"]], [alone["loss"], alone["accuracy"]], rtol=1e-6)


def test_predict_every_rung_is_each_rungs_predict(monkeypatch):
    model = _model(models=_ladder())
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert evaluation.sharing_rungs(model) == {0, 1}
    every = model.predict_every_rung(X[:40], batch_size=16, verbose=0)
    assert len(every) == 3
    for rung, out in zip(model.rungs, every):
        np.testing.assert_allclose(out, rung.predict(X[:40], batch_size=16, verbose=0), rtol=1e-6, atol=1e-6)
    # `predict` is the base's, as before.
    np.testing.assert_array_equal(model.predict(X[:40], batch_size=16, verbose=0), every[0])
    apart = _separately(model, monkeypatch, lambda: model.predict_every_rung(X[:40], batch_size=16, verbose=0))
    for a, b in zip(every, apart):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_the_family_recomputes_every_rungs_statistics_as_a_pass_per_rung_would():
    model = _model(models=_ladder())
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    batches = [(X[i : i + 16],) for i in range(0, 48, 16)]
    assert model.recalibrate_statistics(batches) == 3
    assert model.recalibration_passes[-1][1] == _family_pass(model)
    family = _statistics(model)
    for m in model.rungs:
        batch_norm.recalibrate(m, batches, 3)
    for a, b in zip(family, _statistics(model)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_after_growth_the_statistics_are_recomputed_once_then_joint_steps_keep_them():
    model = _model()
    model.fit(X, Y, batch_size=16, epochs=3, verbose=0, shuffle=False, validation_data=(X[:32], Y[:32]))
    # The first validation found both stale (the base's first statistics and growth's copy into the motivated
    # model); from then on every step updated both models' statistics.
    assert model.counters()["recalibration_batches"] == 3
    assert [step for _, _, step in model.recalibration_passes] == [8]
    assert not model.statistics_stale
    # The joint step kept the trunks' statistics the same: evaluation takes one pass.
    assert evaluation.state(model).test_sharing == {0}
    # The paper's alternation moves each model's weights without its own pass: every read recomputes.
    paper = _model(condition=km.conditions.ConsecutiveDecrease(1), joint=None)
    paper.fit(X, Y, batch_size=16, epochs=3, verbose=0, shuffle=False, validation_data=(X[:32], Y[:32]))
    assert paper.counters()["recalibration_batches"] == 3 * 3


def test_statistics_updated_on_every_step_since_the_first_are_fresh_once_the_start_weighs_little():
    def fit(steps):
        # Growth at 0: joint steps from the first, each updating both models' statistics.
        model = _model(condition=km.conditions.Growth(epochs=0))
        for layer in [layer for m in model.rungs for layer in batch_norm.batch_norm_layers(m)]:
            layer.momentum = 0.5
        x, y = random_data(16 * steps)
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
        return model

    # The first statistics weigh 0.5 ** 8 after 8 joint steps (stale: recomputed at the end of the fit) and
    # 0.5 ** 16 after 16 (below STALE_WEIGHT: the statistics the steps left are read as they are).
    assert 0.5**8 > statistics.STALE_WEIGHT > 0.5**16
    assert fit(8).counters()["recalibration_batches"] == 3
    fresh = fit(16)
    assert fresh.counters()["recalibration_batches"] == 0 and not fresh.statistics_stale


def test_loaded_statistics_are_all_recomputed(tmp_path):
    model = _model(condition=km.conditions.Always())
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    before = model.counters()["recalibration_batches"]
    model.save_weights(tmp_path / "m.weights.h5")
    model.load_weights(tmp_path / "m.weights.h5")
    model.evaluate(X[:16], Y[:16], verbose=0)
    assert model.counters()["recalibration_batches"] == before + 3
    assert model.recalibration_passes[-1][1] in (_family_pass(model), tuple(model.rungs))


# Slow (a 2-replica subprocess, about 20 s): the one pass on one device is
# test_one_pass_evaluation_equals_a_pass_per_rung on every path; MirroredStrategy's evaluation is
# test_mirrored_strategy.py's.
@pytest.mark.slow
def test_mirrored_one_pass_evaluation_equals_a_pass_per_rung():
    r = run_json_script("mirrored_evaluation_run.py")
    assert r["replicas"] == 2 and r["sharing"] == [0]
    for key, value in r["one_pass"].items():
        np.testing.assert_allclose(value, r["apart"][key], rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(r["family_statistics"], r["per_rung_statistics"], rtol=1e-5, atol=1e-6)


def test_no_family_without_a_shared_trunk():
    base = vit("tiny", num_classes=10, input_shape=(16, 16, 3), patch_size=8, depth=2)
    motivated = vit("small", num_classes=10, input_shape=(16, 16, 3), patch_size=8, depth=2)
    model = km.MotivatedModel(base, motivated, "width", km.conditions.Always())
    assert evaluation.family(model) is None and evaluation.sharing_rungs(model) == frozenset()
    images = np.zeros((2, 16, 16, 3), "float32")
    for out, rung in zip(evaluation.rung_outputs(model, images, frozenset()), model.rungs):
        np.testing.assert_array_equal(out, rung(images, training=False))
