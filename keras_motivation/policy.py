"""How a motivated pair trains, as one object: `Policy`, and the two named ones (`--policy=default|paper`).

A policy holds every choice of the algorithm that is not the recipe: the
condition (when the motivated model trains) and its k, the joint step and
its weights, the start of the differential layers, the re-warm-up of the
learning rate at the growth point and the BatchNorm statistics option.

- `DEFAULT`, the trainer's default: the policy measured closest to both
  separately trained networks on two pairs (docs/studies/index.md): the base
  alone for 0.45 epochs, then joint steps with the base's loss weighted 2,
  the differential layers as initialised (the paper's start), the rate
  re-warmed over 0.1 epochs, each model's statistics recomputed when read.
- `PAPER`, the paper's alternation as its flagfiles ran it: the motivated
  model trains once the raw batch loss fell k = 2 times in a row, no joint
  step, the paper's start, BatchNorm statistics shared with the weights.

The trainer (`config.TrainConfig`) takes every policy flag left unset from
the policy `--policy` names (a flag set on the command line wins). Without
`--policy` the condition chooses: `--condition` alone takes the policy whose
condition has its name (growth:... -> default, consecutive -> paper) and, for
a condition no policy has (never, always, random_share, ...), the paper's, so
another condition never silently gets the default's joint steps (the paper's
trigger with joint steps measured worst, docs/studies/index.md). An explicit
`--policy=default` with another condition than growth is refused unless
--joint and --rewarm_epochs are set too.

From Python, `MotivatedModel(base, motivated, weights_map, policy=km.policy.get("paper"))` (or any
`Policy`) builds the policy's condition, joint step and statistics option, as
`**policy.model_arguments()` does (the engine takes the object and imports nothing of this module); the start
(`weights_map.identity_start`) and the re-warm-up (`recipes.Rewarmed`) are
the trainer's.
"""

import dataclasses

from keras_motivation.conditions import ConditionSpec
from keras_motivation.engine.joint import JointStep


@dataclasses.dataclass(frozen=True)
class Policy:
    """One training policy: every choice of the algorithm that is not the recipe.

    `km.MotivatedModel(..., policy=km.policy.DEFAULT)` (or `km.policy.PAPER`, or any `Policy`) takes the
    condition, joint step and statistics option from it; `dataclasses.replace(km.policy.PAPER, k=3)` makes a
    variant.

    Attributes:
        condition (str): a `--condition` spec: "growth:epochs=0.45", "consecutive".
        k (int): the run's k, for the conditions that take one (the spec's own k wins).
        joint (bool): joint steps: the motivated model's batches also train the base.
        joint_base_weight (float): the base's loss weight in a joint step.
        distillation (float): share of the base's loss in a joint step from the motivated model's predictions.
        differential_init (str): the differential layers' start: paper, identity or identity:gamma=G,noise=S.
        rewarm_epochs (float): epochs over which the rate ramps up again from the growth point (growth only).
        bn_statistics (str): shared, private or recalibrated.
    """

    condition: ConditionSpec  # a --condition spec ("growth:epochs=0.45", "consecutive"; its text is parsed once)
    k: int  # the run's k, for the conditions that take one (the spec's own k wins)
    joint: bool  # joint steps: the motivated model's batches also train the base
    joint_base_weight: float  # the base's loss weight in a joint step
    distillation: float  # share of the base's loss in a joint step from the motivated model's predictions
    # Every model's loss weight in a joint step, smallest first ("2,1,1"), instead of joint_base_weight; "": unset.
    joint_weights: str
    equilibrium: bool  # a joint step's gradients: the weighted mean of the losses reaching a weight, not their sum
    distillation_teachers: str  # largest (the step's largest model) or all (every larger model)
    differential_init: str  # the differential layers' start: paper, identity or identity:gamma=G,noise=S
    rewarm_epochs: float  # epochs over which the rate ramps up again from the growth point (growth only)
    bn_statistics: str  # shared, private or recalibrated

    def __post_init__(self):
        object.__setattr__(self, "condition", ConditionSpec.of(self.condition))

    @property
    def condition_name(self):
        return self.condition.name

    def model_arguments(self, seed: int | None = None, heldout: tuple | None = None) -> dict:
        """The keyword arguments of `MotivatedModel` that this policy sets: `condition` (the condition object,
        with `k`, the run's `seed` and the held-out batch `(x, y)` filled in where it takes them), `joint` (a
        `JointStep`, or None) and `bn_statistics`. A bad condition spec is a one-line ValueError."""
        return {
            "condition": self.condition.build(k=self.k, seed=seed, heldout=heldout),
            "joint": JointStep(**self.joint_arguments()) if self.joint else None,
            "bn_statistics": self.bn_statistics,
        }

    def joint_arguments(self):
        """The `JointStep` arguments of this policy's joint step (its weights and distillation)."""
        weights = parse_weights(self.joint_weights)
        return {
            **({"weights": weights} if weights else {"base_weight": self.joint_base_weight}),
            "distillation": self.distillation,
            "equilibrium": self.equilibrium,
            "distillation_teachers": self.distillation_teachers,
        }


def parse_weights(text):
    """A --joint_weights spec ("2,1,1") as a list of floats; [] for ""; ValueError (one line) for a bad one."""
    try:
        weights = [float(w) for w in text.split(",")] if text else []
    except ValueError:
        weights = None
    if weights is None or any(w < 0 for w in weights) or len(weights) == 1:
        raise ValueError(f"the joint weights must be two or more numbers >= 0 separated by commas, got {text!r}.")
    return weights


FIELDS = tuple(field.name for field in dataclasses.fields(Policy))

DEFAULT = Policy(
    condition="growth:epochs=0.45",
    # 3 paid best of the trigger's k (the first study, docs/studies/does-it-pay.md); growth takes none.
    k=3,
    joint=True,
    joint_base_weight=2.0,
    distillation=0.0,
    joint_weights="",
    equilibrium=False,
    distillation_teachers="largest",
    differential_init="paper",
    rewarm_epochs=0.1,
    bn_statistics="recalibrated",
)
"""The trainer's default (`--policy=default`): the base alone for 0.45 epochs, then joint steps with the base's
loss weighted 2, the rate re-warmed over 0.1 epochs, each model's BatchNorm statistics recomputed when read."""
# The paper's alternation as its flagfiles ran it: the default's start (the paper's) and no distillation.
PAPER = dataclasses.replace(
    DEFAULT, condition="consecutive", k=2, joint=False, joint_base_weight=1.0, rewarm_epochs=0.0, bn_statistics="shared"
)
"""The paper's alternation (`--policy=paper`): the bigger model trains once the batch loss fell 2 times in a row,
no joint step, BatchNorm statistics shared with the weights."""
POLICIES = {"default": DEFAULT, "paper": PAPER}

# The joint step's fields when there is no joint step (--nojoint under a policy with one): no weights of it.
WITHOUT_JOINT_STEP = {
    "joint_base_weight": 1.0,
    "distillation": 0.0,
    "joint_weights": "",
    "equilibrium": False,
    "distillation_teachers": "largest",
}
# Policy fields added after runs were made: a config.json from before them resumes with these (what those runs
# trained), not with what a policy says today.
ADDED_FIELDS = {"joint_weights": "", "equilibrium": False, "distillation_teachers": "largest"}


def get(name: str) -> Policy:
    """The named policy: "default" or "paper"."""
    if name not in POLICIES:
        raise ValueError(f"Unknown policy {name!r}: use one of {', '.join(POLICIES)}.")
    return POLICIES[name]


def name_for_condition(spec):
    """The policy a `--condition` spec (a `ConditionSpec`) takes without `--policy`: the one whose condition has
    its name, else "paper" (the alternation without joint steps)."""
    return next((key for key, policy in POLICIES.items() if policy.condition_name == spec.name), "paper")


def side_by_side(field):
    """One field's value in every named policy, for the flags' help: "growth:epochs=0.45 (default), consecutive
    (paper)"."""
    values = []
    for name, policy in POLICIES.items():
        value = getattr(policy, field)
        if isinstance(value, bool):
            value = "on" if value else "off"
        values.append(f"{value} ({name})")
    return ", ".join(values)
