"""MotivatedModel: Algorithm 1, copies, isolation, state, saving, bad input."""

import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from testing_utils import BatchRecorder
from testing_utils import Recording
from testing_utils import Scripted
from testing_utils import assert_same
from testing_utils import mapped_block
from testing_utils import random_data
from testing_utils import replay_algorithm_1
from testing_utils import repository_env
from testing_utils import scramble
from testing_utils import snapshot
from testing_utils import tiny_model
from testing_utils import tiny_pair

import keras_motivation as km
from keras_motivation import conditions
from keras_motivation.engine import train_function


def _slots(optimizer, variables):
    from keras_motivation import keras_internals

    slots = keras_internals.optimizer_slots(optimizer)
    out = []
    for v in variables:
        if v.trainable:
            i = keras_internals.slot_index(optimizer, v)
            out += [s[i] for s in slots.values() if s[i] is not None]
    return out


def test_activation_sequence_matches_pure_python_replay():
    model = tiny_model(conditions.ConsecutiveDecrease(2))
    x, y = random_data(256)
    rec = BatchRecorder()
    model.fit(x, y, batch_size=16, epochs=3, callbacks=[rec], verbose=0, shuffle=False)
    lengths = [len(idx) for idx, _ in rec.epochs]
    assert lengths == [16, 16, 16]
    assert rec.flags == replay_algorithm_1(rec.losses, lengths, k=2)
    assert any(rec.flags), "the condition never fired: the test would prove nothing"
    # Per-epoch logs agree with the per-batch flags.
    for idx, logs in rec.epochs:
        assert logs["motivated_steps"] == sum(rec.flags[i] for i in idx)
        # Every epoch starts and ends on the base model.
        modes = [0] + [rec.flags[i] for i in idx] + [0]
        assert logs["switches"] == sum(a != b for a, b in zip(modes, modes[1:]))
        assert logs["activations"] == sum(a < b for a, b in zip(modes, modes[1:]))
    counters = model.counters()
    assert counters["steps"] == 48
    assert counters["motivated_steps"] == sum(rec.flags)
    assert not model.is_motivated


def test_epoch_ends_on_base_with_forced_copy_back():
    # Motivated for the last two batches of the epoch: the epoch boundary
    # must copy back, so the base holds the motivated model's slices.
    model = tiny_model(Scripted([0, 0, 1, 1]))
    x, y = random_data(64)
    hist = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert not model.is_motivated
    assert hist.history["switches"] == [2]
    assert hist.history["motivated_steps"] == [2]
    # Every mapped variable but the BatchNorm statistics, each model's own
    # by default (tests/test_batch_norm.py).
    own = {id(v) for v in km.batch_norm.moving_statistics(model.base)}
    entries = [e for e in model.weights_map if id(e.base) not in own]
    assert len(entries) == len(model.weights_map.entries) - len(own) > 0
    for e in entries:
        np.testing.assert_array_equal(e.base.numpy(), mapped_block(e), err_msg=e.base.path)


def test_validation_sees_the_base_after_the_epoch_boundary():
    model = tiny_model(Scripted([0, 0, 0, 1]))
    x, y = random_data(64)
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            seen.append(self.model.is_motivated)

    model.fit(x, y, batch_size=16, epochs=1, verbose=0, validation_data=(x[:16], y[:16]), callbacks=[Probe()])
    assert seen == [False]


def test_inactive_model_is_bit_identical_while_the_other_trains():
    schedule = [0, 0, 1, 1, 1, 0, 0, 1, 1]
    model = tiny_model(Scripted(schedule))
    base_vars = model.base.weights + _slots(model.optimizer, model.base.weights)
    mot_vars = model.motivated.weights + _slots(model.motivated_optimizer, model.motivated.weights)
    differential = model.weights_map.differential_variables()
    assert differential, "resnet8 -> resnet14 must have differential layers"
    checks = []

    class Check(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            active = bool(logs["motivated"])
            now_b, now_m = snapshot(base_vars), snapshot(mot_vars)
            now_d = snapshot(differential)
            if batch > 0 and active == self.prev_active:
                # Same mode as the previous batch: the other model is untouched.
                other_before, other_now = (self.b, now_b) if active else (self.m, now_m)
                for a, b in zip(other_before, other_now):
                    np.testing.assert_array_equal(a, b)
                checks.append(batch)
            if batch > 0 and not active:
                # Differential layers keep their values while the base trains.
                for a, b in zip(self.d, now_d):
                    np.testing.assert_array_equal(a, b)
            self.b, self.m, self.d, self.prev_active = now_b, now_m, now_d, active

    x, y = random_data(16 * len(schedule))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False, callbacks=[Check()])
    assert checks == [1, 3, 4, 6, 8]


def test_copies_round_trip_and_land_in_the_right_slices():
    # The paper's copies, BatchNorm statistics included.
    model = tiny_model(optimizer=keras.optimizers.Adam(1e-3), bn_statistics="shared")
    # Distinct random values everywhere, including BN moving statistics and
    # both Adam moments, so that a misplaced slice cannot go unnoticed.
    scramble(model.motivated.weights + _slots(model.motivated_optimizer, model.motivated.weights), 1)
    scramble(model.base.weights + _slots(model.optimizer, model.base.weights), 2)
    model.optimizer.iterations.assign(7)
    base_state = model.base.weights + _slots(model.optimizer, model.base.weights)
    before = snapshot(base_state)
    differential = model.weights_map.differential_variables()
    diff_before = snapshot(differential)

    model._switch_ops(0, 1)  # base -> motivated
    entries = model.weights_map.entries + model._slot_entries
    assert any("moving_mean" in e.base.path for e in entries)
    assert sum("momentum" in e.base.path for e in entries) == len(model.base.trainable_weights)
    for e in entries:
        np.testing.assert_array_equal(mapped_block(e), e.base.numpy(), err_msg=e.motivated.path)
    assert int(model.motivated_optimizer.iterations.numpy()) == 7
    assert_same(diff_before, differential)

    model.switch_to_base()
    assert_same(before, base_state)
    assert not model.is_motivated


@pytest.mark.parametrize("bn_statistics", ["shared", "private"])
def test_time_switch_times_what_a_switch_copies_and_restores_everything(bn_statistics, monkeypatch):
    model = tiny_model(optimizer=keras.optimizers.Adam(1e-3), bn_statistics=bn_statistics)
    scramble(model.motivated.weights + _slots(model.motivated_optimizer, model.motivated.weights), 1)
    scramble(model.base.weights + _slots(model.optimizer, model.base.weights), 2)
    model.optimizer.iterations.assign(7)
    everything = model.weights + model.optimizer.variables + model.motivated_optimizer.variables
    before, counters = snapshot(everything), model.counters()
    copied = []
    copy = km.weights_map.copy_to_motivated
    monkeypatch.setattr(km.weights_map, "copy_to_motivated", lambda entries: copied.append(entries) or copy(entries))

    assert 0 < model.time_switch(3) < 1
    assert 0 < model.time_switch(2, clock=time.process_time) < 1
    # Traced once per call, over this run's copies: BatchNorm statistics only when shared.
    assert len(copied) == 2 and all(entries is model._copy_entries() for entries in copied)
    statistics = [e for e in copied[0] if "moving_" in e.base.path]
    assert bool(statistics) == (bn_statistics == "shared")
    assert_same(before, everything)
    assert model.counters() == counters and not model.is_motivated
    with pytest.raises(ValueError, match="repeats >= 1"):
        model.time_switch(0)


@pytest.mark.parametrize(
    "make_optimizer, slot_names",
    [
        (lambda: keras.optimizers.SGD(0.01, momentum=0.9), ["momentums"]),
        (lambda: keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True), ["momentums"]),
        (lambda: keras.optimizers.Adam(1e-3), ["_momentums", "_velocities"]),
        (lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.05), ["_momentums", "_velocities"]),
        (lambda: keras.optimizers.RMSprop(1e-3, momentum=0.9), ["_momentums", "_velocities"]),
        (lambda: keras.optimizers.Lamb(1e-3), ["_momentums", "_velocities"]),
    ],
    ids=["SGD", "SGD-nesterov", "Adam", "AdamW", "RMSprop", "Lamb"],
)
def test_optimizer_slots_follow_the_switches(make_optimizer, slot_names):
    from keras_motivation import keras_internals

    model = tiny_model(Scripted([0, 0, 1, 1, 0]), optimizer=make_optimizer())
    assert sorted(keras_internals.optimizer_slots(model.optimizer)) == slot_names
    assert type(model.motivated_optimizer) is type(model.optimizer)
    assert model.motivated_optimizer is not model.optimizer
    seen = {}

    class Grab(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:  # the base's slots just before the switch
                seen["base"] = [b.numpy().copy() for b, _, _ in _mapped_slots(self.model)]
            if batch == 2:  # one motivated step later
                seen["motivated"] = [m.numpy()[region] for _, m, region in _mapped_slots(self.model)]
                seen["iterations"] = int(self.model.motivated_optimizer.iterations.numpy())

    x, y = random_data(80)
    # Batch 2, the first motivated step, weighs nothing: its gradient is zero,
    # so every slot only decays (m <- beta * m). From the base's slots copied
    # at the switch that is a fixed non-zero multiple of them; from a fresh
    # optimizer's zeros it would stay zero.
    sample_weight = np.ones(80, "float32")
    sample_weight[32:48] = 0
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False, callbacks=[Grab()], sample_weight=sample_weight)
    assert any(np.any(a != 0) for a in seen["base"]), "slots still zero: nothing was tested"
    for before, after in zip(seen["base"], seen["motivated"]):
        nonzero = before != 0
        np.testing.assert_array_equal(after[~nonzero], 0)
        if nonzero.any():
            ratio = after[nonzero] / before[nonzero]
            assert 0 < ratio[0] <= 1, ratio[0]
            np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    # Global step in both states: 2 base steps, then the motivated optimizer
    # continues at 3, and the base resumes at 5 after two motivated steps.
    assert seen["iterations"] == 3
    assert int(model.optimizer.iterations.numpy()) == 5


def _mapped_slots(model):
    """(base slot, motivated slot, the base's block in it) of every mapped trainable variable and slot name."""
    from keras_motivation import keras_internals

    base_slots = keras_internals.optimizer_slots(model.optimizer)
    motivated_slots = keras_internals.optimizer_slots(model.motivated_optimizer)
    out = []
    for e in model.weights_map:
        if not e.base.trainable:
            continue
        i = keras_internals.slot_index(model.optimizer, e.base)
        j = keras_internals.slot_index(model.motivated_optimizer, e.motivated)
        region = tuple(slice(s, s + n) for s, n in zip(e.start, e.base.shape))
        for name in sorted(base_slots):
            b, m = base_slots[name][i], motivated_slots[name][j]
            if b is not None:
                out.append((b, m, region))
    return out


def test_steps_per_execution_gives_the_same_run(deterministic):
    x, y = random_data(160)
    results = []
    for spe in (1, 4):
        keras.utils.set_random_seed(0)
        model = tiny_model(conditions.ConsecutiveDecrease(1))
        model.compile(
            optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            steps_per_execution=spe,
        )
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        results.append((model.counters(), snapshot(model.base.weights)))
    assert results[0][0] == results[1][0]
    assert results[0][0]["switches"] > 0
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# Slow (two XLA compilations, 28 s): by default the XLA case of
# test_every_train_function_path_keeps_the_single_step_activation_sequence runs XLA at 1 and 4
# steps per call (4 ends each epoch inside a call, as 16 would) against Algorithm 1's replay.
@pytest.mark.slow
@pytest.mark.parametrize("steps_per_execution", [1, 3])  # 3: the TPU proxy, several steps per compiled call
def test_jit_compile_runs_switches_under_xla(steps_per_execution):
    model = tiny_model(Scripted([0, 1, 1, 0, 1, 0]), jit_compile=True, steps_per_execution=steps_per_execution)
    assert model.jit_compile
    x, y = random_data(96)
    rec = BatchRecorder()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False, callbacks=[rec])
    if steps_per_execution == 1:
        assert rec.flags == [False, True, True, False, True, False]
    counters = model.counters()
    assert (counters["steps"], counters["motivated_steps"], counters["activations"], counters["switches"]) == (
        6,
        3,
        2,
        4,
    )
    assert np.all(np.isfinite(rec.losses))


def _recorded_run(steps_per_execution, jit_compile=False, k=1):
    keras.utils.set_random_seed(0)
    model = tiny_model(Recording(k), steps_per_execution=steps_per_execution, jit_compile=jit_compile)
    x, y = random_data(176)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    flags, losses = model.condition.record()
    return flags, losses, model


@pytest.mark.parametrize("jit_compile", [False, True])
def test_every_train_function_path_keeps_the_single_step_activation_sequence(jit_compile, request):
    if not jit_compile:
        request.getfixturevalue("deterministic")  # op determinism turns XLA off in Keras
    # 11 steps per epoch: steps_per_execution=4 ends each epoch on a partial
    # call, 16 runs a whole epoch in one call; one step per call is the reference.
    # Under XLA 4 alone: an XLA compile is among the suite's dearest steps, and 16 takes 4's path there
    # (the data runs out inside a call).
    ref_flags, ref_losses, ref = _recorded_run(1, jit_compile)
    assert ref.jit_compile == jit_compile
    assert len(ref_flags) == 22
    assert ref_flags == replay_algorithm_1(ref_losses, [11, 11], k=1)
    assert any(ref_flags) and not all(ref_flags), "no switch: the test would prove nothing"
    for spe in (4,) if jit_compile else (4, 16):
        flags, losses, model = _recorded_run(spe, jit_compile)
        assert flags == replay_algorithm_1(losses, [11, 11], k=1), spe
        assert flags == ref_flags, spe
        np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
        assert model.counters() == ref.counters()
        for a, b in zip(model.motivated.weights, ref.motivated.weights):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_conditions_that_select_before_the_step_follow_their_schedule(steps_per_execution):
    schedule = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0]
    model = tiny_model(Scripted(schedule))
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss="sparse_categorical_crossentropy",
        steps_per_execution=steps_per_execution,
    )
    x, y = random_data(176)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    # Switches: into the motivated model at batches 1, 4, 7; out at 3, 5, 10.
    # One recalibration, at the end of the fit (no validation data), over the epoch's 11 batches (fewer
    # than the recalibration_batches it asks for).
    assert model.bn_statistics == "recalibrated" and model.recalibration_batches > 11
    assert model.counters() == {
        "steps": 11,
        "motivated_steps": 6,
        "switches": 6,
        "activations": 3,
        "recalibration_batches": 11,
    }


@pytest.mark.parametrize("steps_per_execution, joint", [(1, False), (4, False), (1, True), (4, True)])
def test_one_trace_per_fit_whatever_the_switches(steps_per_execution, joint, monkeypatch):
    model = tiny_model(conditions.ConsecutiveDecrease(1), joint=joint)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        steps_per_execution=steps_per_execution,
    )
    x, y = random_data(128)
    traces = []
    # One step per call traces the model's `train_step`; several, `train_function.device_loop`.
    owner = model if steps_per_execution == 1 else train_function
    name = "train_step" if steps_per_execution == 1 else "device_loop"
    original = getattr(owner, name)

    def counting(*args, **kwargs):
        traces.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert model.counters()["switches"] >= 2
    assert len(traces) == 1


def _fit_run(tmp_path, epochs, split_at=None, mode="keras"):
    """Trains `epochs` epochs; with split_at, saves after it and resumes from disk."""
    keras.utils.set_random_seed(0)
    x, y = random_data(192)
    model = tiny_model(conditions.ConsecutiveDecrease(2))
    rec = BatchRecorder()
    if split_at is None:
        model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False, callbacks=[rec])
        return rec, model
    model.fit(x, y, batch_size=16, epochs=split_at, verbose=0, shuffle=False, callbacks=[rec])
    if mode == "keras":
        path = str(tmp_path / "model.keras")
        model.save(path)
        model = keras.models.load_model(path)
    else:
        path = str(tmp_path / "model.weights.h5")
        model.save_weights(path)
        keras.utils.set_random_seed(123)
        model2 = tiny_model(conditions.ConsecutiveDecrease(2))
        model2.load_weights(path)
        model = model2
    model.fit(x, y, batch_size=16, epochs=epochs, initial_epoch=split_at, verbose=0, shuffle=False, callbacks=[rec])
    return rec, model


@pytest.fixture(scope="module")
def uninterrupted():
    """The reference of the resumption tests: 3 epochs in one fit, deterministic."""
    from tensorflow.python.framework import config as tf_config

    tf.config.experimental.enable_op_determinism()
    try:
        return _fit_run(None, 3)
    finally:
        tf_config.disable_op_determinism()


@pytest.mark.xdist_group("uninterrupted")
@pytest.mark.parametrize("mode", ["keras", "weights"])
def test_save_and_load_continue_the_same_activation_sequence(tmp_path, mode, deterministic, uninterrupted):
    full, full_model = uninterrupted
    split, split_model = _fit_run(tmp_path, 3, split_at=1, mode=mode)
    assert full.flags == split.flags
    assert any(full.flags)
    np.testing.assert_allclose(full.losses, split.losses, rtol=1e-5)
    full_counts, split_counts = full_model.counters(), split_model.counters()
    # BatchNorm statistics are recomputed at the end of each fit (no validation data): once
    # in one fit, twice in two, from the same batches (the weights below include them).
    assert split_counts.pop("recalibration_batches") == 2 * full_counts.pop("recalibration_batches") > 0
    assert full_counts == split_counts
    for a, b in zip(full_model.motivated.weights, split_model.motivated.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_saved_model_keeps_both_optimizers_and_condition_state(tmp_path):
    model = tiny_model(conditions.ConsecutiveDecrease(3), optimizer=keras.optimizers.Adam(1e-3))
    x, y = random_data(64)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, km.MotivatedModel)
    assert loaded.condition.k == 3
    assert float(loaded.condition.previous_loss.numpy()) == float(model.condition.previous_loss.numpy())
    assert int(loaded.condition.streak.numpy()) == int(model.condition.streak.numpy())
    assert isinstance(loaded.motivated_optimizer, keras.optimizers.Adam)
    for a, b in zip(model.motivated_optimizer.variables, loaded.motivated_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(model.predict(x[:8], verbose=0), loaded.predict(x[:8], verbose=0), rtol=1e-6)


def test_a_saved_model_loads_without_compiling(tmp_path):
    # `save` writes the copy lists' weights and slots among the model's own
    # variables; an uncompiled load has none of them and takes the state only.
    model = tiny_model(conditions.ConsecutiveDecrease(1), optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    x, y = random_data(64)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert not loaded.compiled
    assert loaded.counters() == model.counters() and model.counters()["motivated_steps"] > 0
    np.testing.assert_array_equal(loaded.motivated.predict(x[:8], verbose=0), model.motivated.predict(x[:8], verbose=0))
    loaded.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert loaded.counters()["steps"] == 2 * model.counters()["steps"]


def test_importing_the_package_registers_what_saved_optimizers_name():
    # A run with --rewarm_epochs saves a Rewarmed schedule; `import keras_motivation` must be enough to load it.
    code = "import keras, keras_motivation; print(keras.saving.get_registered_object('keras_motivation>Rewarmed'))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=repository_env()
    )
    assert "Rewarmed" in out.stdout, out.stderr[-2000:]


def test_a_recompiled_model_saves_and_loads_its_current_optimizers(tmp_path):
    # tiny_model compiled once; the second compile brings new optimizers,
    # whose slots must replace (not join) the old ones among what save writes.
    model = tiny_model(conditions.ConsecutiveDecrease(2))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        motivated_optimizer=keras.optimizers.Adam(5e-4),
    )
    x, y = random_data(64)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.motivated_optimizer, keras.optimizers.Adam)
    for saved, restored in (
        (model.optimizer, loaded.optimizer),
        (model.motivated_optimizer, loaded.motivated_optimizer),
    ):
        assert len(saved.variables) == len(restored.variables)
        for a, b in zip(saved.variables, restored.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.xdist_group("uninterrupted")
def test_backup_and_restore_resumes_the_same_activation_sequence(tmp_path, deterministic, uninterrupted):
    x, y = random_data(192)

    def run(interrupt_after_epoch):
        keras.utils.set_random_seed(0)
        model = tiny_model(conditions.ConsecutiveDecrease(2))
        rec = BatchRecorder()

        class Interrupt(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == interrupt_after_epoch:
                    raise KeyboardInterrupt

        backup = keras.callbacks.BackupAndRestore(str(tmp_path / f"backup{interrupt_after_epoch}"))
        try:
            model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False, callbacks=[backup, rec, Interrupt()])
        except KeyboardInterrupt:
            keras.utils.set_random_seed(99)
            model = tiny_model(conditions.ConsecutiveDecrease(2))
            model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False, callbacks=[backup, rec])
        return rec, model

    full, full_model = uninterrupted
    resumed, resumed_model = run(0)
    assert resumed.flags == full.flags
    assert any(full.flags)
    assert full_model.counters() == resumed_model.counters()
    for a, b in zip(full_model.base.weights, resumed_model.base.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_evaluate_reports_both_models_and_predict_uses_the_base():
    model = tiny_model()
    x, y = random_data(64)
    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy", "motivated_loss", "motivated_accuracy"}
    assert logs["loss"] != logs["motivated_loss"]
    expected = keras.losses.SparseCategoricalCrossentropy()(y, model.motivated.predict(x, verbose=0))
    np.testing.assert_allclose(logs["motivated_loss"], float(expected), rtol=1e-4)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.base.predict(x, verbose=0))
    np.testing.assert_array_equal(model(x[:4]).numpy(), model.base(x[:4]).numpy())


def test_nan_loss_never_triggers_motivation():
    cond = conditions.ConsecutiveDecrease(1)
    flags = [
        bool(cond.update(tf.constant(v), tf.constant(False)))
        for v in [5.0, float("nan"), 4.0, float("nan"), float("nan")]
    ]
    assert flags == [True, False, False, False, False]


# -- bad input ------------------------------------------------------------------


def test_motivated_model_that_does_not_contain_the_base_is_rejected():
    base, motivated = tiny_pair(14, 8)
    # Given bigger first, the order is refused before any map is derived (one line naming both models).
    with pytest.raises(ValueError, match=r"is bigger than `motivated`.*give the models smallest first") as info:
        km.MotivatedModel(base, motivated, "resnet_depth")
    assert "\n" not in str(info.value)
    narrow = km.models.resnet_cifar(14, input_shape=(8, 8, 1), width=2)
    with pytest.raises(ValueError, match=r"does not fit"):
        km.MotivatedModel(tiny_pair()[0], narrow, "resnet_depth")


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_invalid_k(k):
    with pytest.raises(ValueError, match="k >= 1"):
        conditions.ConsecutiveDecrease(k)


def test_compile_without_loss_and_fit_before_compile():
    base, motivated = tiny_pair()
    model = km.MotivatedModel(base, motivated, "resnet_depth")
    x, y = random_data(32)
    with pytest.raises(ValueError, match="compile"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="needs a loss"):
        model.compile(optimizer="sgd")


def test_different_optimizer_classes_are_rejected():
    base, motivated = tiny_pair()
    model = km.MotivatedModel(base, motivated, "resnet_depth")
    with pytest.raises(ValueError, match="same optimizer class"):
        model.compile(optimizer="sgd", motivated_optimizer="adam", loss="sparse_categorical_crossentropy")


def test_saved_model_keeps_the_shared_learning_rate(tmp_path):
    model = tiny_model(conditions.ConsecutiveDecrease(2), optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    x, y = random_data(64)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.optimizer.learning_rate = 0.013  # e.g. ReduceLROnPlateau
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for opt in (loaded.optimizer, loaded.motivated_optimizer):
        assert float(opt.learning_rate.numpy()) == pytest.approx(0.013)
    loaded.optimizer.learning_rate = 0.002
    assert float(loaded.motivated_optimizer.learning_rate.numpy()) == pytest.approx(0.002)
    # A motivated optimizer of one's own stays one's own through save and load.
    own = km.MotivatedModel(*tiny_pair(), "resnet_depth")
    own.compile(
        optimizer=keras.optimizers.SGD(0.05),
        motivated_optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
    )
    own.fit(x, y, batch_size=16, epochs=1, verbose=0)
    own.save(path)
    loaded = keras.models.load_model(path)
    loaded.optimizer.learning_rate = 0.002
    assert float(loaded.motivated_optimizer.learning_rate.numpy()) == pytest.approx(0.01)
