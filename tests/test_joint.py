"""The joint step: both models on one batch, one update, exact against a hand computation."""

import keras
import numpy as np
import pytest
from testing_utils import BatchRecorder
from testing_utils import Recording
from testing_utils import joint_reference_update
from testing_utils import mapped_block
from testing_utils import random_data
from testing_utils import replay_algorithm_1
from testing_utils import tiny_pair

import keras_motivation as km
from keras_motivation import conditions
from keras_motivation.batch_norm import moving_statistics


def joint_model(joint=True, condition=None, optimizer=None, steps_per_execution=1, jit_compile=False, **kwargs):
    base, motivated = tiny_pair(**kwargs)
    model = km.MotivatedModel(
        base, motivated, "resnet_depth", condition or conditions.Always(), bn_statistics="private", joint=joint
    )
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(0.1),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


def test_one_joint_step_is_one_sgd_step_on_the_summed_loss():
    keras.utils.set_random_seed(0)
    model = joint_model(km.JointStep(base_weight=0.5, motivated_weight=1.0))
    x, y = random_data(32)
    # The switch into the motivated mode copies the base into its slices: do it first, so the
    # reference starts from the same values.
    model.weights_map.copy_to_motivated()
    expected = joint_reference_update(model, x, y, lr=0.1, base_weight=0.5)
    base_statistics = [v.numpy() for v in moving_statistics(model.base)]
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)
    assert model.counters()["motivated_steps"] == 1
    for v, want in zip(model.motivated.trainable_variables, expected):
        np.testing.assert_allclose(v.numpy(), want, atol=2e-6, err_msg=v.path)
    # The epoch ended on the base: it reads its trained slices back ...
    for e in model.weights_map.entries:
        if e.base.trainable:
            np.testing.assert_array_equal(e.base.numpy(), mapped_block(e), err_msg=e.base.path)
    # ... and its BatchNorm statistics are its own, moved by its own forward in the joint step.
    after = [v.numpy() for v in moving_statistics(model.base)]
    assert any(not np.array_equal(a, b) for a, b in zip(after, base_statistics))


def test_the_joint_step_trains_the_base_too():
    """Against the paper's step: there the base's slices move only through the motivated model's loss."""
    x, y = random_data(32)
    results = []
    for joint in (None, km.JointStep()):
        keras.utils.set_random_seed(0)
        model = joint_model(joint=joint)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)
        results.append([v.numpy() for v in model.base.trainable_variables])
        logs = model.get_metrics_result()
        # The base's loss is tracked over the joint batches (not only the motivated model's).
        assert (float(logs["loss"]) > 0) == (joint is not None)
    assert any(not np.allclose(a, b) for a, b in zip(*results))


def test_full_distillation_ignores_the_labels_in_the_base_loss():
    """motivated_weight 0 and distillation 1: the update comes from KL(Y || X) alone, so permuted labels
    give the same weights; without distillation they do not."""
    x, y = random_data(32)
    permuted = np.roll(y, 1)
    for distillation, same in ((1.0, True), (0.0, False)):
        keras.utils.set_random_seed(0)
        model = joint_model(km.JointStep(motivated_weight=0.0, distillation=distillation))
        start = [v.numpy() for v in model.variables]
        weights = []
        for labels in (y, permuted):
            # The second fit from the first's start reuses its traced step (a trace is most of a fit here).
            for v, value in zip(model.variables, start):
                v.assign(value)
            model.fit(x, labels, batch_size=32, epochs=1, verbose=0, shuffle=False)
            weights.append([v.numpy() for v in model.motivated.trainable_variables])
        equal = all(np.allclose(a, b, atol=1e-6) for a, b in zip(*weights))
        assert equal == same, distillation


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_joint_alternation_follows_algorithm_1(steps_per_execution):
    """The paper's condition decides; the motivated mode's batches are joint steps."""
    model = joint_model(condition=Recording(2), steps_per_execution=steps_per_execution)
    x, y = random_data(176)
    rec = BatchRecorder()
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[rec], verbose=0, shuffle=False)
    modes, losses = model.condition.record()
    assert modes == replay_algorithm_1(losses, [11, 11], k=2)
    assert any(modes) and not all(modes)
    assert model.counters()["motivated_steps"] == sum(modes)


def test_joint_steps_run_under_xla():
    model = joint_model(jit_compile=True)
    x, y = random_data(64)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert model.counters()["motivated_steps"] == 4
    assert np.isfinite(history.history["motivated_loss"][-1]) and np.isfinite(history.history["loss"][-1])


def test_a_joint_model_saves_and_loads_its_joint_step(tmp_path):
    model = joint_model(km.JointStep(base_weight=0.5, distillation=0.25))
    x, y = random_data(64)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "joint.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.joint.get_config() == {
        "base_weight": 0.5,
        "motivated_weight": 1.0,
        "distillation": 0.25,
        "base_share": 1.0,
        "shared_forward": True,
    }
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert loaded.counters()["motivated_steps"] == 8


@pytest.mark.parametrize(
    "joint, message",
    [
        ({"base_weight": -1}, "base_weight >= 0"),
        ({"distillation": 2}, "0 <= distillation <= 1"),
        ("yes", "joint must be a JointStep"),
    ],
)
def test_bad_joint_arguments_fail_in_one_line(joint, message):
    base, motivated = tiny_pair()
    with pytest.raises(ValueError, match=message) as info:
        km.MotivatedModel(base, motivated, joint=joint)
    assert "\n" not in str(info.value)
