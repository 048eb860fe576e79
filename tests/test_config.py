"""config.py: each configuration fact once (help in the fields, lists next to their builders), and the command line."""

import dataclasses
import json
import os
import re

import keras
import numpy as np
import pytest
from absl import flags

from keras_motivation import config as config_lib
from keras_motivation import data
from keras_motivation import recipes
from keras_motivation import run_model
from keras_motivation import strategies
from keras_motivation import weights_map
from keras_motivation.config import ConfigError
from keras_motivation.config import TrainConfig
from keras_motivation.models import registry


def test_every_flag_is_a_field_with_its_help():
    values = flags.FlagValues()
    config_lib.define_flags(values)
    fields = dataclasses.fields(TrainConfig)
    assert {f.name for f in fields} == {name for name in values}
    for f in fields:
        assert f.metadata["help"] and values[f.name].help == f.metadata["help"], f.name


@pytest.mark.parametrize(
    "field, names",
    [
        ("optimizer", config_lib.OPTIMIZERS),
        ("schedule", config_lib.SCHEDULES),
        ("strategy", config_lib.STRATEGIES),
        ("augment", data.AUGMENTATIONS),
    ],
)
def test_help_names_every_choice_from_the_one_list(field, names):
    help_text = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}[field]
    for name in names:
        assert name in help_text, (field, name)


@pytest.mark.parametrize(
    "field, builders",
    [("optimizer", recipes.OPTIMIZERS), ("schedule", recipes.SCHEDULES), ("strategy", strategies.STRATEGIES)],
)
def test_choice_lists_are_the_builders_tables(field, builders):
    # What the user sees and what validate() lets through are the names the
    # builders' tables have, no more and no fewer.
    help_text = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}[field]
    listed = re.match(r"[a-z_]+(?:, [a-z_]+)* or [a-z_]+", help_text)
    assert listed, help_text
    assert sorted(re.split(", | or ", listed[0])) == sorted(builders)
    for name in builders:
        TrainConfig(**{field: name}, tpu="local" if name == "tpu" else None).validate()
    with pytest.raises(ConfigError, match=f"--{field} must be one of"):
        TrainConfig(**{field: "not_a_builder"}).validate()


@pytest.mark.parametrize("name", config_lib.OPTIMIZERS)
def test_every_listed_optimizer_builds(name):
    assert isinstance(recipes.optimizer(TrainConfig(optimizer=name).validate(), 10), keras.optimizers.Optimizer)


@pytest.mark.parametrize("name", config_lib.SCHEDULES)
def test_every_listed_schedule_builds(name):
    lr = recipes.learning_rate(TrainConfig(schedule=name, warmup_epochs=1.0).validate(), 10)
    value = float(lr(25) if callable(lr) else lr)
    assert 0 < value <= 0.1 + 1e-6


def test_an_unlisted_choice_names_the_list():
    with pytest.raises(ConfigError, match="--schedule must be one of.*cosine.*exponential.*constant"):
        TrainConfig(schedule="step").validate()
    with pytest.raises(ValueError, match="Unknown optimizer 'adagrad': use one of sgd, adamw"):
        recipes.optimizer(TrainConfig(optimizer="adagrad"), 10)
    with pytest.raises(ValueError, match="Unknown --strategy 'gpu'"):
        strategies.make_strategy(TrainConfig(strategy="gpu"))


def test_every_family_map_rule_is_a_weights_map_rule():
    assert set(registry.MAP_RULES.values()) <= set(weights_map.RULES)
    for pair in registry.list_pairs():
        assert registry.family(pair.split(":")[0]) in registry.MAP_RULES, pair


def test_command_line_to_config():
    config = config_lib.config_from_args(
        [
            "prog",
            "--pair=resnet20:resnet32",
            "--model_kwargs=width=8,sync_bn=True",
            "--augment=flip,mixup",
            "--image_size=32",
            "--k=2",
        ]
    )
    assert config.pair == "resnet20:resnet32" and config.k == 2 and config.image_size == 32
    assert config.model_kwargs == {"width": 8, "sync_bn": True}
    assert config.augment == ("flip", "mixup")
    assert config_lib.config_from_args(["prog"]) == TrainConfig()
    assert config_lib.parse_kwargs("a=1, b=x ,c=2.5e-4") == {"a": 1, "b": "x", "c": 2.5e-4}
    with pytest.raises(ValueError, match="key=value, got 'width'"):
        config_lib.parse_kwargs("width")


POLICY_FIELDS = ("condition", "joint", "joint_base_weight", "distillation", "differential_init", "rewarm_epochs")


def test_the_default_policy_is_the_studys_growth_arm():
    """The trainer's default is the arm the tuned studies (docs/studies/index.md) measured on both pairs, flag for
    flag."""
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
    import pay_study

    arm = pay_study.JOINT[pay_study.DEFAULT_ARM]
    measured = config_lib.config_from_args(["prog", *arm])
    default = TrainConfig(learning_rate=measured.learning_rate)
    assert {f: getattr(default, f) for f in POLICY_FIELDS} == {f: getattr(measured, f) for f in POLICY_FIELDS}
    assert default.bn_statistics == measured.bn_statistics
    assert (default.condition, default.joint, default.rewarm_epochs) == ("growth:epochs=0.45", True, 0.1)


@pytest.mark.parametrize("condition", ["consecutive", "never", "always", "random_share:share=0.5", "ema"])
def test_other_conditions_take_the_papers_policy_unless_asked(condition):
    # --condition alone takes the paper's policy (no joint step, no re-warm-up), now with the paper's start,
    # shared statistics and k = 2 as its flagfiles set them (the rows before the policy object kept the identity
    # start, recalibrated statistics and the default k).
    config = TrainConfig(condition=condition).validate()
    policy = (config.joint, config.joint_base_weight, config.differential_init, config.rewarm_epochs)
    assert policy == (False, 1.0, "paper", 0.0)
    assert (config.policy, config.k, config.bn_statistics) == ("paper", 2, "shared")
    asked = config_lib.config_from_args(["prog", f"--condition={condition}", "--joint", "--differential_init=paper"])
    assert (asked.joint, asked.joint_base_weight, asked.differential_init, asked.rewarm_epochs) == (
        True,
        1.0,
        "paper",
        0.0,
    )


def test_set_policy_flags_win_over_the_growth_defaults_and_are_saved_resolved():
    config = config_lib.config_from_args(["prog", "--nojoint", "--rewarm_epochs=0", "--differential_init=identity"])
    assert (config.condition, config.joint, config.rewarm_epochs, config.differential_init) == (
        "growth:epochs=0.45",
        False,
        0.0,
        "identity",
    )
    assert config.validate().joint_base_weight == 1.0  # no joint step: no weight of its base loss
    assert config_lib.config_from_args(["prog", "--joint_base_weight=1"]).joint_base_weight == 1.0
    # config.json holds the values the run used, not "unset": a resumed run compares like with like.
    saved = json.loads(TrainConfig().to_json())
    policy = ("policy", "joint", "joint_base_weight", "differential_init", "rewarm_epochs", "k", "bn_statistics")
    assert [saved[name] for name in policy] == ["default", True, 2.0, "paper", 0.1, 3, "recalibrated"]
    assert TrainConfig.from_json(TrainConfig().to_json()) == TrainConfig()
    assert not TrainConfig().incompatibilities(config_lib.config_from_args(["prog"]))


def test_build_motivated_model_builds_two_distinct_models():
    """The config's pair: two models of their own variables (what trains one leaves the other), the base the
    smaller, each the architecture --pair names, and the map between them."""
    config = TrainConfig(model_kwargs={"width": 4})
    model = run_model.build_motivated_model(config, num_classes=10, shape=(28, 28, 1))
    base, motivated = model.base, model.motivated
    assert base is not motivated and not {id(v) for v in base.weights} & {id(v) for v in motivated.weights}
    depths = [int(name[len("resnet") :]) for name in config.pair.split(":")]
    blocks = [sum(1 for layer in m.layers if layer.name.endswith("_out")) for m in (base, motivated)]
    assert blocks == [(d - 2) // 2 for d in depths]  # a CIFAR ResNet-d has (d - 2) / 2 blocks
    assert base.count_params() < motivated.count_params()
    assert model.weights_map.base is base and model.weights_map.motivated is motivated
    before = [v.numpy() for v in motivated.weights]
    for v in base.trainable_weights:
        v.assign(np.zeros(v.shape, v.dtype))
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, motivated.weights))


def test_a_default_config_builds_the_default_policy():
    """No policy flag: growth, joint steps with the base's loss weighted 2, the differential layers as
    initialised (the paper's start), the rate re-warmed at the growth step."""
    config = TrainConfig(model_kwargs={"width": 4}, epochs=2, learning_rate=0.1, schedule="constant").validate()
    model = run_model.build_motivated_model(config, num_classes=10, shape=(28, 28, 1))
    assert type(model.condition).__name__ == "Growth"
    assert model.joint.get_config()["base_weight"] == 2.0
    differential = [g for *_, d, g in weights_map.branch_gammas(model.weights_map) if d]
    assert differential and all(abs(g - 1.0) < 1e-6 for g in differential)  # Keras' initial gamma: no start
    lr = recipes.learning_rate(config, 100)  # growth at step 45, re-warmed over 10 steps
    assert isinstance(lr, recipes.Rewarmed) and (lr.at_step, lr.warmup_steps) == (45, 10)
    assert [round(float(lr(step)), 4) for step in (44, 45, 54)] == [0.1, 0.01, 0.1]


def test_the_condition_spec_is_parsed_once_and_flows_to_every_reader(monkeypatch):
    """One parse of --condition for a run: the config's check, its policy, the model's condition, the
    learning-rate recipe, whether the data keeps a held-out batch and the summary's statistics read the
    config's one ConditionSpec."""
    from keras_motivation import conditions
    from keras_motivation import summary

    parses = []
    parse = conditions.ConditionSpec.parse.__func__
    monkeypatch.setattr(
        conditions.ConditionSpec, "parse", classmethod(lambda cls, text: parses.append(text) or parse(cls, text))
    )
    config = TrainConfig(condition="growth:epochs=0.45", model_kwargs={"width": 4}, epochs=2).validate()
    model = run_model.build_motivated_model(config, num_classes=10, shape=(28, 28, 1))
    recipes.learning_rate(config, 100)
    assert not config.condition_spec.takes_heldout
    counters = {"steps": 10, "motivated_steps": 5, "switches": 1, "activations": 1, "recalibration_batches": 0}
    summary.motivation_statistics(counters, config.condition_spec, config.k)
    assert type(model.condition).__name__ == "Growth"
    assert parses == ["growth:epochs=0.45"]
    assert config.resolved_policy().condition is config.condition_spec


def test_condition_help_names_every_condition():
    import re

    from keras_motivation import conditions

    help_text = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}["condition"]
    for name in conditions.BY_NAME:  # whole words: "random" inside "matched_random" does not count
        assert re.search(rf"\b{name}\b", help_text), name


@pytest.mark.parametrize(
    "spec, start",
    [
        ("paper", None),
        ("identity", {}),
        ("identity:gamma=0.1", {"gamma": 0.1}),
        ("identity:gamma=0.25,noise=0.01", {"gamma": 0.25, "noise": 0.01}),
    ],
)
def test_differential_init_specs(spec, start):
    assert config_lib.differential_start(spec) == start
    assert TrainConfig(differential_init=spec).validate().differential_init == spec


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"differential_init": "paper:gamma=0.1"}, "must be paper, identity or identity:gamma=G,noise=S"),
        ({"differential_init": "identity:gamma=-1"}, "bad part 'gamma=-1'"),
        ({"differential_init": "identity:beta=1"}, "bad part 'beta=1'"),
        ({"condition": "consecutive", "distillation": 0.5}, "add --joint"),
        ({"joint": True, "distillation": 1.5}, "--distillation must be in"),
        ({"rewarm_epochs": -1.0}, "--rewarm_epochs must be >= 0"),
        ({"condition": "consecutive", "rewarm_epochs": 0.1}, "use it with --condition=growth"),
        ({"backup_every": 0}, "--backup_every must be >= 1"),
        ({"backup_every_s": -1.0}, r"--backup_every_s must be >= 0 \(0: off\)"),
    ],
)
def test_bad_starts_and_joint_flags_fail_in_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig(**kwargs).validate()
    assert "\n" not in str(info.value)


def test_help_lists_every_flag_with_its_field_help():
    """`--help` shows the main module's flags: the ones config.py defines must be adopted by train.py."""
    import subprocess
    import sys

    from testing_utils import repository_env

    env = repository_env()
    out = subprocess.run(
        [sys.executable, "-m", "keras_motivation.train", "--help"], capture_output=True, text=True, timeout=300, env=env
    )
    text = " ".join(out.stdout.split())  # absl's --help exits with 1
    assert "Trains a motivated pair" in text, out.stderr[-2000:]
    for f in dataclasses.fields(TrainConfig):
        assert f"--{f.name}:" in text or f"--[no]{f.name}:" in text, f.name
    assert "sgd, adamw, adam, rmsprop or lamb" in text
    # --policy's help shows both policies side by side, field by field.
    assert "rewarm_epochs: 0.1 (default), 0.0 (paper); bn_statistics: recalibrated (default), shared (paper)" in text
