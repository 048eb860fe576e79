"""policy.py: the two named policies, the object MotivatedModel takes, and how the config resolves them."""

import dataclasses
import json

import numpy as np
import pytest

from keras_motivation import conditions
from keras_motivation import config as config_lib
from keras_motivation import policy
from keras_motivation.config import ConfigError
from keras_motivation.config import TrainConfig
from keras_motivation.engine import JointStep


def test_the_named_policies():
    assert policy.POLICIES == {"default": policy.DEFAULT, "paper": policy.PAPER}
    assert policy.get("paper") is policy.PAPER
    assert dataclasses.asdict(policy.DEFAULT) == {
        "condition": "growth:epochs=0.45",
        "k": 3,
        "joint": True,
        "joint_base_weight": 2.0,
        "distillation": 0.0,
        "joint_weights": "",
        "equilibrium": False,
        "distillation_teachers": "largest",
        "differential_init": "paper",
        "rewarm_epochs": 0.1,
        "bn_statistics": "recalibrated",
    }
    assert dataclasses.asdict(policy.PAPER) == {
        "condition": "consecutive",
        "k": 2,
        "joint": False,
        "joint_base_weight": 1.0,
        "distillation": 0.0,
        "joint_weights": "",
        "equilibrium": False,
        "distillation_teachers": "largest",
        "differential_init": "paper",
        "rewarm_epochs": 0.0,
        "bn_statistics": "shared",
    }
    with pytest.raises(ValueError, match="^Unknown policy 'papers': use one of default, paper.$"):
        policy.get("papers")
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.DEFAULT.k = 2


def test_model_arguments_are_motivated_models_for_the_policys_parts():
    default = policy.DEFAULT.model_arguments()
    assert set(default) == {"condition", "joint", "bn_statistics"}
    assert isinstance(default["condition"], conditions.Growth) and default["condition"].epochs == 0.45
    assert isinstance(default["joint"], JointStep) and default["joint"].base_weight == 2.0
    assert default["bn_statistics"] == "recalibrated"
    paper = policy.PAPER.model_arguments()
    assert isinstance(paper["condition"], conditions.ConsecutiveDecrease) and paper["condition"].k == 2
    assert paper["joint"] is None and paper["bn_statistics"] == "shared"
    # The run's seed and held-out batch reach the conditions that take them.
    heldout = (np.zeros((2, 4, 4, 1), np.float32), np.zeros((2,), np.int32))
    share = dataclasses.replace(policy.PAPER, condition="random_share:share=0.5").model_arguments(seed=7)
    assert share["condition"].seed == 7
    valloss = dataclasses.replace(policy.PAPER, condition="valloss").model_arguments(heldout=heldout)
    assert valloss["condition"].k == 2


def test_motivated_model_takes_the_policys_arguments():
    from testing_utils import tiny_pair

    import keras_motivation as km

    base, motivated = tiny_pair()
    model = km.MotivatedModel(base, motivated, "resnet_depth", **policy.DEFAULT.model_arguments())
    assert isinstance(model.condition, conditions.Growth) and model.joint.base_weight == 2.0


def test_no_policy_flag_is_the_default_policy_resolved_and_saved():
    config = config_lib.config_from_args(["prog"])
    assert config.policy == "default" and config.resolved_policy() == policy.DEFAULT
    saved = json.loads(config.to_json())
    assert saved["policy"] == "default"
    assert {name: saved[name] for name in policy.FIELDS} == dataclasses.asdict(policy.DEFAULT)
    # A resumed run reads config.json back: every field set, the same config.
    assert TrainConfig.from_json(config.to_json()) == config


def test_the_policy_flag_fills_every_unset_field_and_a_set_flag_wins():
    paper = config_lib.config_from_args(["prog", "--policy=paper"])
    assert paper.resolved_policy() == policy.PAPER
    k3 = config_lib.config_from_args(["prog", "--policy=paper", "--k=3", "--bn_statistics=recalibrated"])
    assert k3.resolved_policy() == dataclasses.replace(policy.PAPER, k=3, bn_statistics="recalibrated")
    # The paper's policy with another condition: the transfer flagfiles' --condition=never.
    never = config_lib.config_from_args(["prog", "--policy=paper", "--condition=never"]).validate()
    assert never.resolved_policy() == dataclasses.replace(policy.PAPER, condition="never")
    with pytest.raises(ConfigError, match=r"^--policy must be default or paper, got 'fast'.$"):
        config_lib.config_from_args(["prog", "--policy=fast"])


@pytest.mark.parametrize(
    "condition, name",
    [
        ("growth:epochs=1", "default"),
        ("consecutive", "paper"),
        ("consecutive:k=3", "paper"),
        ("never", "paper"),
        ("always", "paper"),
        ("random_share:share=[0.2,0.5]", "paper"),
    ],
)
def test_without_the_policy_flag_the_condition_names_the_policy(condition, name):
    """--condition alone takes the policy whose condition has its name, else the paper's: another condition
    than growth never silently gets the default's joint steps (the trigger with joint steps measured worst)."""
    config = config_lib.config_from_args(["prog", f"--condition={condition}"]).validate()
    assert config.policy == name
    assert config.resolved_policy() == dataclasses.replace(policy.get(name), condition=condition)
    assert config.joint == (name == "default")


def test_the_papers_trigger_with_joint_steps_only_when_asked():
    asked = config_lib.config_from_args(["prog", "--condition=consecutive", "--joint"]).validate()
    assert (asked.policy, asked.joint, asked.joint_base_weight, asked.rewarm_epochs) == ("paper", True, 1.0, 0.0)
    # --policy=default with another condition would take growth's joint step and re-warm-up: refused in one line.
    with pytest.raises(ConfigError) as info:
        config_lib.config_from_args(["prog", "--policy=default", "--condition=consecutive"])
    message = str(info.value)
    assert message.startswith("--policy=default's joint step and re-warm-up belong to its condition growth")
    assert "use --policy=paper" in message and "\n" not in message
    explicit = config_lib.config_from_args(
        ["prog", "--policy=default", "--condition=consecutive", "--nojoint", "--rewarm_epochs=0"]
    ).validate()
    assert (explicit.joint, explicit.joint_base_weight, explicit.k, explicit.bn_statistics) == (
        False,
        1.0,
        3,
        "recalibrated",
    )


def test_without_a_joint_step_its_weights_are_neutral():
    config = config_lib.config_from_args(["prog", "--nojoint", "--rewarm_epochs=0"]).validate()
    assert (config.policy, config.joint, config.joint_base_weight, config.distillation) == ("default", False, 1.0, 0.0)


def test_a_bad_condition_is_a_config_error_before_any_work():
    with pytest.raises(ConfigError, match=r"^--condition=never:k=3: Condition 'never' has no argument 'k'"):
        TrainConfig(condition="never:k=3").validate()
    with pytest.raises(ConfigError, match=r"^--condition=bogus: Unknown condition 'bogus'"):
        TrainConfig(condition="bogus").validate()


def test_a_resumed_run_compares_the_resolved_fields_not_the_name():
    default = TrainConfig()
    # The same resolved fields under another name: nothing of the run changes.
    same = TrainConfig(**{**{name: getattr(default, name) for name in policy.FIELDS}, "policy": "default"})
    assert not default.incompatibilities(same)
    assert default.incompatibilities(TrainConfig(policy="paper")) == [
        "bn_statistics",
        "condition",
        "joint",
        "joint_base_weight",
        "k",
        "rewarm_epochs",
    ]


def test_every_policy_field_is_a_flag_with_both_policies_in_its_help():
    help_text = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}
    for name in policy.FIELDS:
        assert help_text[name].endswith(f"Default: the policy's, {policy.side_by_side(name)}."), name
        assert name in help_text["policy"]
    assert "k: 3 (default), 2 (paper)" in help_text["policy"]
    assert "joint: on (default), off (paper)" in help_text["policy"]


def test_motivated_model_takes_a_policy_for_what_the_call_leaves_unset():
    from testing_utils import tiny_pair

    import keras_motivation as km
    from keras_motivation import conditions

    model = km.MotivatedModel(*tiny_pair(), policy="paper")
    assert isinstance(model.condition, conditions.ConsecutiveDecrease) and model.condition.k == 2
    assert model.joint is None and model.bn_statistics == "shared"
    model = km.MotivatedModel(*tiny_pair(), policy=policy.DEFAULT, bn_statistics="private")
    assert isinstance(model.condition, conditions.Growth) and model.joint.base_weight == 2.0
    assert model.bn_statistics == "private"


def test_the_joint_step_options_flow_from_the_flags_to_the_model():
    from keras_motivation import run_model

    argv = ["prog", "--pair=resnet8:resnet14:resnet20", "--model_kwargs=width=4", "--joint_weights=2,0.5,1"]
    config = config_lib.config_from_args([*argv, "--equilibrium", "--distillation=0.5", "--distillation_teachers=all"])
    config.validate()
    joint = run_model.build_motivated_model(config, num_classes=10, shape=(28, 28, 1)).joint
    assert (joint.weights, joint.equilibrium, joint.distillation, joint.distillation_teachers) == (
        (2.0, 0.5, 1.0),
        True,
        0.5,
        "all",
    )
    # The policy's joint step without the new flags: the base weight, no equilibrium.
    assert policy.DEFAULT.model_arguments()["joint"].get_config() == JointStep(base_weight=2.0).get_config()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--joint_weights=2,1,1"], "3 weights for the 2 models of --pair=resnet8:resnet14"),
        (["--joint_weights=2,x"], "--joint_weights: the joint weights must be two or more numbers"),
        (["--joint_weights=2,1", "--joint_base_weight=3"], "put it in --joint_weights"),
        (["--nojoint", "--rewarm_epochs=0", "--equilibrium"], "add --joint"),
        (["--distillation_teachers=every"], "--distillation_teachers must be largest or all"),
    ],
)
def test_bad_joint_step_options_fail_in_one_line(argv, message):
    with pytest.raises(ConfigError, match=message) as info:
        config_lib.config_from_args(["prog", *argv]).validate()
    assert "\n" not in str(info.value)


def test_a_config_from_before_the_joint_step_options_resumes_without_them():
    """An old config.json lacks the new policy fields: it trained without them, whatever a policy says now."""
    saved = json.loads(TrainConfig().to_json())
    for name in policy.ADDED_FIELDS:
        del saved[name]
    old = TrainConfig.from_json(json.dumps(saved))
    assert (old.joint_weights, old.equilibrium, old.distillation_teachers) == ("", False, "largest")
    assert not old.incompatibilities(TrainConfig())
