"""Model families and the registry of pairs: every map validates and round-trips."""

import keras
import numpy as np
import pytest
from testing_utils import mapped_block
from testing_utils import scramble

import keras_motivation as km
from keras_motivation import weights_map as wm
from keras_motivation.models.resnet_cifar import prefix_blocks

# By default each family's rule runs on its smaller pairs (EfficientNet: B0->B1, and B1->B2, which
# also widens); the larger pairs are the same rule on more layers (15-25 s each to build).
SLOW_PAIRS = {
    "resnet56:resnet110",
    "resnet101:resnet152",
    "efficientnet_b2:efficientnet_b3",
    "efficientnet_b3:efficientnet_b4",
    "efficientnet_b4:efficientnet_b5",
    "efficientnet_b5:efficientnet_b6",
    "efficientnet_b6:efficientnet_b7",
}


def small_pair(name, num_classes=10):
    kwargs = dict(patch_size=8, depth=2) if name.startswith("vit") else {}
    if name.startswith("vit") and "_d" in name:
        kwargs = dict(patch_size=8)  # the depth is in the name
    if name.startswith("resnet") and int(name.split(":")[0][6:]) < 50:
        kwargs = dict(width=4)
    return km.models.get_pair(name, num_classes=num_classes, input_shape=(32, 32, 3), **kwargs)


@pytest.mark.parametrize(
    "name",
    # keras-hub's pairs: tests/test_keras_hub.py (keras-hub is optional).
    [
        pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PAIRS else p
        for p in km.models.list_pairs()
        if "hub_" not in p
    ],
)
def test_every_registry_pair_maps_and_round_trips(name):
    base, motivated, wmap = small_pair(name)
    # WeightsMap validated at construction; check the promises explicitly too.
    placed = [id(e.base) for e in wmap]
    assert sorted(placed) == sorted(id(v) for v in wm.mapped_variables(base)), "every base variable placed once"
    for e in wmap:
        assert all(s + b <= m for s, b, m in zip(e.start, e.base.shape, e.motivated.shape))
    floats = [v for v in motivated.weights if "float" in str(v.dtype)]
    scramble(floats, 1)
    scramble([v for v in base.weights if "float" in str(v.dtype)], 2)
    before = [v.numpy().copy() for v in base.weights]
    wmap.copy_to_motivated()
    for e in wmap:
        np.testing.assert_array_equal(mapped_block(e), e.base.numpy(), err_msg=e.motivated.path)
    scramble([v for v in base.weights if "float" in str(v.dtype)], 3)
    wmap.copy_to_base()
    for b, v in zip(before, base.weights):
        np.testing.assert_array_equal(b, v.numpy(), err_msg=v.path)
    assert wmap.differential_variables() or any(tuple(e.base.shape) != tuple(e.motivated.shape) for e in wmap)
    assert forward_is_prefix(wmap) == km.models.is_prefix_pair(name), "PREFIX_PAIRS agrees with the map"


def forward_is_prefix(wmap):
    """Whether the map makes the base a prefix of the motivated model: every base
    tensor fills its motivated tensor (one width), and in the motivated model's
    layer order the layers no base variable maps to come after every shared block
    layer (every family here names its block layers `...block...`), so the base is
    the motivated forward up to them, then the shared head."""
    if any(tuple(e.base.shape) != tuple(e.motivated.shape) for e in wmap):
        return False
    covered = {id(e.motivated) for e in wmap}
    weighted = [layer for layer in wmap.motivated.layers if layer.weights]
    differential = [i for i, layer in enumerate(weighted) if not any(id(v) in covered for v in layer.weights)]
    shared_blocks = [i for i, layer in enumerate(weighted) if "block" in layer.name and i not in differential]
    return bool(differential) and max(shared_blocks) < min(differential)


def test_resnet50_to_101_maps_last_block_to_last():
    base, motivated, wmap = small_pair("resnet50:resnet101")
    pairs = {e.base.path.split("/")[0]: e.motivated.path.split("/")[0] for e in wmap}
    for b in range(1, 6):
        assert pairs[f"conv4_block{b}_1_conv"] == f"conv4_block{b}_1_conv"
    assert pairs["conv4_block6_3_bn"] == "conv4_block23_3_bn"
    assert pairs["conv5_block3_2_conv"] == "conv5_block3_2_conv"
    assert pairs["predictions"] == "predictions"


def test_efficientnet_depth_then_width():
    _, _, b0b1 = small_pair("efficientnet_b0:efficientnet_b1")
    assert all(tuple(e.base.shape) == tuple(e.motivated.shape) for e in b0b1), "B0->B1 is depth only"
    pairs = {e.base.path.split("/")[0]: e.motivated.path.split("/")[0] for e in b0b1}
    assert pairs["block2b_project_conv"] == "block2b_project_conv"  # first blocks of the stage
    _, _, b1b2 = small_pair("efficientnet_b1:efficientnet_b2")
    partial = {
        e.base.path: (tuple(e.base.shape), tuple(e.motivated.shape)) for e in b1b2 if e.base.shape != e.motivated.shape
    }
    for role in ("dwconv/kernel", "se_reduce/kernel", "se_expand/kernel", "bn/moving_mean"):
        assert any(role in p for p in partial), role


def test_vit_heads_map_one_to_one():
    base, motivated, wmap = small_pair("vit_tiny:vit_small")
    wmap.copy_to_motivated()
    attn_b = base.get_layer("encoder_block0_attention")
    attn_m = motivated.get_layer("encoder_block0_attention")
    tokens = np.random.default_rng(0).normal(size=(2, 17, 192)).astype("float32")
    padded = np.concatenate([tokens, np.zeros((2, 17, 192), "float32")], axis=-1)

    def heads(layer, x):
        """Per-head attention outputs (before the output projection), from the layer's weights."""
        qk, qb, kk, kb, vk, vb = [w.numpy() for w in layer.weights[:6]]
        q = np.einsum("btd,dhk->bthk", x, qk) + qb
        k = np.einsum("btd,dhk->bthk", x, kk) + kb
        v = np.einsum("btd,dhk->bthk", x, vk) + vb
        scores = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(q.shape[-1])
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        return np.einsum("bhqs,bshk->bqhk", scores, v)

    assert [w.name for w in attn_b.weights[:6]] == ["kernel", "bias"] * 3
    hb, hm = heads(attn_b, tokens), heads(attn_m, padded)
    assert hb.shape[2] == 3 and hm.shape[2] == 6
    np.testing.assert_allclose(hm[:, :, :3], hb, atol=1e-5)
    # A fused-qkv "first rows" slice would put k and v weights in q's place:
    # the mapped heads would then not reproduce the base's.
    assert not np.allclose(hm[:, :, 3:], hb, atol=1e-3)


def _user_cnn(widths, prefix, name):
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for i, w in enumerate(widths):
        x = keras.layers.Conv2D(w, 3, padding="same", name=f"{prefix}conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}bn{i}")(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name=f"{prefix}head")(x), name=name)


def test_users_own_pair_maps_with_overrides_and_trains():
    base = _user_cnn([8, 16], "small_", "small")
    motivated = _user_cnn([12, 24, 24], "big_", "big")
    with pytest.raises(ValueError) as err:
        wm.derive(base, motivated)
    # Every unplaceable base variable is listed, with the reason.
    for v in wm.mapped_variables(base):
        assert v.path in str(err.value)
    assert "no motivated layer named 'small_conv0'" in str(err.value)
    overrides = {f"small_{r}{i}": f"big_{r}{i}" for r in ("conv", "bn") for i in range(2)} | {"small_head": "big_head"}
    wmap = wm.derive(base, motivated, overrides=overrides)
    assert any(tuple(e.base.shape) != tuple(e.motivated.shape) for e in wmap)
    model = km.MotivatedModel(base, motivated, wmap, km.conditions.ConsecutiveDecrease(1))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((64, 16, 16, 3), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, 64)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert model.counters()["motivated_steps"] > 0


# The custom pattern of `test_derive_uses_the_block_patterns_it_was_given`:
# stage s1, block <n>, as in s1_unit0_dense; DEFAULT_BLOCK_PATTERNS does not match it.
UNIT_PATTERN = r"^(?P<stage>s\d+)_unit(?P<block>\d+)_(?P<rest>.+)$"


class Block1a(keras.layers.Dense):
    """A user layer whose Keras names (block1a, block1a_1, ...) look like EfficientNet's block names."""


def _unit_mlp(n_units, width, head_name):
    inputs = keras.Input((4,))
    x = keras.layers.Dense(width, name="stem")(inputs)
    for u in range(n_units):
        h = keras.layers.Dense(width, name=f"s1_unit{u}_dense")(x)
        x = keras.layers.Add(name=f"s1_unit{u}_add")([x, h])
    return keras.Model(inputs, Block1a(3, name=head_name)(x))


def test_derive_uses_the_block_patterns_it_was_given():
    # The head is named as Keras names a layer's first and second instances;
    # derive pairs the two auto-named heads. Only under the default patterns
    # would block1a_1 be a block (stage 1, block a): derive was given others.
    base = _unit_mlp(2, 4, "block1a")
    motivated = _unit_mlp(3, 6, "block1a_1")
    assert set(wm.derivation._parse_blocks(motivated, wm.DEFAULT_BLOCK_PATTERNS)) == {"block1a_1"}
    wmap = wm.derive(base, motivated, depth="last_to_last", block_patterns=[UNIT_PATTERN])
    target = {e.base.path: e.motivated.path for e in wmap}
    assert target == {
        f"{b}/{v}": f"{m}/{v}"
        for b, m in [
            ("stem", "stem"),
            ("s1_unit0_dense", "s1_unit0_dense"),
            ("s1_unit1_dense", "s1_unit2_dense"),  # last to last
            ("block1a", "block1a_1"),
        ]
        for v in ("kernel", "bias")
    }


def test_weights_map_validation_names_the_variables():
    base = _user_cnn([8], "a_", "a")
    motivated = _user_cnn([4], "a_", "b")
    with pytest.raises(ValueError, match=r"a_conv0/kernel \(3, 3, 3, 8\).*does not fit"):
        wm.derive(base, motivated)
    big = _user_cnn([8], "a_", "c")
    entries = [(b, m, None) for b, m in zip(wm.mapped_variables(base), wm.mapped_variables(big))]
    with pytest.raises(ValueError, match=r"a_head/bias .* is not mapped"):
        wm.WeightsMap(entries[:-1], base=base, motivated=big)
    a, b, target = keras.Variable(np.zeros((2, 2))), keras.Variable(np.zeros((2, 2))), keras.Variable(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="overlap"):
        wm.WeightsMap([(a, target, (0, 0)), (b, target, (1, 1))])
    wm.WeightsMap([(a, target, (0, 0)), (b, target, (2, 2))])  # side by side is fine
    half = keras.Variable(np.zeros((8,), "float16"))
    with pytest.raises(ValueError, match="dtypes differ"):
        wm.WeightsMap([(half, big.get_layer("a_bn0").gamma, None)])


@pytest.mark.parametrize(
    "name",
    # Depth maps, and EfficientNet B1->B2, which also widens (exact too: no layer mixes channels without weights).
    [
        "resnet8:resnet14",
        "resnet8:resnet20",
        "resnet20:resnet32",
        "resnet8:resnet8p14",
        "efficientnet_b0:efficientnet_b1",
        "efficientnet_b1:efficientnet_b2",
        "resnet50:resnet101",
    ],
)
def test_identity_start_makes_the_motivated_model_compute_the_base(name):
    from keras_motivation.weights_map import identity_start

    base, motivated, wmap = small_pair(name)
    zeroed = identity_start(wmap)
    assert zeroed
    wmap.copy_to_motivated()
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(
        motivated(x, training=False).numpy(), base(x, training=False).numpy(), rtol=1e-5, atol=1e-6
    )


def test_one_stage_resnets_map_their_extra_block_and_start_as_the_base():
    from keras_motivation.weights_map import identity_start
    from keras_motivation.weights_map import resnet_depth_map

    base = km.models.resnet_cifar(8, input_shape=(8, 8, 1), width=4, stages=1)
    motivated = km.models.resnet_cifar(14, input_shape=(8, 8, 1), width=4, stages=1)
    assert base.name == "resnet8_stages1"
    assert not [v for v in motivated.weights if "stage2" in v.path]
    wmap = resnet_depth_map(base, motivated)
    # A stage with one base block keeps it first: the second block is the one the base lacks.
    assert {p.split("/")[0] for p in identity_start(wmap)} == {"stage1_block1_bn2"}
    wmap.copy_to_motivated()
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(
        motivated(x, training=False).numpy(), base(x, training=False).numpy(), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="stages must be 1, 2 or 3, got 4"):
        km.models.resnet_cifar(8, stages=4)


# The documented gap for ViT: LayerNorm statistics over the wider embedding
# include the extra features. Measured on this pair (depth 2, patch 8, random
# weights): the paper's random start is far off, identity much closer.
VIT_IDENTITY_TOLERANCE = 0.5


def test_identity_start_on_a_width_map_keeps_the_base_channels_and_lets_the_extra_ones_learn():
    from keras_motivation.weights_map import identity_start

    base, motivated, wmap = small_pair("vit_tiny:vit_small")
    x = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)
    wmap.copy_to_motivated()
    paper_gap = np.abs(motivated(x, training=False).numpy() - base(x, training=False).numpy()).max()
    silenced = identity_start(wmap)
    assert any(p.endswith("attention/output/kernel") or p.endswith("output/kernel") for p in silenced), silenced
    wmap.copy_to_motivated()
    expected = base(x, training=False).numpy()
    gap = np.abs(motivated(x, training=False).numpy() - expected).max()
    assert gap < VIT_IDENTITY_TOLERANCE * paper_gap, (gap, paper_gap)
    # The extra features keep random incoming weights: they are not dead.
    head = motivated.layers[-1].kernel.numpy()
    assert np.all(head[base.layers[-1].kernel.shape[0] :] == 0)
    q = [v for v in motivated.weights if v.path.endswith("query/kernel")][0].numpy()
    d = [v for v in base.weights if v.path.endswith("query/kernel")][0].shape[0]
    assert np.all(q[d:] == 0) and np.any(q[:d, -1] != 0)


def test_branch_gammas_tell_the_differential_blocks_from_the_shared_ones():
    from keras_motivation.weights_map import branch_gammas
    from keras_motivation.weights_map import identity_start

    _, _, wmap = small_pair("resnet20:resnet32")
    identity_start(wmap, gamma=0.25)
    rows = branch_gammas(wmap)
    assert len(rows) == 15  # (32 - 2) / 6 blocks in each of 3 stages
    differential = {(stage, block): g for stage, block, d, g in rows if d}
    assert len(differential) == 6 and all(g == pytest.approx(0.25) for g in differential.values())
    assert all(g == pytest.approx(1.0) for *_, d, g in rows if not d)  # Keras' initial gamma


def test_identity_start_with_a_small_gamma_and_noise_sets_the_last_gammas_only():
    from keras_motivation.weights_map import differential_blocks
    from keras_motivation.weights_map import identity_start

    _, motivated, wmap = small_pair("resnet20:resnet32")
    set_gammas = identity_start(wmap, gamma=0.1, noise=0.01, seed=0)
    layers = {layer.name: layer for layer in motivated.layers}
    values = np.concatenate([layers[name].gamma.numpy() for name in set_gammas])
    assert len(set_gammas) == len(differential_blocks(wmap)) == 6
    assert abs(values.mean() - 0.1) < 0.005 and 0.005 < values.std() < 0.015
    # Seeded: the same start twice; the plain identity start zeroes them.
    again = small_pair("resnet20:resnet32")
    identity_start(again[2], gamma=0.1, noise=0.01, seed=0)
    again_layers = {layer.name: layer for layer in again[1].layers}
    np.testing.assert_array_equal(values, np.concatenate([again_layers[n].gamma.numpy() for n in set_gammas]))
    identity_start(wmap)
    assert all(not layers[name].gamma.numpy().any() for name in set_gammas)
    with pytest.raises(ValueError, match="gamma >= 0"):
        identity_start(wmap, gamma=-0.1)


# -- nested models: derive walks layer trees ----------------------------------


def _conv_bn(x, filters, name):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(name=f"{name}_bn")(x)


def _nested_cnn(blocks, width, name):
    """A classifier (functional) holding a backbone (a functional sub-model) with one stage of residual blocks."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.ReLU()(_conv_bn(inputs, width, "stem"))
    for b in range(blocks):
        y = keras.layers.ReLU()(_conv_bn(x, width, f"stage1_block{b}_1"))
        y = _conv_bn(y, width, f"stage1_block{b}_2")
        x = keras.layers.ReLU()(keras.layers.Add(name=f"stage1_block{b}_add")([x, y]))
    backbone = keras.Model(inputs, x, name=f"{name}_backbone")
    images = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(images))
    return keras.Model(images, keras.layers.Dense(5, activation="softmax", name="predictions")(pooled), name=name)


@keras.saving.register_keras_serializable(package="keras_motivation_tests")
class ResidualDense(keras.layers.Layer):
    """x + Dense(relu(LayerNorm(x))): a pre-norm block that holds its layers."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.norm = keras.layers.LayerNormalization(name="norm")
        self.dense = keras.layers.Dense(width, activation="relu", name="dense")

    def call(self, x):
        return x + self.dense(self.norm(x))

    def get_config(self):
        return {**super().get_config(), "width": self.width}


@keras.saving.register_keras_serializable(package="keras_motivation_tests")
class BlockStack(keras.layers.Layer):
    """A subclassed container of `residual_block_<i>` layers, built inside its own name scope."""

    def __init__(self, depth, width, **kwargs):
        super().__init__(**kwargs)
        self.depth, self.width = depth, width
        self.blocks = [ResidualDense(width, name=f"residual_block_{i}") for i in range(depth)]

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return x

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "width": self.width}


def _stacked_mlp(depth, width):
    inputs = keras.Input((6,))
    x = keras.layers.Dense(width, name="embed")(inputs)
    x = BlockStack(depth, width, name="encoder")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x))


def _dual_fit(base, motivated, wmap, x, y):
    model = km.MotivatedModel(base, motivated, wmap, km.conditions.ConsecutiveDecrease(1))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    return model


def test_derive_descends_into_a_nested_functional_model_and_trains():
    base, motivated = _nested_cnn(2, 4, "small"), _nested_cnn(3, 4, "big")
    wmap = wm.derive(base, motivated, depth="last_to_last")
    target = {e.base.path: e.motivated.path for e in wmap}
    # The backbones pair (different names, one per model); blocks map last to last inside them.
    assert target["stage1_block1_2_conv/kernel"] == "stage1_block2_2_conv/kernel"
    assert target["stage1_block0_1_bn/moving_mean"] == "stage1_block0_1_bn/moving_mean"
    assert target["predictions/kernel"] == "predictions/kernel"
    assert sorted(id(e.base) for e in wmap) == sorted(id(v) for v in wm.mapped_variables(base))
    # The identity start finds the nested differential block (block 1) and its last BatchNorm.
    assert wm.identity_start(wmap) == ["stage1_block1_2_bn"]
    assert set(wm.differential_blocks(wmap)) == {("big_backbone/stage1", "1")}
    wmap.copy_to_motivated()
    x = np.random.default_rng(0).random((32, 8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(motivated(x, training=False), base(x, training=False), rtol=1e-5, atol=1e-6)
    model = _dual_fit(base, motivated, wmap, x, np.random.default_rng(1).integers(0, 5, 32))
    assert model.counters()["motivated_steps"] > 0
    # After the run the base is the motivated model's slice (but for the BatchNorm statistics, each model's own).
    own = {id(v) for v in km.batch_norm.moving_statistics(base)}
    assert len(own) == 2 * 5  # stem and two blocks of two
    for e in wmap:
        if id(e.base) not in own:
            np.testing.assert_array_equal(mapped_block(e), e.base.numpy(), err_msg=e.base.path)


def test_derive_descends_into_a_subclassed_block_container_and_trains():
    base, motivated = _stacked_mlp(2, 4), _stacked_mlp(4, 8)
    wmap = wm.derive(base, motivated)
    target = {e.base.path: e.motivated.path for e in wmap}
    assert target == {
        f"{layer}/{v}": f"{layer}/{v}"
        for layer in ("embed", "head", *(f"encoder/residual_block_{i}/{r}" for i in (0, 1) for r in ("norm", "dense")))
        for v in (("gamma", "beta") if layer.endswith("norm") else ("kernel", "bias"))
    }
    assert any(tuple(e.base.shape) != tuple(e.motivated.shape) for e in wmap)
    assert {key for key in wm.differential_blocks(wmap)} == {
        ("encoder/residual_block", "2"),
        ("encoder/residual_block", "3"),
    }
    x = np.random.default_rng(0).random((32, 6), dtype=np.float32)
    model = _dual_fit(base, motivated, wmap, x, np.random.default_rng(1).integers(0, 3, 32))
    assert model.counters()["motivated_steps"] > 0


def test_derive_lists_every_unplaced_variable_of_a_nested_model_and_why():
    base, motivated = _stacked_mlp(3, 4), _stacked_mlp(2, 8)
    with pytest.raises(ValueError) as err:
        wm.derive(base, motivated)
    lines = str(err.value).splitlines()[1:]
    unplaced = [v for v in wm.mapped_variables(base) if "/residual_block_" in v.path]
    assert len(lines) == len(unplaced) == 12
    for v, line in zip(unplaced, lines):
        assert line.strip().startswith(v.path) and "has 3 blocks but the motivated stage only 2" in line
    small = _nested_cnn(1, 8, "small")
    with pytest.raises(ValueError, match=r"stem_conv/kernel \(3, 3, 3, 8\).*does not fit"):
        wm.derive(small, _nested_cnn(2, 4, "big"))


def test_keras_hub_pairs_say_how_to_install_keras_hub_where_it_is_missing(monkeypatch, tmp_path):
    from keras_motivation import config as config_lib
    from keras_motivation import trainer

    monkeypatch.setattr(km.models.hub, "available", lambda: False)
    assert km.models.unavailable("hub_resnet18:hub_resnet34") == km.models.hub.INSTALL
    assert km.models.unavailable("resnet8:resnet14") is None
    with pytest.raises(ValueError, match=r"need keras-hub: run tools/setup_venv.sh"):
        km.models.get_pair("hub_vit_tiny:hub_vit_small", num_classes=10, input_shape=(32, 32, 3))
    config = config_lib.TrainConfig(pair="hub_resnet18:hub_resnet34", workdir=str(tmp_path))
    with pytest.raises(trainer.ConfigError, match=r"--pair=hub_resnet18:hub_resnet34: keras-hub pairs need keras-hub"):
        trainer.check_config(config)


@keras.saving.register_keras_serializable(package="keras_motivation_tests")
class AttentionBlock(keras.layers.Layer):
    """A transformer block that adds its residuals in `call`; `post_norm` normalizes after each sum (as BERT)."""

    def __init__(self, width, post_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.width, self.post_norm = width, post_norm
        self.norm1 = keras.layers.LayerNormalization(name="norm1")
        self.attention = keras.layers.MultiHeadAttention(2, width // 2, name="attention")
        self.norm2 = keras.layers.LayerNormalization(name="norm2")
        self.mlp1 = keras.layers.Dense(2 * width, activation="gelu", name="mlp1")
        self.mlp2 = keras.layers.Dense(width, name="mlp2")

    def call(self, x):
        if self.post_norm:
            x = self.norm1(x + self.attention(x, x))
            return self.norm2(x + self.mlp2(self.mlp1(x)))
        y = self.norm1(x)
        x = x + self.attention(y, y)
        return x + self.mlp2(self.mlp1(self.norm2(x)))

    def get_config(self):
        return {**super().get_config(), "width": self.width, "post_norm": self.post_norm}


def _attention_model(depth, post_norm):
    inputs = keras.Input((3, 8))
    x = inputs
    for i in range(depth):
        x = AttentionBlock(8, post_norm, name=f"transformer_block_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x)))


def test_identity_start_of_attention_blocks_holds_for_pre_norm_and_is_refused_for_post_norm():
    base, motivated = _attention_model(1, False), _attention_model(2, False)
    wmap = wm.derive(base, motivated)
    assert wm.identity_start(wmap) == [
        "transformer_block_1/attention/attention_output/kernel",
        "transformer_block_1/mlp2/kernel",
    ]
    wmap.copy_to_motivated()
    x = np.random.default_rng(0).normal(size=(4, 3, 8)).astype("float32")
    np.testing.assert_allclose(motivated(x), base(x), rtol=1e-5, atol=1e-5)
    # Post-norm: zero branches leave LayerNorm(x), not x; the start is undone and the block named.
    base, motivated = _attention_model(1, True), _attention_model(2, True)
    wmap = wm.derive(base, motivated)
    before = [v.numpy().copy() for v in motivated.weights]
    with pytest.raises(ValueError, match=r"Differential block transformer_block/1 has no residual Add"):
        wm.identity_start(wmap)
    for b, v in zip(before, motivated.weights):
        np.testing.assert_array_equal(b, v.numpy(), err_msg=v.path)


@pytest.mark.parametrize(("name", "blocks"), [("resnet8p14", [1, 1, 4]), ("resnet8p20", [1, 1, 7])])
def test_prefix_resnets_append_the_extra_blocks_to_the_last_stage(name, blocks):
    model = km.models.build_model(name, 10, (16, 16, 3), width=4)
    assert model.name == name
    per_stage = [
        len({layer.name.split("_")[1] for layer in model.layers if layer.name.startswith(f"stage{s}_")})
        for s in (1, 2, 3)
    ]
    assert per_stage == blocks
    assert prefix_blocks(8, 32) == [1, 1, 13]
    with pytest.raises(ValueError, match="must be deeper than its base: got 14 inside 8"):
        km.models.prefix_resnet_cifar(14, 8)
    with pytest.raises(ValueError, match="depths must be 6n\\+2 with n >= 1 .*got 15"):
        km.models.prefix_resnet_cifar(8, 15)
    with pytest.raises(ValueError, match="blocks must be 3 counts >= 1"):
        km.models.resnet_cifar(8, blocks=[1, 1])


@pytest.mark.parametrize(
    ("name", "last_shared"),
    [("resnet8:resnet8p14", "stage3_block0_out"), ("vit_tiny_d2:vit_tiny_d4", "encoder_block1_add2")],
)
def test_a_prefix_pairs_base_is_the_first_part_of_the_motivated_forward(name, last_shared):
    base, motivated, wmap = small_pair(name)
    assert km.models.is_prefix_pair(name)
    differential = {layer.name for layer in motivated.layers if layer.weights} - {layer.name for layer in base.layers}
    order = [layer.name for layer in motivated.layers]
    assert min(order.index(n) for n in differential) > order.index(last_shared), sorted(differential)
    scramble([v for v in motivated.weights if "float" in str(v.dtype)], 1)
    wmap.copy_to_motivated()
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)

    def upto(model):
        return keras.Model(model.input, model.get_layer(last_shared).output)(x, training=False).numpy()

    # The same layers on the same input: the base's activations are the motivated model's.
    np.testing.assert_allclose(upto(motivated), upto(base), rtol=1e-6, atol=1e-6)


def test_registry_says_which_pairs_are_prefixes():
    assert km.models.is_prefix_pair("resnet8:resnet8p20")
    assert not km.models.is_prefix_pair("resnet8:resnet14")
    assert not km.models.is_prefix_pair("resnet8:resnet32")
    assert set(km.models.registry.PREFIX_PAIRS) <= set(km.models.list_pairs())
    with pytest.raises(ValueError, match="Unknown pair 'resnet8:resnet9'"):
        km.models.is_prefix_pair("resnet8:resnet9")
    with pytest.raises(ValueError, match="vit_tiny_d2 sets its depth in its name: .* use vit_tiny"):
        km.models.build_model("vit_tiny_d2", 10, (32, 32, 3), depth=3)


def test_a_prefix_ladder_maps_first_blocks_first_so_each_model_is_a_prefix_of_the_next():
    """resnet8:resnet8p14:resnet8p20 under the first-blocks rule (the paper's last-to-last rule would put
    [1, 1, 4]'s last block at [1, 1, 7]'s end); a balanced ladder keeps the paper's rule."""
    from keras_motivation.engine import shared_forward

    models, maps = km.models.get_ladder("resnet8:resnet8p14:resnet8p20", 10, (16, 16, 1), width=4)
    placed = {e.base.path: e.motivated.path for e in maps[1]}
    assert placed["stage3_block3_conv1/kernel"] == "stage3_block3_conv1/kernel"
    plan, why = shared_forward.find([km.weights_map.compose(maps), maps[1]])
    assert plan is not None, why
    assert all([layer.name for layer in t.model.layers[1:]] == ["pool", "logits"] for t in plan.tails)
    _, balanced = km.models.get_ladder("resnet8:resnet14:resnet20", 10, (16, 16, 1), width=4)
    placed = {e.base.path: e.motivated.path for e in balanced[1]}
    assert placed["stage3_block1_conv1/kernel"] == "stage3_block2_conv1/kernel"
