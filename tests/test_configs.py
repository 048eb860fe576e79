"""Every flagfile in configs/ parses, opens with its command, and trains a step on mock data."""

import glob
import json
import os

import pytest
from testing_utils import TINY_MODEL_FLAG

from keras_motivation import config as config_lib
from keras_motivation import data
from keras_motivation import models
from keras_motivation import run_model
from keras_motivation import trainer
from keras_motivation.data import sources

CONFIGS = sorted(
    glob.glob(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "*.flags"))
)
# Tracing the train step of these pairs takes 1-3 minutes each on 2 CPU cores
# (ResNet-20/32: 25 s): they run with -m slow; the default suite runs their
# recipe on a small model of the same config (test_config_recipe_on_a_small_model).
SLOW = {
    "resnet_cifar10.flags",
    "resnet_cifar100.flags",
    "resnet_imagenet.flags",
    "transfer_cifar10.flags",
    "transfer_cifar100.flags",
    "transfer_oxford_flowers102.flags",
    "transfer_oxford_iiit_pet.flags",
    "effnet.flags",
    "vit_cifar10.flags",
}
SMALL = {"vit_cifar10.flags": ["--model_kwargs=depth=1,patch_size=8"]}


def test_there_are_configs():
    names = {os.path.basename(c) for c in CONFIGS}
    assert {
        "quickstart.flags",
        "resnet_cifar10.flags",
        "resnet_cifar100.flags",
        "vit_cifar10.flags",
        "effnet.flags",
        "resnet_imagenet.flags",
    } <= names
    assert {f"transfer_{d}.flags" for d in ("cifar10", "cifar100", "oxford_flowers102", "oxford_iiit_pet")} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_parses_and_opens_with_its_command(path):
    with open(path) as f:
        first = f.readline()
    assert first.startswith("# python -m keras_motivation.train --flagfile=configs/" + os.path.basename(path))
    config = config_lib.config_from_args(["train", f"--flagfile={path}"]).validate()
    assert config.pair in models.list_pairs()
    data.dataset_info(config.dataset)


@pytest.mark.parametrize("path", [c for c in CONFIGS if not c.endswith("quickstart.flags")], ids=os.path.basename)
def test_the_papers_flagfiles_say_policy_paper_instead_of_its_fields(path):
    import dataclasses

    from keras_motivation import policy

    with open(path) as f:
        flags = [line.strip().partition("=")[0] for line in f if line.startswith("--")]
    assert "--policy" in flags
    assert not {"--k", "--joint", "--nojoint", "--differential_init", "--bn_statistics"} & set(flags)
    config = config_lib.config_from_args(["train", f"--flagfile={path}"]).validate()
    condition = "never" if os.path.basename(path).startswith("transfer_") else "consecutive"
    assert config.resolved_policy() == dataclasses.replace(policy.PAPER, condition=condition)


@pytest.fixture(autouse=True)
def _download_hosts_answer(monkeypatch):
    """Mock data stands for a dataset tfds downloads on first use: its hosts "answer"
    (tfds.testing.mock_data makes download_and_prepare a no-op)."""
    monkeypatch.setattr(sources, "unreachable_hosts", lambda hosts, timeout=5.0: [])


def _mock_run(path, tmp_path, extra=()):
    import tensorflow_datasets as tfds

    config = config_lib.config_from_args(
        [
            "train",
            f"--flagfile={path}",
            "--epochs=1",
            "--batch_size=4",
            "--train_size=8",
            "--eval_size=8",
            "--image_size=32",
            "--warmup_epochs=0",
            "--verbose=0",
            f"--workdir={tmp_path / 'run'}",
            *extra,
        ]
    )
    if config.init_from:
        pytest.skip("transfer configs need a previous run: see test_transfer")
    with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
        return trainer.run(config)


@pytest.mark.parametrize(
    "path",
    [pytest.param(c, marks=pytest.mark.slow) if os.path.basename(c) in SLOW else c for c in CONFIGS],
    ids=os.path.basename,
)
def test_config_trains_two_steps_on_mock_data(path, tmp_path):
    if os.path.basename(path) == "quickstart.flags" and not os.path.isdir(data.FASHION_MNIST_DIRS[0]):
        pytest.skip("the quickstart reads Debian's dataset-fashion-mnist")
    summary = _mock_run(path, tmp_path)
    assert summary["activations"]["steps"] == 2
    with open(tmp_path / "run" / "summary.json") as f:
        assert json.load(f)["pair"] == summary["pair"]


@pytest.mark.parametrize(
    "name",
    sorted(
        SLOW
        - {
            "resnet_cifar10.flags",  # its recipe on the small pair: test_transfer_from_a_motivated_model_...
            "transfer_cifar10.flags",
            "transfer_cifar100.flags",
            "transfer_oxford_flowers102.flags",
            "transfer_oxford_iiit_pet.flags",
        }
    ),
)
def test_config_recipe_on_a_small_model(name, tmp_path):
    """The recipe of a slow config (optimizer, schedule, augmentation, data) on a small model."""
    path = [c for c in CONFIGS if os.path.basename(c) == name][0]
    extra = SMALL.get(name, ["--pair=resnet8:resnet14", TINY_MODEL_FLAG])
    summary = _mock_run(path, tmp_path, extra)
    assert summary["activations"]["steps"] == 2


def test_transfer_from_a_motivated_model_with_a_new_head(tmp_path):
    """Fine-tune from a finished run's motivated model on another (mock) dataset."""
    import keras
    import numpy as np
    import tensorflow_datasets as tfds

    configs = os.path.dirname(CONFIGS[0])
    common = [
        "--epochs=1",
        "--batch_size=4",
        "--train_size=8",
        "--verbose=0",
        TINY_MODEL_FLAG,
        "--pair=resnet8:resnet14",
    ]
    source_dir = tmp_path / "source"
    with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
        trainer.run(
            config_lib.config_from_args(
                ["train", f"--flagfile={configs}/resnet_cifar10.flags", *common, f"--workdir={source_dir}"]
            )
        )
        target = config_lib.config_from_args(
            [
                "train",
                f"--flagfile={configs}/transfer_cifar100.flags",
                *common,
                "--image_size=32",
                "--condition=consecutive",
                "--warmup_epochs=0",
                "--augment=",
                f"--init_from={source_dir}",
                "--init_from_model=motivated",
                f"--workdir={tmp_path / 'target'}",
            ]
        )
        model = run_model.build_motivated_model(target, num_classes=100, shape=(32, 32, 3))
        summary = trainer.run(target)
    src = keras.models.load_model(source_dir / "final" / "motivated.keras")
    # Every layer but the head starts from the source's motivated model ...
    for name in ("stem_conv", "stage1_block0_conv1", "stage1_block1_bn2"):
        for a, b in zip(model.motivated.get_layer(name).weights, src.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(
        model.base.get_layer("stem_conv").kernel.numpy(), src.get_layer("stem_conv").kernel.numpy()
    )
    # ... the head is new, for 100 classes, and the fine-tuning run trains it.
    assert model.motivated.get_layer("logits").kernel.shape[-1] == 100
    assert src.get_layer("logits").kernel.shape[-1] == 10
    assert summary["num_classes"] == 100 and summary["activations"]["steps"] == 2


def test_the_quickstart_trains_the_default_policy_and_names_the_papers_one_flag_away():
    import shlex

    from keras_motivation.config import TrainConfig

    path = next(c for c in CONFIGS if os.path.basename(c) == "quickstart.flags")
    quickstart = config_lib.config_from_args(["train", f"--flagfile={path}"])
    default = TrainConfig()
    # No policy flag in the flagfile: the trainer's default policy, at the tuned study's rate for the dual arms.
    policy = (
        "condition",
        "k",
        "joint",
        "joint_base_weight",
        "distillation",
        "differential_init",
        "rewarm_epochs",
        "bn_statistics",
    )
    assert {f: getattr(quickstart, f) for f in policy} == {f: getattr(default, f) for f in policy}
    assert quickstart.learning_rate == 0.1
    with open(path) as f:
        lines = f.read().splitlines()
        flags = [line.split("=", 1)[0] for line in lines if line.startswith("--")]
    assert not {"--condition", "--k", "--nojoint", "--joint", "--differential_init"} & set(flags), flags
    # The indented comment line: the paper's policy, one flag after the quickstart's command.
    argv = shlex.split(next(line[1:].strip() for line in lines if line.startswith("#  ")))
    assert argv == ["python", "-m", "keras_motivation.train", "--flagfile=configs/quickstart.flags", "--policy=paper"]
    paper = config_lib.config_from_args(["train", f"--flagfile={path}", *argv[4:]])
    assert (paper.condition.split(":")[0], paper.k, paper.joint) == ("consecutive", 2, False)


def test_the_quickstart_is_the_prefix_studys_default_run_so_its_references_are_that_studys():
    """The quickstart trains what the committed study tools/examples/pay_study_prefix14 ran as the default policy
    (the same pair, data, budget and recipe), so the networks trained alone there are its references at the same
    budget. `k` differs and is inert: the growth condition takes none."""
    from keras_motivation import conditions

    path = next(c for c in CONFIGS if os.path.basename(c) == "quickstart.flags")
    quickstart = config_lib.config_from_args(["train", f"--flagfile={path}"])
    study = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "examples")
    arm = os.path.join(study, "pay_study_prefix14", "ep6", "grow0.45-joint-paper-bw2-rewarm0.1-recalibrated-lr0.1")
    with open(os.path.join(arm, "seed0", "config.json")) as f:
        committed = config_lib.TrainConfig.from_json(f.read())
    assert committed.incompatibilities(quickstart) == ["k"], committed.incompatibilities(quickstart)
    assert not conditions.ConditionSpec.parse(quickstart.condition).condition_class.takes_k
    assert (quickstart.pair, quickstart.epochs, quickstart.seed) == ("resnet8:resnet8p14", 6, 0)
    # The committed quickstart run is that config.
    with open(os.path.join(study, "quickstart", "config.json")) as f:
        run = config_lib.TrainConfig.from_json(f.read())
    assert not run.incompatibilities(quickstart), run.incompatibilities(quickstart)
