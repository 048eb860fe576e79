"""Ladders: three nested models in one run (ResNet-8 ⊂ ResNet-14 ⊂ ResNet-20, one stage, width 4)."""

import keras
import numpy as np
import pytest
from testing_utils import SHAPE
from testing_utils import random_data
from testing_utils import replay_ladder

import keras_motivation as km
from keras_motivation import conditions
from keras_motivation.models.resnet_cifar import resnet_cifar


def ladder_models(depths=(8, 14, 20)):
    return [resnet_cifar(d, num_classes=10, input_shape=SHAPE, width=4, stages=1) for d in depths]


def tiny_ladder(condition=None, joint=None, steps_per_execution=1, jit_compile=False, bn_statistics="private"):
    keras.utils.set_random_seed(0)
    model = km.MotivatedModel(
        models=ladder_models(),
        weights_map="resnet_depth",
        condition=condition or conditions.ConsecutiveDecrease(1),
        bn_statistics=bn_statistics,
        joint=joint,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


class RungRecorder(keras.callbacks.Callback):
    """Per batch: the raw loss and the rung that trained it; per epoch, the batches' count."""

    def __init__(self):
        super().__init__()
        self.losses, self.rungs, self.epoch_lengths = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_lengths.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["batch_loss"]))
        self.rungs.append(int(round(float(logs["motivated"]))))
        self.epoch_lengths[-1] += 1


def _fit(model, n=192, batch=16, epochs=2):
    x, y = random_data(n)
    recorder = RungRecorder()
    history = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False, callbacks=[recorder])
    return recorder, history


def test_a_ladder_has_its_rungs_maps_and_optimizers():
    model = tiny_ladder()
    assert [m.name for m in model.rungs] == ["resnet8_stages1", "resnet14_stages1", "resnet20_stages1"]
    assert model.base is model.rungs[0] and model.motivated is model.rungs[2] and model.rung1 is model.rungs[1]
    assert len(model.weights_maps) == 2 and model.weights_maps[1].base is model.rung1
    assert len({id(o) for o in model.optimizers}) == 3
    assert model.modes == (0, 1, 2)


@pytest.mark.parametrize("path", [{}, {"jit_compile": True}], ids=["one-step", "xla"])
def test_the_ladders_modes_are_the_written_rule(path):
    model = tiny_ladder(**path)
    recorder, history = _fit(model)
    assert recorder.rungs == replay_ladder(recorder.losses, recorder.epoch_lengths, k=1, rungs=3)
    assert {0, 1, 2} <= set(recorder.rungs), "every rung trained"
    counters = model.counters()
    assert counters["rung_steps"] == [recorder.rungs.count(r) for r in range(3)]
    assert counters["motivated_steps"] == recorder.rungs.count(2)
    # Each model's loss is logged under its own name; every epoch ends on the base.
    assert {"loss", "rung1_loss", "motivated_loss"} <= set(history.history)
    assert model.mode == 0


def test_the_device_loop_runs_the_one_step_ladder(deterministic):
    """Several steps per call (where callbacks see each call's last step) give the one-step run."""
    results = []
    for spe in (1, 3):
        model = tiny_ladder(steps_per_execution=spe)
        _fit(model)
        results.append((model.counters(), [v.numpy() for m in model.rungs for v in m.weights]))
    assert results[0][0] == results[1][0] and results[0][0]["switches"] > 2
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_switch_that_skips_a_rung_copies_through_the_one_between():
    model = tiny_ladder(bn_statistics="shared")
    for v in model.base.weights:
        v.assign(np.random.default_rng(1).standard_normal(v.shape).astype(v.dtype))
    model._switch_ops(0, 2)
    # The base's weights are in the largest model, through the middle one.
    for e0 in model.weights_maps[0].entries:
        e1 = next(e for e in model.weights_maps[1].entries if e.base is e0.motivated)
        block = tuple(slice(s, s + n) for s, n in zip(e1.start, e1.base.shape))
        inner = tuple(slice(s, s + n) for s, n in zip(e0.start, e0.base.shape))
        np.testing.assert_array_equal(e1.motivated.numpy()[block][inner], e0.base.numpy(), err_msg=e0.base.path)
    assert model.mode == 2 and model.counters()["activations"] == 1
    model.switch_to_base()
    assert model.mode == 0 and model.counters()["switches"] == 2


def test_growth_joins_each_rung_at_its_point_and_the_joint_step_trains_every_joined_rung():
    # 12 steps an epoch: the middle rung joins at step 3, the largest at step 9.
    model = tiny_ladder(conditions.Growth(epochs=[0.25, 0.75]), joint=True)
    before = [v.numpy() for v in model.base.trainable_variables]
    recorder, history = _fit(model, epochs=1)
    assert recorder.rungs == [0] * 3 + [1] * 6 + [2] * 3
    assert model.counters()["rung_steps"] == [3, 6, 3]
    # The joint steps trained the base too (its slices, copied back at the epoch's end).
    assert all(not np.array_equal(a, v.numpy()) for a, v in zip(before, model.base.trainable_variables))
    assert history.history["loss"][0] > 0 and history.history["rung1_loss"][0] > 0


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_always_trains_the_largest_rung_on_every_batch(steps_per_execution):
    model = tiny_ladder(conditions.Always(), joint=True, steps_per_execution=steps_per_execution)
    _fit(model, n=64, epochs=1)
    assert model.counters()["rung_steps"] == [0, 0, 4] and model.mode == 0


def _papers_rule(losses, k):
    """The paper's rule as the paper writes it, for a pair: the motivated model trains the next batch once the raw
    loss has decreased k times in a row (the streak never reset)."""
    modes, previous, streak = [], float("inf"), 0
    for loss in losses:
        streak = streak + 1 if loss < previous else 0
        previous = loss
        modes.append(int(streak >= k))
    return modes


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_paper_rule_through_a_pair_is_unchanged_by_ladders(k):
    """Over a pair the generalised rule, min(streak // k, 1), is the paper's: the same verdict after every loss of
    a sequence with streaks of every length, answered as rung 0 or 1."""
    losses = [5, 4, 3, 3.5, 3, 2, 1, 0.5, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.7, 0.6, 0.8]
    condition = conditions.ConsecutiveDecrease(k)
    condition.set_rungs(2)
    verdicts = [int(condition.update(loss, 0)) for loss in losses]
    assert verdicts == _papers_rule(losses, k)
    assert 0 < sum(verdicts) < len(verdicts), "both verdicts occur"


def test_a_pair_fit_follows_the_papers_rule_through_the_engine():
    """The pair's motivated batches in a fit are the paper's rule replayed over the logged losses (every epoch
    starts on the base)."""
    import testing_utils

    keras.utils.set_random_seed(0)
    base, motivated = ladder_models((8, 14))
    model = km.MotivatedModel(
        base, motivated, "resnet_depth", conditions.ConsecutiveDecrease(1), bn_statistics="private"
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    recorder, _ = _fit(model, epochs=1)
    expected = [0] + _papers_rule(recorder.losses, 1)[:-1]  # each batch's mode is the previous verdict
    assert recorder.rungs == expected and 0 < sum(expected) < len(expected)
    assert expected == testing_utils.replay_ladder(recorder.losses, recorder.epoch_lengths, k=1, rungs=2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: km.MotivatedModel(models=ladder_models(), condition=conditions.RandomShare(0.5)), "drives a pair"),
        (lambda: km.MotivatedModel(models=ladder_models(), condition=conditions.Growth([0.5])), "or 2"),
        (lambda: km.MotivatedModel(models=ladder_models(), weights_map=["resnet_depth"]), "needs 2 weights maps"),
        (lambda: km.MotivatedModel(models=ladder_models()[:1]), "at least two models"),
    ],
)
def test_bad_ladders_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_ladder_saves_and_loads_its_state_and_trains_on(tmp_path):
    model = tiny_ladder()
    _fit(model, epochs=1)
    path = str(tmp_path / "ladder.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert len(loaded.rungs) == 3 and loaded.counters() == model.counters()
    x, _ = random_data(8, seed=3)
    for a, b in zip(model.rungs, loaded.rungs):
        np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), atol=1e-6)
    for a, b in zip(model.optimizers, loaded.optimizers):
        assert int(a.iterations.numpy()) == int(b.iterations.numpy())
    _fit(loaded, epochs=1)
    assert loaded.counters()["steps"] == 2 * model.counters()["steps"]


@pytest.mark.parametrize("mode", ["keras", "weights"])
def test_a_ladder_stopped_after_an_epoch_resumes_to_the_same_run(tmp_path, mode, deterministic):
    """Saved after its first epoch and loaded into a new process's model, a ladder goes on as if never stopped."""
    full = tiny_ladder()
    full_rec, _ = _fit(full, epochs=2)
    first = tiny_ladder()
    first_rec, _ = _fit(first, epochs=1)
    if mode == "keras":
        first.save(str(tmp_path / "l.keras"))
        again = keras.models.load_model(str(tmp_path / "l.keras"))
    else:
        first.save_weights(str(tmp_path / "l.weights.h5"))
        again = tiny_ladder()
        again.load_weights(str(tmp_path / "l.weights.h5"))
    x, y = random_data(192)
    rest = RungRecorder()
    again.fit(x, y, batch_size=16, epochs=2, initial_epoch=1, verbose=0, shuffle=False, callbacks=[rest])
    assert first_rec.rungs + rest.rungs == full_rec.rungs and len(set(full_rec.rungs)) == 3
    np.testing.assert_allclose(first_rec.losses + rest.losses, full_rec.losses, rtol=1e-5)
    counts = [m.counters() for m in (full, again)]
    for c in counts:
        c.pop("recalibration_batches")
    assert counts[0] == counts[1]
    for a, b in zip(full.motivated.weights, again.motivated.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_one_trace_per_fit_over_three_modes(steps_per_execution, monkeypatch):
    from keras_motivation.engine import train_function

    model = tiny_ladder(steps_per_execution=steps_per_execution)
    traces = []
    owner, name = (model, "train_step") if steps_per_execution == 1 else (train_function, "device_loop")
    original = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda *a, **k: traces.append(1) or original(*a, **k))
    recorder, _ = _fit(model)
    assert len(set(recorder.rungs)) == 3 and len(traces) == 1


@pytest.mark.slow  # two subprocess runs on 2 logical CPU devices, about a minute each
@pytest.mark.parametrize("growth", [False, True], ids=["paper", "growth"])
def test_a_ladder_under_mirrored_strategy_takes_the_single_device_modes(growth):
    """Under the paper's rule every rung trains; under growth with one join point (its train function holds the
    base's and the largest rung's steps only) the base, then the largest rung with a joint step."""
    from testing_utils import run_json_script

    env = {"LADDER": "1", **({"LADDER_GROWTH": "1", "JOINT": "1"} if growth else {})}
    r = run_json_script("mirrored_run.py", env=env)
    assert r["replicas"] == 2 and r["flags_mirrored"] == r["flags_single"]
    assert set(r["flags_single"]) == ({0, 2} if growth else {0, 1, 2})
    assert r["counters_mirrored"] == r["counters_single"]
    np.testing.assert_allclose(r["losses_mirrored"], r["losses_single"], rtol=1e-3)


class _GrowthOverEveryRung(conditions.Growth):
    """Growth whose train function traces every rung's step, as before `reachable_modes`."""

    def reachable_modes(self):
        return tuple(range(self.rungs))


@pytest.mark.parametrize(
    "path",
    [
        {},
        {"steps_per_execution": 4},
        {"jit_compile": True},
        # Slow (about 16 s): XLA and the device loop are each covered by the cases above.
        pytest.param({"steps_per_execution": 4, "jit_compile": True}, marks=pytest.mark.slow),
    ],
    ids=["one-step", "device-loop", "xla", "xla-device-loop"],
)
def test_growth_with_one_join_point_traces_the_base_and_the_largest_only_and_trains_the_same(path):
    """The rungs between never train under one join point: the train function holds no step of theirs, and the
    run is what it was with every rung's step traced (the same weights, exactly)."""
    models = {}
    for name, condition in (("two", conditions.Growth(epochs=0.5)), ("every", _GrowthOverEveryRung(epochs=0.5))):
        model = tiny_ladder(condition, joint=True, **path)
        _fit(model, n=64, epochs=2)
        models[name] = model
    assert models["two"].modes == (0, 2) and models["every"].modes == (0, 1, 2)
    assert models["two"].counters() == models["every"].counters()
    assert models["two"].counters()["rung_steps"][1] == 0
    for a, b in zip(models["two"].weights, models["every"].weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
