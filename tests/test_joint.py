"""The joint step: both models on one batch, one update, exact against a hand computation."""

import keras
import numpy as np
import pytest
from testing_utils import SHAPE
from testing_utils import BatchRecorder
from testing_utils import Recording
from testing_utils import joint_ladder_reference
from testing_utils import joint_reference_update
from testing_utils import mapped_block
from testing_utils import random_data
from testing_utils import replay_algorithm_1
from testing_utils import run_json_script
from testing_utils import tiny_pair

import keras_motivation as km
from keras_motivation import conditions
from keras_motivation.batch_norm import moving_statistics
from keras_motivation.engine import joint as joint_lib
from keras_motivation.models.resnet_cifar import resnet_cifar


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
        "weights": None,
        "equilibrium": False,
        "distillation_teachers": "largest",
    }
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert loaded.counters()["motivated_steps"] == 8


@pytest.mark.parametrize(
    "joint, message",
    [
        ({"base_weight": -1}, "base_weight >= 0"),
        ({"distillation": 2}, "0 <= distillation <= 1"),
        ("yes", "joint must be a JointStep"),
        ({"weights": [1.0]}, "two or more"),
        ({"weights": [1.0, -2.0]}, "two or more"),
        ({"weights": [2.0, 1.0], "base_weight": 2.0}, "not both"),
        ({"weights": [2.0, 1.0, 1.0]}, "3 weights for 2 models"),
        ({"equilibrium": "yes"}, "equilibrium True or False"),
        ({"distillation_teachers": "every"}, "'largest' or 'all'"),
    ],
)
def test_bad_joint_arguments_fail_in_one_line(joint, message):
    base, motivated = tiny_pair()
    with pytest.raises(ValueError, match=message) as info:
        km.MotivatedModel(base, motivated, joint=joint)
    assert "\n" not in str(info.value)


def test_the_new_options_round_trip_and_a_config_from_before_them_loads():
    joint = km.JointStep(weights=[2, 0.5, 1], equilibrium=True, distillation=0.5, distillation_teachers="all")
    again = km.JointStep.from_config(joint.get_config())
    assert again.get_config() == joint.get_config() and again.weights == (2.0, 0.5, 1.0)
    assert [again.weight(j, 2) for j in range(3)] == [2.0, 0.5, 1.0]
    old = {"base_weight": 2.0, "motivated_weight": 1.0, "distillation": 0.0, "base_share": 1.0, "shared_forward": True}
    loaded = km.JointStep.from_config(old)
    assert (loaded.weights, loaded.equilibrium, loaded.distillation_teachers) == (None, False, "largest")
    # Without weights: the base's weight, 1 for the models between, the step's largest model's weight.
    assert [loaded.weight(j, 2) for j in range(3)] == [2.0, 1.0, 1.0]


def _prefix_ladder(joint, **compile_kwargs):
    """ResNet-8 ⊂ ResNet-14 ⊂ ResNet-20 of one stage, each a prefix of the next; the largest trains every batch."""
    keras.utils.set_random_seed(0)
    models = [resnet_cifar(d, num_classes=10, input_shape=SHAPE, width=4, stages=1) for d in (8, 14, 20)]
    model = km.MotivatedModel(
        models=models, weights_map="first", condition=conditions.Always(), bn_statistics="private", joint=joint
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", **compile_kwargs)
    return model


EQUILIBRIUM_PATHS = {
    "one-step": {},
    "device-loop": {"steps_per_execution": 2},
    "xla": {"jit_compile": True},
}


@pytest.mark.parametrize(
    "models, path, shared_forward",
    [
        ("pair", "one-step", True),
        ("pair", "one-step", False),
        ("pair", "device-loop", True),
        ("pair", "xla", False),
        ("ladder", "one-step", True),
        ("ladder", "one-step", False),
        ("ladder", "device-loop", False),
        ("ladder", "xla", True),
    ],
)
def test_equilibrium_steps_are_the_weighted_mean_of_the_gradients(models, path, shared_forward):
    """Two joint steps against a hand computation: each element moves by the weighted mean of the gradients of
    the losses that reach it (the pair with base weight 2, the ladder with per-rung weights [2, 0.5, 1])."""
    if models == "pair":
        weights = [2.0, 1.0]
        model = joint_model(
            km.JointStep(base_weight=2.0, equilibrium=True, shared_forward=shared_forward), **EQUILIBRIUM_PATHS[path]
        )
    else:
        weights = [2.0, 0.5, 1.0]
        joint = km.JointStep(weights=weights, equilibrium=True, shared_forward=shared_forward)
        model = _prefix_ladder(joint, **EQUILIBRIUM_PATHS[path])
    assert (model.shared_forward is not None) == shared_forward
    x, y = random_data(32)
    for wmap in model.weights_maps:
        wmap.copy_to_motivated()
    expected = joint_ladder_reference(model, [(x[:16], y[:16]), (x[16:], y[16:])], 0.1, weights, equilibrium=True)
    summed = joint_ladder_reference(model, [(x[:16], y[:16]), (x[16:], y[16:])], 0.1, weights)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert model.counters()["motivated_steps"] == 2
    for v, want in zip(model.motivated.trainable_variables, expected):
        np.testing.assert_allclose(v.numpy(), want, atol=2e-5, err_msg=v.path)
    # Without equilibrium the shared weights would have moved otherwise.
    assert any(not np.allclose(a, b, atol=1e-4) for a, b in zip(expected, summed))


def test_equilibrium_scales_each_slice_of_a_width_pair_by_its_own_weights():
    def mlp(width):
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(width, activation="relu", name="hidden")(inputs)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="logits")(hidden))

    keras.utils.set_random_seed(0)
    base, motivated = mlp(4), mlp(8)
    model = km.MotivatedModel(
        base,
        motivated,
        km.weights_map.derive(base, motivated),
        conditions.Always(),
        bn_statistics="private",
        joint=km.JointStep(base_weight=3.0, equilibrium=True),
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    scales = joint_lib.equilibrium_scales(model, 1)
    # hidden/kernel (6, 8): the first 4 columns reached by both losses (1 + 3), the rest by the motivated one's.
    np.testing.assert_array_equal(scales[0][:, :4], 0.25)
    np.testing.assert_array_equal(scales[0][:, 4:], 1.0)
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    y = np.arange(16) % 10
    model.weights_map.copy_to_motivated()
    expected = joint_ladder_reference(model, [(x, y)], 0.1, [3.0, 1.0], equilibrium=True)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for v, want in zip(model.motivated.trainable_variables, expected):
        np.testing.assert_allclose(v.numpy(), want, atol=2e-6, err_msg=v.path)


def test_one_for_all_distillation_learns_from_every_larger_model():
    """A three-model ladder, distillation 0.5 from every larger model: against the hand computation, and not the
    step that distils from the largest alone."""
    results = {}
    for teachers in ("all", "largest"):
        model = _prefix_ladder(km.JointStep(weights=[1.0, 1.0, 1.0], distillation=0.5, distillation_teachers=teachers))
        x, y = random_data(16)
        for wmap in model.weights_maps:
            wmap.copy_to_motivated()
        expected = joint_ladder_reference(model, [(x, y)], 0.1, [1.0, 1.0, 1.0], distillation=0.5, teachers=teachers)
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
        for v, want in zip(model.motivated.trainable_variables, expected):
            np.testing.assert_allclose(v.numpy(), want, atol=2e-6, err_msg=v.path)
        results[teachers] = expected
    assert any(not np.allclose(a, b, atol=1e-6) for a, b in zip(results["all"], results["largest"]))


@pytest.mark.slow  # four 2-replica runs in a subprocess, about a minute; the one-device paths are tested by default
def test_equilibrium_steps_under_mirrored_strategy_are_the_hand_computation():
    r = run_json_script("equilibrium_mirrored_run.py")
    assert r.pop("replicas") == 2
    for case, difference in r.items():
        assert difference < 1e-9, case
