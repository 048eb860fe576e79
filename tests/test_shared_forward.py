"""The joint step's shared forward pass: the same step as two passes, for less."""

import keras
import numpy as np
import pytest
from testing_utils import SHAPE
from testing_utils import BatchRecorder
from testing_utils import joint_reference_update
from testing_utils import random_data
from testing_utils import run_json_script
from testing_utils import scramble
from testing_utils import tiny_pair

import keras_motivation as km
from keras_motivation import conditions
from keras_motivation.batch_norm import moving_statistics
from keras_motivation.engine import joint as joint_lib
from keras_motivation.engine import shared_forward
from keras_motivation.models.resnet_cifar import resnet_cifar
from keras_motivation.models.vit import vit


def _joint_model(stages=1, steps_per_execution=1, jit_compile=False, momentum=0.0, **joint):
    keras.utils.set_random_seed(0)
    base, motivated = tiny_pair(stages=stages)
    model = km.MotivatedModel(
        base, motivated, "resnet_depth", conditions.Always(), bn_statistics="private", joint=km.JointStep(**joint)
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=momentum),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


def _train(model, steps, batch=16):
    x, y = random_data(steps * batch)
    rec = BatchRecorder()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[rec])
    return rec.losses


def _weights(model):
    return [v.numpy() for v in model.base.weights + model.motivated.weights]


def test_a_prefix_pair_shares_everything_but_the_head():
    # One stage: ResNet-8's block, then ResNet-14's second block after it (a prefix pair).
    model = _joint_model(stages=1)
    plan = model.shared_forward
    assert plan is not None, model.shared_forward_unavailable
    assert plan.cut == ["stage1_block0_out"]
    assert [layer.name for layer in plan.tail.layers[1:]] == ["pool", "logits"]
    # The stem's and the block's BatchNorm statistics: 3 layers, mean and variance each.
    assert len(plan.tails[0].statistics) == 6


def test_a_balanced_pair_shares_the_stem_and_first_block():
    model = _joint_model(stages=3)
    plan = model.shared_forward
    assert plan.cut == ["stage1_block0_out"]
    tail = {layer.name for layer in plan.tail.layers}
    assert {"stage2_block0_conv1", "stage3_block0_out", "logits"} <= tail and "stem_conv" not in tail


def test_a_width_pair_has_nothing_to_share():
    base = vit("tiny", num_classes=10, input_shape=(16, 16, 3), patch_size=8, depth=2)
    motivated = vit("small", num_classes=10, input_shape=(16, 16, 3), patch_size=8, depth=2)
    plan, why = shared_forward.find(km.weights_map.get("width", base, motivated))
    assert plan is None and "nothing to share" in why


def _users_model(middle, extra=False, stem_bn=None):
    """A user's small functional model (its input left unnamed, as Keras numbers it): stem conv, its BatchNorm,
    `middle` (a layer named "middle"), one more conv in the bigger model (`extra`), a global pool and the
    classifier."""
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn", **(stem_bn or {}))(x)
    x = middle(x)
    if extra:
        x = keras.layers.Conv2D(8, 3, padding="same", name="extra")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="logits")(x))


def _users_pair(middle, bigger_middle=None, stem_bn=None, bigger_stem_bn=None):
    """(base, bigger model, `derive`'s map of every base variable): the bigger model has one more conv after
    "middle", and `bigger_middle` / `bigger_stem_bn` where given."""
    keras.utils.set_random_seed(0)
    base = _users_model(middle(), stem_bn=stem_bn)
    motivated = _users_model((bigger_middle or middle)(), extra=True, stem_bn=bigger_stem_bn or stem_bn)
    wmap = km.weights_map.derive(base, motivated)
    assert len(wmap) == len(base.weights), "derive maps every variable of the base"
    return base, motivated, wmap


def test_a_same_named_pooling_of_another_size_ends_the_trunk_and_the_base_trains_on_its_own():
    """A user's pair: the same-named pooling layer is a 2x2 max-pool in the base, 4x4 in the bigger model (which
    has one more conv after it). The trunk ends before it, and a shared-forward joint step is the two-pass step."""
    base, motivated, wmap = _users_pair(
        lambda: keras.layers.MaxPooling2D(2, name="middle"), lambda: keras.layers.MaxPooling2D(4, name="middle")
    )
    plan, why = shared_forward.find(wmap)
    assert plan is not None, why
    assert plan.cut == ["stem_bn"]
    assert [layer.name for layer in plan.tail.layers[1:]] == ["middle", "gap", "logits"]
    assert plan.tails[0].parted == {
        "middle": "its configuration differs: pool_size (2, 2) vs (4, 4); strides (2, 2) vs (4, 4)"
    }
    x, y = random_data(16)
    steps = {}
    for shared in (False, True):
        keras.utils.set_random_seed(0)
        base, motivated, wmap = _users_pair(
            lambda: keras.layers.MaxPooling2D(2, name="middle"), lambda: keras.layers.MaxPooling2D(4, name="middle")
        )
        model = km.MotivatedModel(
            base,
            motivated,
            wmap,
            conditions.Always(),
            bn_statistics="private",
            joint=km.JointStep(shared_forward=shared),
        )
        assert (model.shared_forward is not None) == shared
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        before = _weights(model)
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
        steps[shared] = [a - b for a, b in zip(_weights(model), before)]
    for a, b in zip(steps[False], steps[True]):
        np.testing.assert_allclose(a, b, atol=1e-6)


MAX_POOL = lambda: keras.layers.MaxPooling2D(2, name="middle")  # noqa: E731


@pytest.mark.parametrize(
    "middle, bigger_middle, stem_bn, bigger_stem_bn, cut, parted",
    [
        (
            MAX_POOL,
            lambda: keras.layers.AveragePooling2D(2, name="middle"),
            None,
            None,
            "stem_bn",
            {"middle": "it is a MaxPooling2D in the base and a AveragePooling2D in the bigger model"},
        ),
        (
            lambda: keras.layers.Activation("relu", name="middle"),
            lambda: keras.layers.Activation("gelu", name="middle"),
            None,
            None,
            "stem_bn",
            {"middle": "its configuration differs: activation 'relu' vs 'gelu'"},
        ),
        (
            lambda: keras.layers.Dropout(0.1, name="middle"),
            lambda: keras.layers.Dropout(0.2, name="middle"),
            None,
            None,
            "stem_bn",
            {"middle": "its configuration differs: rate 0.1 vs 0.2"},
        ),
        (
            lambda: keras.layers.Reshape((16, 4, 8), name="middle"),
            lambda: keras.layers.Reshape((4, 16, 8), name="middle"),
            None,
            None,
            "stem_bn",
            {"middle": "its configuration differs: target_shape (16, 4, 8) vs (4, 16, 8)"},
        ),
        (
            lambda: keras.layers.UpSampling2D(2, name="middle"),
            lambda: keras.layers.UpSampling2D(2, interpolation="bilinear", name="middle"),
            None,
            None,
            "stem_bn",
            {"middle": "its configuration differs: interpolation 'nearest' vs 'bilinear'"},
        ),
        (
            lambda: keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="middle"),
            lambda: keras.layers.Conv2D(8, 3, padding="same", activation="gelu", name="middle"),
            None,
            None,
            "stem_bn",
            {"middle": "its configuration differs: activation 'relu' vs 'gelu'"},
        ),
        (
            MAX_POOL,
            None,
            {"momentum": 0.99},
            {"momentum": 0.9},
            "stem",
            {"stem_bn": "its configuration differs: momentum 0.99 vs 0.9"},
        ),
        (
            MAX_POOL,
            None,
            {"epsilon": 1e-3},
            {"epsilon": 1e-5},
            "stem",
            {"stem_bn": "its configuration differs: epsilon 0.001 vs 1e-05"},
        ),
    ],
    ids=["class", "activation", "dropout-rate", "reshape", "resize", "conv-activation", "bn-momentum", "bn-epsilon"],
)
def test_a_layer_that_computes_otherwise_ends_the_trunk(middle, bigger_middle, stem_bn, bigger_stem_bn, cut, parted):
    _, _, wmap = _users_pair(middle, bigger_middle, stem_bn, bigger_stem_bn)
    plan, why = shared_forward.find(wmap)
    assert plan is not None, why
    assert plan.cut == [cut]
    assert plan.tails[0].parted == parted


def _attention_model(causal, extra=False):
    inputs = keras.Input(SHAPE, name="images")
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = keras.layers.Reshape((64, 8), name="sequence")(x)
    x = keras.layers.Attention(name="middle")([x, x], use_causal_mask=causal)
    if extra:
        x = keras.layers.Dense(8, name="extra")(x)
    x = keras.layers.GlobalAveragePooling1D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="logits")(x))


def test_a_layer_called_with_other_arguments_ends_the_trunk():
    base, motivated = _attention_model(causal=False), _attention_model(causal=True, extra=True)
    plan, why = shared_forward.find(km.weights_map.derive(base, motivated))
    assert plan is not None, why
    assert plan.cut == ["sequence"]
    assert plan.tails[0].parted == {"middle": "it is called with other arguments in the bigger model"}


def test_names_and_initializers_alone_do_not_end_the_trunk():
    """Inputs named apart (Keras numbers unnamed ones) and another initializer compute the same: the trunk runs
    through "middle" to the bigger model's extra conv."""
    keras.utils.set_random_seed(0)
    base = _users_model(keras.layers.Conv2D(8, 3, padding="same", name="middle"))
    motivated = _users_model(
        keras.layers.Conv2D(8, 3, padding="same", kernel_initializer="zeros", name="middle"), extra=True
    )
    assert base.inputs[0].name != motivated.inputs[0].name
    plan, why = shared_forward.find(km.weights_map.derive(base, motivated))
    assert plan is not None, why
    assert plan.cut == ["middle"] and plan.tails[0].parted == {
        "gap": "it reads ['middle'] in the base and ['extra'] in the bigger model"
    }


class _Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.logits = keras.layers.Dense(10, name="logits")

    def call(self, x):
        return self.logits(keras.ops.reshape(x, (-1, 64)))


def _with_heads(extra_head, input_shape=SHAPE, outputs=1):
    """The base's layers by name (a stem, a pool, the classifier); the bigger model adds `extra_head` to the
    classifier's output, or gives a second output."""
    inputs = keras.Input(input_shape, name="images")
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    logits = keras.layers.Dense(10, name="logits")(x)
    if extra_head:
        logits = keras.layers.Add(name="sum")([logits, keras.layers.Dense(10, name="aux")(x)])
    if outputs == 2:
        return keras.Model(inputs, [logits, keras.layers.Dense(2, name="second")(x)])
    return keras.Model(inputs, logits)


def _subclassed_pair():
    base, motivated = _Subclassed(), _Subclassed()
    for m in (base, motivated):
        m(np.zeros((1, *SHAPE), "float32"))
    return base, motivated


@pytest.mark.parametrize(
    "pair, why",
    [
        (_subclassed_pair, "the models are not functional Keras models (their layer graph cannot be read)"),
        (lambda: (_with_heads(False), _with_heads(True, outputs=2)), "a model has several inputs or outputs"),
        (lambda: (_with_heads(False), _with_heads(True)), "the base has no layer of its own"),
        (
            lambda: (_with_heads(False), _with_heads(True, input_shape=(16, 16, 1))),
            "the base's input 'images' is not the motivated model's: "
            "it takes float32 (None, 8, 8, 1), the bigger model float32 (None, 16, 16, 1)",
        ),
    ],
    ids=["not-functional", "several-outputs", "no-layer-of-its-own", "another-input"],
)
def test_each_refusal_says_why(pair, why):
    """Every reason `find` gives for separate passes, each as a user meets it (the width pair's: above)."""
    base, motivated = pair()
    assert shared_forward.find(km.weights_map.derive(base, motivated)) == (None, why)


class _TwoOutputs(keras.layers.Layer):
    def call(self, x):
        return x, -x


class _Apply(keras.layers.Layer):
    """Applies a function given at construction: Keras cannot write its configuration."""

    def __init__(self, function, **kwargs):
        super().__init__(**kwargs)
        self.function = function

    def call(self, x):
        return self.function(x)


class _Counter(keras.layers.Layer):
    """State other than BatchNorm's: a non-trainable variable."""

    def build(self, shape):
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, name="seen")

    def call(self, x):
        return x


def _called_twice():
    relu = keras.layers.Activation("relu", name="middle")
    return lambda x: relu(relu(x))


def _two_outputs():
    split = _TwoOutputs(name="middle")
    return lambda x: keras.layers.Add(name="join")(list(split(x)))


CONV = lambda **kwargs: keras.layers.Conv2D(8, 3, padding="same", name="middle", **kwargs)  # noqa: E731


@pytest.mark.parametrize(
    "middle, bigger_middle, derive, why",
    [
        (MAX_POOL, lambda: keras.layers.MaxPooling2D(2, name="pool"), {}, "the bigger model has no layer of that name"),
        (_called_twice, None, {}, "it is called more than once"),
        (_two_outputs, None, {}, "it has several outputs"),
        (lambda: _Apply(keras.ops.relu, name="middle"), None, {}, "its configuration cannot be read (get_config)"),
        (lambda: CONV(activity_regularizer="l2"), None, {}, "it has an activity regularizer"),
        (
            CONV,
            None,
            {"overrides": {"middle": "extra"}},
            "its variables are not the bigger model's same-place variables, whole",
        ),
        (lambda: _Counter(name="middle"), None, {}, "it holds state other than BatchNorm's moving statistics"),
    ],
    ids=[
        "no-twin",
        "called-twice",
        "several-outputs",
        "no-config",
        "activity-regularizer",
        "mapped-elsewhere",
        "state",
    ],
)
def test_each_reason_the_passes_part_is_named(middle, bigger_middle, derive, why):
    """Where a layer that reads only the trunk is not the bigger model's twin, the trunk ends before it and
    `Tail.parted` says why (the configuration's differences: above)."""
    keras.utils.set_random_seed(0)
    base = _users_model(middle())
    motivated = _users_model((bigger_middle or middle)(), extra=True)
    plan, found = shared_forward.find(km.weights_map.derive(base, motivated, **derive))
    assert plan is not None, found
    assert plan.cut == ["stem_bn"] and plan.tails[0].parted == {"middle": why}


def test_a_ladders_refusal_names_the_model():
    models = [_with_heads(False), _with_heads(False), _with_heads(True)]
    maps = [km.weights_map.derive(models[0], models[2]), km.weights_map.derive(models[1], models[2])]
    assert shared_forward.find(maps) == (None, "model 0: the base has no layer of its own")


@pytest.mark.parametrize("stages", [1, 3], ids=["prefix", "balanced"])
def test_one_shared_forward_step_has_the_two_pass_gradients(stages):
    """One plain SGD step: the weights move by the learning rate times the gradients."""
    steps = {}
    for shared in (False, True):
        model = _joint_model(stages=stages, shared_forward=shared, base_weight=2.0)
        before = _weights(model)
        _train(model, steps=1)
        steps[shared] = [a - b for a, b in zip(_weights(model), before)]
    for a, b in zip(steps[False], steps[True]):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(
    "stages, path",
    # XLA on the prefix pair only: the balanced pair's trunk runs the same code, and XLA's compile is most of the time.
    [(1, {}), (3, {}), (1, {"steps_per_execution": 2}), (3, {"steps_per_execution": 2}), (1, {"jit_compile": True})],
    ids=["one-step-prefix", "one-step-balanced", "device-loop-prefix", "device-loop-balanced", "xla-prefix"],
)
def test_shared_forward_runs_are_two_pass_runs(stages, path):
    """Losses, weights and the base's BatchNorm statistics after four steps with momentum."""
    runs = {}
    for shared in (False, True):
        model = _joint_model(stages=stages, shared_forward=shared, base_weight=2.0, momentum=0.9, **path)
        assert (model.shared_forward is not None) == shared
        losses = _train(model, steps=4)
        runs[shared] = losses, _weights(model), [v.numpy() for v in moving_statistics(model.base)]
    (losses0, w0, s0), (losses1, w1, s1) = runs[False], runs[True]
    np.testing.assert_allclose(losses0, losses1, rtol=1e-5)
    for a, b in zip(w0, w1):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for a, b in zip(s0, s1):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # two 2-replica subprocess runs in float64, about a minute
def test_the_shared_forward_step_is_the_two_pass_step_under_mirrored_strategy(tmp_path):
    weights = {}
    for shared in ("0", "1"):
        npz = str(tmp_path / f"w{shared}.npz")
        env = {"JOINT": "1", "SHARED_FORWARD": shared, "FLOATX": "float64", "MIRRORED_ONLY": "1", "WEIGHTS_NPZ": npz}
        r = run_json_script("mirrored_run.py", env=env)
        assert r["replicas"] == 2
        with np.load(npz) as f:
            weights[shared] = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    for a, b in zip(weights["0"], weights["1"]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


def _prefix_ladder(steps_per_execution=1, jit_compile=False, shared_forward=True):
    """ResNet-8 ⊂ ResNet-14 ⊂ ResNet-20 of one stage under the first-blocks rule: each a prefix of the next.
    Growth joins rung 1 at the second step and rung 2 at the third, so both rungs' joint steps run."""
    keras.utils.set_random_seed(0)
    models = [resnet_cifar(d, num_classes=10, input_shape=SHAPE, width=4, stages=1) for d in (8, 14, 20)]
    model = km.MotivatedModel(
        models=models,
        weights_map="first",
        condition=conditions.Growth(epochs=[0.25, 0.5]),
        bn_statistics="private",
        joint=km.JointStep(base_weight=2.0, shared_forward=shared_forward),
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


def test_a_prefix_ladder_gives_every_model_from_one_pass():
    model = _prefix_ladder()
    plans = model.shared_forward_plans
    assert sorted(plans) == [1, 2] and model.shared_forward is plans[2]
    assert plans[2].cut == ["stage1_block0_out", "stage1_block1_out"]
    for plan in plans.values():
        assert all([layer.name for layer in t.model.layers[1:]] == ["pool", "logits"] for t in plan.tails)
    assert [len(plans[r].tails) for r in (1, 2)] == [1, 2]


@pytest.mark.parametrize(
    "path", [{}, {"steps_per_execution": 2}, {"jit_compile": True}], ids=["one-step", "device-loop", "xla"]
)
def test_a_shared_forward_ladder_run_is_the_separate_passes_run(path):
    """Losses, every rung's weights and moving statistics after a base step, a rung-1 joint step and two
    rung-2 joint steps with momentum."""
    runs = {}
    for shared in (False, True):
        model = _prefix_ladder(shared_forward=shared, **path)
        assert bool(model.shared_forward_plans) == shared
        losses = _train(model, steps=4)
        assert model.counters()["rung_steps"] == [1, 1, 2]
        weights = [v.numpy() for m in model.rungs for v in m.weights]
        runs[shared] = losses, weights
    (losses0, w0), (losses1, w1) = runs[False], runs[True]
    np.testing.assert_allclose(losses0, losses1, rtol=1e-5)
    for a, b in zip(w0, w1):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_a_ladder_counts_its_tails_flops():
    from keras_motivation import flops as flops_lib
    from keras_motivation import summary

    model = _prefix_ladder()
    counters = {"steps": 4, "motivated_steps": 3, "rung_steps": [1, 1, 2], "recalibration_batches": 0}
    f = [flops_lib.count_flops(m) for m in model.rungs]
    head = [flops_lib.count_flops(t.model) for t in model.shared_forward_plans[2].tails]
    total = summary.flops_summary(model, counters, batch_size=16)["training_flops"]["total"]
    forward = f[0] + (f[1] + head[0]) + 2 * (f[2] + sum(head))
    assert total == flops_lib.training_flops(forward, 16)
    assert sum(head) < 0.05 * f[0]


def test_composed_maps_place_the_smallest_model_in_the_largest():
    models = [resnet_cifar(d, num_classes=10, input_shape=SHAPE, width=4, stages=1) for d in (8, 14, 20)]
    maps = [km.weights_map.get("resnet_depth", b, m) for b, m in zip(models, models[1:])]
    composed = km.weights_map.compose(maps)
    assert composed.base is models[0] and composed.motivated is models[2] and len(composed) == len(maps[0])
    scramble([v for v in models[0].weights if "float" in str(v.dtype)], 1)
    composed.copy_to_motivated()
    # What the neighbouring maps carry down from the largest model is the smallest model's own.
    maps[1].copy_to_base()
    maps[0].copy_to_base()
    for e in composed:
        np.testing.assert_array_equal(
            e.base.numpy(), keras.ops.slice(e.motivated.value, e.start, tuple(e.base.shape)).numpy(), e.base.path
        )


def test_a_graph_built_later_on_a_models_tensors_leaves_its_shared_forward():
    """A tail (a functional model on the base's own tensors) calls the base's layers again: a second
    plan for the same models still reads each model's own graph."""
    base, motivated = tiny_pair(stages=1)
    wmap = km.weights_map.get("resnet_depth", base, motivated)
    first, _ = shared_forward.find(wmap)
    again, why = shared_forward.find(wmap)
    assert again is not None, why
    assert again.cut == first.cut


def test_base_share_trains_the_base_on_the_first_rows():
    """A step at base_share 0.5 is the two-pass step whose base sees the batch's first half. (With a
    shared forward the base's trunk sees the whole batch: its BatchNorm layers normalise with the
    whole batch's statistics, as the motivated model's do.)"""
    x, y = random_data(16)
    model = _joint_model(stages=3, base_share=0.5, shared_forward=False)
    model.weights_map.copy_to_motivated()  # what the switch into the motivated mode does first
    expected = joint_reference_update(model, x, y, lr=0.1, base_rows=8)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for v, want in zip(model.motivated.trainable_variables, expected):
        np.testing.assert_allclose(v.numpy(), want, atol=2e-6, err_msg=v.path)


def test_forward_flops_count_what_the_step_computes():
    joint = km.JointStep(base_share=0.25)
    assert joint_lib.forward_flops(joint, None, 100, 400) == 425
    assert joint_lib.forward_flops(joint, object(), 100, 400, tail_flops=20) == 405


@pytest.mark.parametrize("share", [0, 1.5, True, "half"])
def test_a_bad_base_share_is_named(share):
    with pytest.raises(ValueError, match="base_share"):
        km.JointStep(base_share=share)


def test_the_joint_step_config_round_trips_and_old_configs_load():
    joint = km.JointStep(base_weight=2.0, base_share=0.5, shared_forward=False)
    again = km.JointStep.from_config(joint.get_config())
    assert again.get_config() == joint.get_config()
    old = km.JointStep.from_config({"base_weight": 2.0, "motivated_weight": 1.0, "distillation": 0.0})
    assert old.base_share == 1.0 and old.shared_forward


def test_the_docs_savings_table_is_what_the_tool_computes():
    import os
    import re
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(root, "tools"))
    import shared_forward_savings

    with open(os.path.join(root, "docs", "guides", "joint.md"), encoding="utf-8") as f:
        page = f.read()
    rows = shared_forward_savings.markdown(shared_forward_savings.rows()).splitlines()
    available = [p for p in shared_forward_savings.PAIRS if not km.models.unavailable(p)]
    assert len(rows) == 2 + len(available)
    # keras-hub's depth pairs are in it, their trunk found inside the backbone: ResNet's stem and first block,
    # ViT's patch embedding (its blocks run inside one layer).
    hub = {"hub_resnet18:hub_resnet34": "stack0_block0_out", "hub_vit_tiny_d2:hub_vit_tiny_d4": "vit_patching_and"}
    assert set(hub) <= set(shared_forward_savings.PAIRS)
    for pair, cut in hub.items():
        assert re.search(rf"^\| {pair} \|.*\| `{cut}", page, re.M), pair
    missing = [row for row in rows if row not in page]
    assert not missing, f"docs/guides/joint.md's savings table differs from tools/shared_forward_savings.py: {missing}"
