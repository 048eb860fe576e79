"""Conditions against independent pure-Python versions of their rules; controls."""

import inspect
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from testing_utils import BatchRecorder
from testing_utils import random_data
from testing_utils import tiny_model
from testing_utils import tiny_pair

import keras_motivation as km
from keras_motivation import conditions
from keras_motivation import run_model

NAN = float("nan")


def drive(condition, values, signal=None, epoch_every=None):
    """Feeds `values` to update() one by one (eagerly), as a pair's rungs; returns the flags (rung 1)."""
    flags, mode = [], 0
    for i, v in enumerate(values):
        if epoch_every and i % epoch_every == 0:
            condition.on_epoch_begin(i // epoch_every, epoch_every)  # must not reset a streak
        signals = {signal: tf.constant(v, tf.float32)} if signal else None
        mode = int(condition.update(tf.constant(0.0 if signal else v, tf.float32), tf.constant(mode), signals))
        assert mode in (0, 1)
        flags.append(bool(mode))
    return flags


def streak_rule(values, k, decreased, start=float("inf")):
    """Algorithm 1's streak over `values`; the first comparison is with `start`."""
    flags, prev, streak = [], start, 0
    for v in values:
        streak = streak + 1 if decreased(v, prev) else 0
        flags.append(streak >= k)
        prev = v
    return flags


SEQUENCE = [5, 4, 3, 3.5, 3, 2, 1, NAN, 0.5, 0.4, 0.3, 0.2, 0.25, 0.1, 0.05, NAN, NAN, 2, 1, 0.5]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_consecutive_decrease(k):
    def decreased(v, prev):
        return v < prev  # NaN compares false

    expected = streak_rule(SEQUENCE, k, decreased)
    assert drive(conditions.ConsecutiveDecrease(k), SEQUENCE, epoch_every=4) == expected
    assert any(expected)


def test_ema_decrease():
    alpha, drop, k = 0.5, 0.01, 2
    values = [4.0, 3.0, 2.9, 2.95, 2.0, 1.0, NAN, 0.9, 0.95, 0.96, 0.5, 0.4]
    flags, ema, streak = [], None, 0
    for v in values:
        if math.isnan(v):
            streak = 0
        else:
            new = v if ema is None else alpha * v + (1 - alpha) * ema
            streak = streak + 1 if ema is not None and new <= ema * (1 - drop) else 0
            ema = new
        flags.append(streak >= k)
    assert drive(conditions.EmaDecrease(k, alpha=alpha, min_drop=drop), values, epoch_every=5) == flags
    assert any(flags)


def test_gradient_norm_slope():
    norms = [1.0, 2.0, 3.0, 2.5, 2.6, 2.7, 2.8, 1.0, NAN, 1.0, 2.0]

    expected = streak_rule(norms, 2, lambda v, prev: v > prev, start=-float("inf"))
    assert drive(conditions.GradientNormSlope(2), norms, signal="gradient_norm") == expected
    assert any(expected)


def test_validation_batch_uses_its_own_loss():
    x = np.zeros((4, 8, 8, 1), "float32")
    y = np.zeros((4,), "int32")
    values = [3.0, 2.0, 1.0, 1.5, 1.0, 0.5, 0.2]
    expected = streak_rule(values, 2, lambda v, p: v < p)
    assert drive(conditions.ValidationBatch(2, x=x, y=y), values, signal="validation_loss") == expected


def test_validation_batch_and_slope_run_inside_fit():
    """Their signals are computed inside the compiled step and drive it: the last one is stored (a held-out loss
    > 0, a negated gradient norm < 0), and both models trained."""
    x, y = random_data(64)
    for condition, sign in (
        (conditions.ValidationBatch(1, x=x[:8], y=y[:8], y_dtype="int64"), 1),
        (conditions.GradientNormSlope(1), -1),
    ):
        model = tiny_model(condition)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        counters = model.counters()
        assert counters["steps"] == 8 and 0 < counters["motivated_steps"] < 8, type(condition).__name__
        last = float(condition.previous_loss.numpy())
        assert math.isfinite(last) and sign * last > 0, (type(condition).__name__, last)


def test_never_and_always():
    assert drive(conditions.Never(), [3, 2, 1, 0.5]) == [False] * 4
    assert drive(conditions.Always(), [3, 4, 5]) == [True] * 3
    assert bool(conditions.Always().select(tf.constant(False)))


def _plain_and_motivated(condition, which):
    """Trains `which` model plainly and through MotivatedModel from the same weights."""
    x, y = random_data(96)
    base, motivated = tiny_pair()
    # Plain Keras keeps BatchNorm running averages: the private option. (The
    # default recalibrated one trains the same weights and recomputes the
    # statistics: tests/test_batch_norm.py.)
    model = km.MotivatedModel(base, motivated, "resnet_depth", condition, bn_statistics="private")
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    ours = getattr(model, which)
    # Y-C through the engine starts where its first switch puts it: the
    # base's weights in the mapped slices, its own in the differential parts.
    model.weights_map.copy_to_motivated()
    plain = keras.models.clone_model(ours)
    plain.set_weights(ours.get_weights())
    plain.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    plain.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    return plain, ours


def test_never_reproduces_plain_fit_of_the_base(deterministic):
    plain, ours = _plain_and_motivated(conditions.Never(), "base")
    for a, b in zip(plain.weights, ours.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_always_reproduces_plain_fit_of_the_motivated_model(deterministic):
    plain, ours = _plain_and_motivated(conditions.Always(), "motivated")
    for a, b in zip(plain.weights, ours.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def _fit_flags(condition, epochs=3):
    """The per-batch flags and per-epoch logs of a fit of 10 batches an epoch."""
    x, y = random_data(160)
    rec = BatchRecorder()
    tiny_model(condition).fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=[rec])
    return rec


def _drawn(seed, epochs, count):
    """Pure-Python draw of MatchedRandom & co: epoch e's batches from seed + e;
    count(rng) is how many of the 10."""
    flags = []
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        chosen = np.zeros(10, bool)
        chosen[rng.choice(10, count(rng), replace=False)] = True
        flags += list(chosen)
    return flags


def test_matched_random_activates_exactly_n_per_epoch_and_is_seeded():
    # The flags equal the draw from this seed (so a rerun gives the same and
    # another seed another: the draw of seed 8 differs).
    a = _fit_flags(conditions.MatchedRandom(3, seed=7))
    assert [logs["motivated_steps"] for _, logs in a.epochs] == [3, 3, 3]
    assert a.flags == _drawn(7, 3, lambda rng: 3)
    assert _drawn(8, 3, lambda rng: 3) != a.flags
    # RandomActivation draws each epoch's count too (counts 5, 5, 7 for seed 1).
    r = _fit_flags(conditions.RandomActivation(seed=1))
    assert r.flags == _drawn(1, 3, lambda rng: int(rng.integers(0, 11)))
    assert len({logs["motivated_steps"] for _, logs in r.epochs}) >= 2, "the count must differ between epochs"


def test_random_share_follows_its_schedule_exactly():
    """Batch b of epoch e is motivated iff the seeded draw u(seed, e)[b] < share[e]
    (pure-Python rule), shares past the schedule's end repeat its last value."""
    rec = _fit_flags(conditions.RandomShare([0.25, 0.75], seed=5))
    expected = []
    for epoch, share in enumerate([0.25, 0.75, 0.75]):
        expected += list(np.random.default_rng([5, epoch]).random(10) < share)
    assert rec.flags == expected
    assert 0 < sum(expected[:10]) < sum(expected[10:20]), "the schedule must differ between epochs"
    assert [logs["motivated_steps"] for _, logs in rec.epochs] == [sum(expected[i : i + 10]) for i in (0, 10, 20)]


@pytest.mark.parametrize(
    "make",
    [lambda: conditions.MatchedRandom(4, seed=3), lambda: conditions.RandomShare(0.5, seed=3)],
    ids=["MatchedRandom", "RandomShare"],
)
def test_random_schedules_resume_mid_epoch_where_they_stopped(make):
    def steps(condition, n):
        flags = []
        for _ in range(n):
            flags.append(bool(condition.select(tf.constant(False))))
            condition.update(tf.constant(0.0), tf.constant(flags[-1]))
        return flags

    uninterrupted = make()
    uninterrupted.on_epoch_begin(0, 10)
    expected = steps(uninterrupted, 10)
    uninterrupted.on_epoch_begin(1, 10)
    expected += steps(uninterrupted, 10)
    # Killed after 4 steps, resumed from a backup of its state: the trainer
    # finishes the epoch with a fit of the 6 remaining steps.
    first = make()
    first.on_epoch_begin(0, 10)
    flags = steps(first, 4)
    resumed = make()
    for a, b in zip(resumed.weights, first.weights):
        a.assign(b.numpy())
    resumed.on_epoch_begin(0, 6)
    flags += steps(resumed, 6)
    resumed.on_epoch_begin(1, 10)
    flags += steps(resumed, 10)
    assert flags == expected
    assert any(expected) and not all(expected)


def test_growth_trains_the_base_alone_then_the_motivated_model_on_every_batch():
    """Growth(0.45) over 10 batches an epoch: the base for batches 0-3 (round(4.5) = 4, half to even), the
    motivated model from batch 4 on; every epoch starts on the base, so epochs 2-3 switch in at their first batch."""
    rec = _fit_flags(conditions.Growth(0.45))
    assert rec.flags == [False] * 4 + [True] * 26
    assert [logs["switches"] for _, logs in rec.epochs] == [2, 2, 2]
    with pytest.raises(ValueError, match="epochs >= 0"):
        conditions.Growth(-1)


def test_growth_keeps_its_growth_step_when_resumed_with_a_shorter_epoch():
    first = conditions.Growth(1.5)
    first.on_epoch_begin(0, 10)
    for _ in range(12):
        first.update(tf.constant(0.0), first.select(tf.constant(False)))
    resumed = conditions.Growth(1.5)
    for a, b in zip(resumed.weights, first.weights):
        a.assign(b.numpy())
    resumed.on_epoch_begin(1, 8)  # the rest of epoch 1 after a backup at step 12
    assert not bool(resumed.select(tf.constant(False)))
    for _ in range(3):
        resumed.update(tf.constant(0.0), tf.constant(False))
    assert bool(resumed.select(tf.constant(False)))  # step 15 = 1.5 epochs of 10


def test_random_share_zero_and_one_are_never_and_always():
    for share, expected in ((0.0, False), (1.0, True)):
        condition = conditions.RandomShare(share, seed=1)
        for epoch in range(2):
            condition.on_epoch_begin(epoch, 6)
            for _ in range(6):
                assert bool(condition.select(tf.constant(not expected))) is expected
                condition.update(tf.constant(0.0), tf.constant(expected))
    with pytest.raises(ValueError, match="share in"):
        conditions.RandomShare(1.5)
    assert conditions.get("random_share:share=[0.2,0.5,0.8],seed=3").share == [0.2, 0.5, 0.8]


@pytest.mark.parametrize("k", [2, 3])
def test_iid_losses_give_the_noise_rate(k):
    """For i.i.d. losses the next batch is motivated when the last k+1 losses
    fell strictly: probability 1/(k+1)!. The share of motivated steps is that
    rate (an activation start, the trigger, is rarer: 1/(k+1)! - 1/(k+2)!)."""
    n = 60_000
    losses = tf.constant(np.random.default_rng(k).random(n), tf.float32)
    condition = conditions.ConsecutiveDecrease(k)

    @tf.function
    def run():
        modes = tf.TensorArray(tf.int32, size=n)
        for i in tf.range(n):
            modes = modes.write(i, condition.update(losses[i], tf.constant(0)))
        return modes.stack()

    modes = run().numpy()
    assert set(modes) == {0, 1}, "a pair's rule answers rung 0 or 1"
    flags = modes.astype(bool)
    # The compiled rule agrees with the pure-Python one on a prefix ...
    prefix = losses.numpy()[:2000]
    assert list(flags[:2000]) == streak_rule(prefix, k, lambda v, p: v < p)
    # ... and its motivated share is the noise rate within 5 standard errors
    # (streaks make steps dependent: the error is inflated by a factor 2).
    rate, p = flags.mean(), 1 / math.factorial(k + 1)
    assert abs(rate - p) < 5 * 2 * math.sqrt(p * (1 - p) / n), (rate, p)


def test_specs_and_invalid_parameters():
    assert isinstance(conditions.get("ema:k=3,alpha=0.1"), conditions.EmaDecrease)
    assert conditions.get("matched_random:per_epoch=4,seed=2").per_epoch == 4
    with pytest.raises(ValueError, match="Unknown condition 'bogus'"):
        conditions.get("bogus")
    with pytest.raises(ValueError, match="alpha"):
        conditions.EmaDecrease(2, alpha=0)
    with pytest.raises(ValueError, match="per_epoch"):
        conditions.MatchedRandom(-1)
    with pytest.raises(ValueError, match="held-out batch"):
        conditions.ValidationBatch(2)


@pytest.mark.parametrize(
    "condition",
    [
        conditions.EmaDecrease(3, alpha=0.1),
        conditions.GradientNormSlope(2),
        conditions.MatchedRandom(2, seed=3),
        conditions.RandomActivation(seed=4, max_per_epoch=5),
        conditions.RandomShare([0.1, 0.9], seed=2),
        conditions.Never(),
        conditions.Always(),
        conditions.Growth(0.5),
    ],
    ids=lambda c: type(c).__name__,
)
def test_conditions_round_trip_through_keras_saving(condition, tmp_path):
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(condition))
    assert type(clone) is type(condition) and clone.get_config() == condition.get_config()
    base, motivated = tiny_pair()
    model = km.MotivatedModel(base, motivated, "resnet_depth", condition)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    # Two steps driven eagerly move the state off its initial values (a fit
    # would too, at the cost of tracing the train step).
    condition.on_epoch_begin(0, 2)
    for loss in (3.0, 2.0):
        motivated = condition.select(tf.constant(False))
        condition.update(tf.constant(loss), motivated, {"gradient_norm": tf.constant(loss)})
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    for a, b in zip(model.condition.weights, loaded.condition.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# -- what the conditions say about themselves: the registry, from_flag, the flag help ---------------------


def _condition_classes():
    """Every condition class defined in the keras_motivation.conditions package (not the tests' own)."""
    found, todo = [], [conditions.Condition]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith(conditions.__name__ + "."):
                found.append(sub)
    return found


HELDOUT = (np.zeros((2, 4, 4, 1), np.float32), np.zeros((2,), np.int32))


def test_every_condition_class_is_registered_and_describes_itself():
    classes = _condition_classes()
    assert len(classes) == len(conditions.BY_NAME) == 10
    for cls in classes:
        # Each sets its own facts: a subclass that inherited its parent's flag or label would be named as it.
        for fact in ("flag", "flag_help", "label"):
            assert fact in vars(cls), f"{cls.__name__} does not set {fact}"
        assert conditions.BY_NAME[cls.flag] is cls, cls.__name__
        assert cls.flag_help and cls.label
        assert all(text for text in cls.parameters.values()), cls.__name__
        assert ("k" in cls.parameters) == cls.takes_k, cls.__name__
        assert ("seed" in cls.parameters) == cls.takes_seed, cls.__name__
    assert [cls.flag for cls in classes if cls.takes_heldout] == ["valloss"]
    assert [cls.flag for cls in classes if cls.noise_level] == ["consecutive"]
    assert sorted(cls.flag for cls in classes if cls.classical) == ["always", "never"]


@pytest.mark.parametrize("name", list(conditions.BY_NAME))
def test_from_flag_builds_every_condition_with_the_runs_k_seed_and_heldout_batch(name):
    cls = conditions.BY_NAME[name]
    condition = conditions.from_flag(name, k=4, seed=7, heldout=HELDOUT)
    assert type(condition) is cls
    assert conditions.ConditionSpec.parse(f"{name}:x=1").condition_class is cls
    assert conditions.ConditionSpec.parse(name).takes_heldout == cls.takes_heldout
    if cls.takes_k:
        assert condition.k == 4
        # The spec's own k wins over the run's.
        assert conditions.from_flag(f"{name}:k=5", k=4, seed=7, heldout=HELDOUT).k == 5
    if cls.takes_seed:
        assert condition.seed == 7
        assert conditions.from_flag(f"{name}:seed=1", k=4, seed=7).seed == 1
    # Every argument the flag help names is one the spec takes.
    assert set(cls.parameters) <= set(inspect.signature(cls.__init__).parameters), name


def test_from_flag_reads_a_list_argument_and_several_arguments():
    share = conditions.from_flag("random_share:share=[0.2,0.5],seed=3", k=2, seed=0)
    assert share.share == [0.2, 0.5] and share.seed == 3
    ema = conditions.from_flag("ema:alpha=0.1,min_drop=0.01", k=2)
    assert (ema.k, ema.alpha, ema.min_drop) == (2, 0.1, 0.01)
    assert conditions.from_flag("matched_random:per_epoch=5").per_epoch == 5


@pytest.mark.parametrize(
    "spec, heldout, message",
    [
        ("bogus", None, "Unknown condition 'bogus': use one of consecutive, ema"),
        ("never:k=3", None, "Condition 'never' has no argument 'k': it takes none."),
        ("random_share:shar=0.5", None, "Condition 'random_share' has no argument 'shar': it takes share, seed."),
        ("ema:alpha", None, "Condition arguments are key=value, got 'alpha' in 'ema:alpha'."),
        ("consecutive:k=two", None, "Condition argument k= must be a Python literal, got 'two'"),
        ("consecutive:k=0", None, "ConsecutiveDecrease needs an integer k >= 1, got k=0."),
        ("random_share:share=2", None, "RandomShare needs a share in [0, 1]"),
        ("valloss", None, "Condition 'valloss' needs the held-out batch (x, y)."),
    ],
)
def test_a_bad_flag_spec_is_a_one_line_error_naming_the_problem(spec, heldout, message):
    with pytest.raises(ValueError) as caught:
        conditions.from_flag(spec, k=2, seed=0, heldout=heldout)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text, text


def test_flag_help_names_every_condition_and_argument():
    text = conditions.flag_help()
    for name, cls in conditions.BY_NAME.items():
        assert f"{name}: {cls.flag_help}" in text, name
        for key, help_text in cls.parameters.items():
            assert f"{key}: {help_text}" in text, (name, key)


@pytest.mark.parametrize(
    "spec, label",
    [
        ("never", "X-C"),
        ("always", "Y-C"),
        ("consecutive", "X-Y k=3"),
        ("consecutive:k=5", "X-Y k=3"),  # the run's --k, as the reports always named it
        ("ema", "X-Y ema"),
        ("slope", "X-Y slope"),
        ("valloss", "X-Y valloss"),
        ("random", "ExpA"),
        ("matched_random:per_epoch=5", "ExpB 5/epoch"),
        ("matched_random", "ExpB ?/epoch"),
        ("random_share", "X-Y share 0.5"),
        ("random_share:share=[0.2,0.5,0.8],seed=1", "X-Y share 0.2→0.5→0.8"),
        ("growth:epochs=0.45", "X-Y growth after 0.45 ep"),
    ],
)
def test_report_labels(spec, label):
    parsed = conditions.ConditionSpec.parse(spec)
    assert conditions.BY_NAME[parsed.name].report_label(parsed.arguments, 3) == label


def test_the_trainer_builds_its_condition_from_the_flag():
    from keras_motivation.config import ConfigError
    from keras_motivation.config import TrainConfig

    condition = run_model.make_condition(TrainConfig(condition="random_share:share=[0.2,0.5]", k=2, seed=7))
    assert isinstance(condition, conditions.RandomShare) and condition.seed == 7
    assert run_model.make_condition(TrainConfig(condition="ema", k=5)).k == 5
    valloss = run_model.make_condition(TrainConfig(condition="valloss", k=4), HELDOUT)
    assert valloss.k == 4 and tuple(valloss.x.shape) == HELDOUT[0].shape
    with pytest.raises(ConfigError, match=r"^--condition=never:k=3: Condition 'never' has no argument 'k'"):
        run_model.make_condition(TrainConfig(condition="never:k=3"))


def test_a_spec_is_parsed_once_into_its_name_and_arguments_as_written():
    spec = conditions.ConditionSpec.parse("random_share:share=[0.2,0.5],seed=1")
    assert spec == conditions.ConditionSpec("random_share", {"share": "[0.2,0.5]", "seed": "1"})
    assert str(spec) == "random_share:share=[0.2,0.5],seed=1" and spec.values() == {"share": [0.2, 0.5], "seed": 1}
    assert conditions.ConditionSpec.parse("growth") == conditions.ConditionSpec("growth", {})
    assert conditions.ConditionSpec.parse("valloss").takes_heldout
    assert not conditions.ConditionSpec.parse("bogus").takes_heldout  # check() names the problem
    with pytest.raises(ValueError, match="^Unknown condition 'bogus'"):
        conditions.ConditionSpec.parse("bogus").check()
    assert conditions.ConditionSpec.parse("ema:k=3").build(k=2).k == 3
