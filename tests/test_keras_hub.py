"""Pairs of keras-hub classifiers, as a user builds them: derive, identity start, a dual fit, save, reload, export.

Tiny configurations of each family (no preset is downloaded); keras-hub comes with the `hub` set-up
(tools/setup_venv.sh installs it by default).
"""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from testing_utils import page_section
from testing_utils import quickstart_command
from testing_utils import read_page
from testing_utils import repository_env
from testing_utils import requires_fashion_mnist
from testing_utils import run_snippet

import keras_motivation as km
from keras_motivation import export
from keras_motivation import flops
from keras_motivation import weights_map as wm

keras_hub = pytest.importorskip(
    "keras_hub",
    reason="needs keras-hub: tools/setup_venv.sh installs it (KERAS_MOTIVATION_EXTRAS with hub), "
    'or pip install -e ".[hub]" && pip install --no-deps "keras-hub==0.32.*"',
)

IMAGE = (16, 16, 3)


def hub_resnet(blocks, block_type="basic_block"):
    # keras-hub requires 64 filters in the first stack (and, for basic blocks, a 64-channel stem).
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16],
        stackwise_num_blocks=list(blocks),
        stackwise_num_strides=[1, 2],
        block_type=block_type,
        image_shape=IMAGE,
    )
    return keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=5, activation="softmax")


def hub_vit(depth, hidden_dim=16, heads=2):
    backbone = keras_hub.models.ViTBackbone(
        image_shape=IMAGE, patch_size=8, num_layers=depth, num_heads=heads, hidden_dim=hidden_dim, mlp_dim=32
    )
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=5, activation="softmax")


def hub_efficientnet(repeats, width=1.0):
    """Two stages of EfficientNet-B0's first kind of blocks (MBConv with squeeze-excite), `repeats` blocks each."""
    backbone = keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[width] * 2,
        stackwise_depth_coefficients=[1.0] * 2,
        stackwise_kernel_sizes=[3, 3],
        stackwise_num_repeats=list(repeats),
        stackwise_input_filters=[16, 16],
        stackwise_output_filters=[16, 24],
        stackwise_expansion_ratios=[1, 6],
        stackwise_squeeze_and_excite_ratios=[0.25, 0.25],
        stackwise_strides=[1, 2],
        stackwise_block_types=["v1", "v1"],
        stackwise_force_input_filters=[0, 0],
        stackwise_nores_option=[False, False],
        num_features=64,
        input_shape=IMAGE,
    )
    return keras_hub.models.EfficientNetImageClassifier(backbone=backbone, num_classes=5, activation="softmax")


def images(n, seed=0):
    return np.random.default_rng(seed).random((n, *IMAGE), dtype=np.float32)


@pytest.mark.parametrize(
    "block_type, last_bn", [("basic_block", "2_bn"), ("bottleneck_block", "3_bn")], ids=["basic", "bottleneck"]
)
def test_keras_hub_resnets_map_last_block_to_last_and_start_as_the_base(block_type, last_bn):
    base, motivated = hub_resnet([1, 2], block_type), hub_resnet([2, 3], block_type)
    wmap = wm.derive(base, motivated, depth="last_to_last")
    target = {e.base.path: e.motivated.path for e in wmap}
    assert target["stack1_block1_1_conv/kernel"] == "stack1_block2_1_conv/kernel"  # last to last
    assert target["stack0_block0_1_conv/kernel"] == "stack0_block0_1_conv/kernel"
    assert target["predictions/kernel"] == "predictions/kernel"
    assert all(tuple(e.base.shape) == tuple(e.motivated.shape) for e in wmap), "depth only"
    # The differential blocks (stack0 block 1, stack1 block 1) start as the identity: the last BatchNorm of
    # each residual branch has gamma 0, and the motivated classifier computes the base's function.
    assert wm.identity_start(wmap) == [f"stack0_block1_{last_bn}", f"stack1_block1_{last_bn}"]
    wmap.copy_to_motivated()
    x = images(4)
    np.testing.assert_allclose(motivated(x, training=False), base(x, training=False), rtol=1e-5, atol=1e-6)


def test_keras_hub_efficientnets_map_by_depth_and_by_width_and_start_as_the_base():
    x = images(4)
    base, motivated = hub_efficientnet([1, 2]), hub_efficientnet([2, 3])
    wmap = wm.derive(base, motivated)  # the paper's EfficientNet rule: the first blocks of each stage
    assert {e.base.path: e.motivated.path for e in wmap}["block2b_project/kernel"] == "block2b_project/kernel"
    assert wm.identity_start(wmap) == ["block1b_project_bn", "block2c_project_bn"]
    wmap.copy_to_motivated()
    np.testing.assert_allclose(motivated(x, training=False), base(x, training=False), rtol=1e-5, atol=1e-6)
    base, motivated = hub_efficientnet([1, 2]), hub_efficientnet([1, 2], width=1.5)
    wmap = wm.derive(base, motivated)
    assert any(tuple(e.base.shape) != tuple(e.motivated.shape) for e in wmap)
    assert wm.identity_start(wmap)
    wmap.copy_to_motivated()
    np.testing.assert_allclose(motivated(x, training=False), base(x, training=False), rtol=1e-5, atol=1e-6)


def test_keras_hub_vits_map_by_depth_and_by_width():
    base, motivated = hub_vit(2), hub_vit(4)
    wmap = wm.derive(base, motivated)
    target = {e.base.path: e.motivated.path for e in wmap}
    assert (
        target["vit_encoder/transformer_block_2/mha/query/kernel"] == "vit_encoder/transformer_block_2/mha/query/kernel"
    )
    assert {v.path.split("/")[1] for v in wmap.differential_variables() if v.path.startswith("vit_encoder/")} == {
        "transformer_block_3",
        "transformer_block_4",
    }
    # Its blocks add their residuals inside `call`: the identity start zeroes the output projections of the
    # differential blocks' attention and MLP, and the deeper ViT computes the base's function.
    started = wm.identity_start(wmap)
    assert sorted(started) == [
        f"vit_encoder/transformer_block_{i}/{p}/kernel" for i in (3, 4) for p in ("mha/attention_output", "mlp/dense_2")
    ]
    wmap.copy_to_motivated()
    x = images(4)
    np.testing.assert_allclose(motivated(x, training=False), base(x, training=False), rtol=1e-5, atol=1e-6)
    wide = wm.derive(hub_vit(2, 16, 2), hub_vit(2, 32, 4))
    assert all(tuple(e.base.shape) != tuple(e.motivated.shape) for e in wide if e.base.name == "kernel")
    assert "vit_encoder/transformer_block_1/mha/query/kernel" in wm.identity_start(wide)


def _fit(base, motivated, wmap, x, y):
    model = km.MotivatedModel(base, motivated, wmap, km.conditions.ConsecutiveDecrease(1))
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert model.counters()["motivated_steps"] > 0
    return model


@pytest.fixture(scope="module")
def trained_resnet_pair():
    # What the keras-hub guide (docs/guides/keras-hub.md) shows.
    base, motivated = hub_resnet([1, 2]), hub_resnet([2, 3])
    weights_map = km.weights_map.derive(base, motivated, depth="last_to_last")
    km.weights_map.identity_start(weights_map)
    return _fit(base, motivated, weights_map, images(32), np.random.default_rng(1).integers(0, 5, 32))


def test_keras_hub_classifiers_train_as_a_dual_run_then_save_reload_and_export(trained_resnet_pair, tmp_path):
    model = trained_resnet_pair
    probe = images(8, seed=2)
    for name, keras_model in (("base", model.base), ("motivated", model.motivated)):
        path = str(tmp_path / f"{name}.keras")
        keras_model.save(path)
        reloaded = keras.saving.load_model(path, compile=False)
        assert type(reloaded) is type(keras_model)
        np.testing.assert_allclose(reloaded(probe, training=False), keras_model(probe, training=False), atol=1e-6)
    # SavedModels with both serving signatures.
    paths = export.export_pair(
        model.base, model.motivated, str(tmp_path / "export"), image_size=IMAGE[:2], channels=IMAGE[2]
    )
    pixels = np.round(probe * 255)
    for name, keras_model in (("base", model.base), ("motivated", model.motivated)):
        served = tf.saved_model.load(os.path.join(paths[name], "1")).signatures["serving_images"]
        np.testing.assert_allclose(
            served(images=tf.constant(pixels))["probabilities"].numpy(),
            keras_model(pixels / 255, training=False),
            rtol=1e-4,
            atol=1e-5,
        )


# Slow (15 s): the pair as one .keras checkpoint and LiteRT; the test above covers each model's save and export.
@pytest.mark.slow
def test_keras_hub_pair_reloads_as_one_checkpoint_and_exports_to_litert(trained_resnet_pair, tmp_path):
    model = trained_resnet_pair
    probe = images(8, seed=2)
    model.save(str(tmp_path / "pair.keras"))
    pair = keras.saving.load_model(str(tmp_path / "pair.keras"))
    assert len(pair.weights_map) == len(model.weights_map)
    np.testing.assert_allclose(pair.predict(probe, verbose=0), model.predict(probe, verbose=0), atol=1e-6)
    litert = export.export_litert(model.base, str(tmp_path / "base.tflite"))
    interpreter = tf.lite.Interpreter(model_path=litert)
    interpreter.allocate_tensors()
    pixels = np.round(probe[:1] * 255)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
    interpreter.invoke()
    np.testing.assert_allclose(
        interpreter.get_tensor(interpreter.get_output_details()[0]["index"]),
        model.base.predict(pixels / 255, verbose=0),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "build, cut, parted",
    [
        (
            lambda: (hub_resnet([1, 2]), hub_resnet([2, 3]), {"depth": "last_to_last"}),
            ["stack0_block0_out"],
            {"stack1_block0_0_conv", "stack1_block0_1_pad"},
        ),
        # ViTEncoder runs every block inside one layer: its depth is its configuration, and the trunk ends before it.
        (lambda: (hub_vit(2), hub_vit(4), {}), ["vit_patching_and_embedding"], {"vit_encoder"}),
    ],
    ids=["resnet", "vit"],
)
def test_keras_hub_depth_pairs_share_the_trunk_inside_the_backbone_as_two_passes_would(build, cut, parted):
    """The trunk is found inside keras-hub's backbone, and three joint steps with momentum through it give the
    two-pass losses, weights and BatchNorm statistics."""
    x, y = images(24), np.random.default_rng(1).integers(0, 5, 24)
    runs = {}
    for shared in (False, True):
        keras.utils.set_random_seed(0)
        base, motivated, rule = build()
        wmap = wm.derive(base, motivated, **rule)
        model = km.MotivatedModel(
            base,
            motivated,
            wmap,
            km.conditions.Always(),
            bn_statistics="private",
            joint=km.JointStep(shared_forward=shared),
        )
        plan = model.shared_forward
        if shared:
            assert plan is not None, model.shared_forward_unavailable
            assert plan.cut == cut and set(plan.tails[0].parted) == parted
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        runs[shared] = history.history["loss"], [v.numpy() for m in model.rungs for v in m.weights]
    np.testing.assert_allclose(runs[False][0], runs[True][0], rtol=1e-5)
    for a, b in zip(runs[False][1], runs[True][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_registry_names_keras_hub_vit_depth_pairs():
    """hub_vit_tiny_d2 inside hub_vit_tiny_d4: ViT-Tiny's width, the two extra blocks after the base's."""
    base, motivated, wmap = km.models.get_pair(
        "hub_vit_tiny_d2:hub_vit_tiny_d4", num_classes=5, input_shape=(16, 16, 3), patch_size=8
    )
    assert [base.backbone.num_layers, motivated.backbone.num_layers] == [2, 4]
    assert base.backbone.hidden_dim == motivated.backbone.hidden_dim == 192
    assert {v.path.split("/")[1] for v in wmap.differential_variables() if v.path.startswith("vit_encoder/")} == {
        "transformer_block_3",
        "transformer_block_4",
    }
    wm.identity_start(wmap)
    wmap.copy_to_motivated()
    x = images(2)
    np.testing.assert_allclose(motivated(x, training=False), base(x, training=False), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="hub_vit_tiny_d2 sets its depth in its name: .* use hub_vit_tiny"):
        km.models.build_model("hub_vit_tiny_d2", 5, (16, 16, 3), patch_size=8, depth=3)


# Slow (15 s): a second dual fit; by default test_keras_hub_vits_map_by_depth_and_by_width covers the ViT map.
@pytest.mark.slow
def test_keras_hub_vit_pair_trains_as_a_dual_run():
    base, motivated = hub_vit(2), hub_vit(4)
    model = _fit(base, motivated, wm.derive(base, motivated), images(32), np.random.default_rng(1).integers(0, 5, 32))
    for e in model.weights_map:  # no BatchNorm: after the run every base variable is its slice
        np.testing.assert_array_equal(
            e.motivated.numpy()[tuple(slice(0, n) for n in e.base.shape)], e.base.numpy(), err_msg=e.base.path
        )


def test_a_base_loaded_from_a_local_preset_directory_starts_a_deeper_motivated_model(tmp_path):
    # The transfer workflow's start: a pretrained base from a preset (here one saved locally, no download)
    # and a deeper motivated model that, through the identity start, computes the base's function.
    hub_resnet([1, 2]).save_to_preset(str(tmp_path / "preset"))
    base = keras_hub.models.ImageClassifier.from_preset(str(tmp_path / "preset"))
    assert isinstance(base, keras_hub.models.ResNetImageClassifier)
    motivated = hub_resnet([2, 3])
    weights_map = wm.derive(base, motivated, depth="last_to_last")
    wm.identity_start(weights_map)
    weights_map.copy_to_motivated()
    x = images(4)
    np.testing.assert_allclose(motivated(x, training=False), base(x, training=False), rtol=1e-5, atol=1e-6)


# Slow (ResNet-18 with ResNet-34 for an epoch on 1,024 images, about 3 min): the keras-hub guide's lines as
# written (docs/guides/keras-hub.md), after the home page's complete example (which defines the data). The tests
# above run the same calls on tiny models.
@pytest.mark.slow
@requires_fashion_mnist
def test_the_keras_hub_guide_lines_run_as_written(tmp_path):
    first = re.findall(r"```python\n(.*?)```", page_section(read_page("index.md"), "A complete example"), re.S)[0]
    hub = re.findall(r"```python\n(.*?)```", read_page("guides/keras-hub.md"), re.S)[0]
    assert "keras_hub" in hub and "derive(base, motivated" in hub
    run = run_snippet(first + hub, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("base", "motivated"):
        assert (tmp_path / "export" / name / "1" / "saved_model.pb").exists(), name


# Slow (4 s for the ViT pair, 11 s and 25 s for the ResNets: 33M and 68M parameters): by default the tiny
# keras-hub models above cover the same classes and maps, and tests/test_models.py the registry's keras-hub path
# where keras-hub is missing.
@pytest.mark.slow
@pytest.mark.parametrize("name", [p for p in km.models.list_pairs() if p.startswith("hub_")])
def test_every_keras_hub_registry_pair_maps_round_trips_and_counts_flops(name):
    kwargs = dict(patch_size=8, depth=2) if "vit" in name else {}
    if "_d" in name:
        kwargs = dict(patch_size=8)  # the depth is in the name
    base, motivated, wmap = km.models.get_pair(name, num_classes=10, input_shape=(32, 32, 3), **kwargs)
    assert sorted(id(e.base) for e in wmap) == sorted(id(v) for v in wm.mapped_variables(base))
    for v in base.weights:
        v.assign(np.random.default_rng(0).normal(size=v.shape).astype(v.dtype))
    wmap.copy_to_motivated()
    for e in wmap:
        np.testing.assert_array_equal(
            e.motivated.numpy()[tuple(slice(0, n) for n in e.base.shape)], e.base.numpy(), err_msg=e.base.path
        )
    assert flops.count_macs(motivated) > flops.count_macs(base) > 0


# Slow (a trainer run, then every artefact reloaded in a fresh process, 90 s): --pair= names a keras-hub pair.
@pytest.mark.slow
@requires_fashion_mnist
def test_the_trainer_trains_counts_and_exports_a_keras_hub_pair(tmp_path):
    workdir = str(tmp_path / "run")
    flags = ["--pair=hub_vit_tiny:hub_vit_small", "--model_kwargs=patch_size=7,depth=2", "--export"]
    run = subprocess.run(
        quickstart_command(workdir, *flags), capture_output=True, text=True, env=repository_env(), timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["pair"] == "hub_vit_tiny:hub_vit_small"
    assert summary["training_flops"]["motivated_alone"] > summary["training_flops"]["total"] > 0
    check = subprocess.run(
        [sys.executable, "-m", "keras_motivation.export", f"--workdir={workdir}", "--check", "--check_images=32"],
        capture_output=True,
        text=True,
        env=repository_env(),
        timeout=900,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    rows = [line for line in check.stdout.splitlines() if line.startswith("| base") or line.startswith("| motivated")]
    assert len(rows) == 5 and all("| 100.0% |" in row for row in rows if "int8" not in row), rows
