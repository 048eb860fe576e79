"""The `--condition` spec, parsed once: `ConditionSpec.parse("random_share:share=[0.2,0.5],seed=1")`.

The trainer's config, its learning-rate recipe, the run summary and the
reports read a spec through `ConditionSpec`; `BY_NAME` is the registry of
conditions by their `--condition` name, `from_flag` builds one from a spec
with the run's k, seed and held-out batch, `flag_help` writes the flag's help.
"""

import ast
import dataclasses
import re

import keras

from keras_motivation.conditions.base import Condition
from keras_motivation.conditions.base import check_argument
from keras_motivation.conditions.consecutive import ConsecutiveDecrease
from keras_motivation.conditions.consecutive import EmaDecrease
from keras_motivation.conditions.consecutive import GradientNormSlope
from keras_motivation.conditions.consecutive import ValidationBatch
from keras_motivation.conditions.controls import Always
from keras_motivation.conditions.controls import MatchedRandom
from keras_motivation.conditions.controls import Never
from keras_motivation.conditions.controls import RandomActivation
from keras_motivation.conditions.controls import RandomShare
from keras_motivation.conditions.growth import Growth

BY_NAME = {
    cls.flag: cls
    for cls in (
        ConsecutiveDecrease,
        EmaDecrease,
        GradientNormSlope,
        ValidationBatch,
        RandomActivation,
        MatchedRandom,
        RandomShare,
        Growth,
        Never,
        Always,
    )
}


@dataclasses.dataclass(frozen=True)
class ConditionSpec:
    """A `--condition` spec: the condition's name and its arguments as written.

    `ConditionSpec.parse("random_share:share=[0.2,0.5],seed=1")` is
    `ConditionSpec("random_share", {"share": "[0.2,0.5]", "seed": "1"})`;
    commas inside brackets belong to a list value. Parsing checks the
    key=value form only; `condition_class`, `check` and `build` check the
    name and the arguments (a one-line ValueError each).
    """

    name: str
    arguments: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, spec):
        """`spec` as a ConditionSpec: itself, or its text parsed."""
        return spec if isinstance(spec, ConditionSpec) else cls.parse(spec)

    @classmethod
    def parse(cls, text):
        name, _, args = text.partition(":")
        arguments = {}
        for item in filter(None, re.split(r",(?![^\[]*\])", args)):
            key, eq, value = item.partition("=")
            check_argument(eq, f"Condition arguments are key=value, got {item!r} in {text!r}.")
            arguments[key.strip()] = value.strip()
        return cls(name, arguments)

    def __str__(self):
        arguments = ",".join(f"{key}={value}" for key, value in self.arguments.items())
        return f"{self.name}:{arguments}" if arguments else self.name

    @property
    def condition_class(self):
        """The class of the named condition ("random_share" -> RandomShare)."""
        check_argument(self.name in BY_NAME, f"Unknown condition {self.name!r}: use one of {', '.join(BY_NAME)}.")
        return BY_NAME[self.name]

    @property
    def takes_heldout(self):
        """Whether the condition needs a held-out batch (False for an unknown name, which `check` reports)."""
        cls = BY_NAME.get(self.name)
        return cls is not None and cls.takes_heldout

    def values(self):
        """{argument: its value}: each argument's text as a Python literal."""
        values = {}
        for key, text in self.arguments.items():
            try:
                values[key] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ValueError(
                    f"Condition argument {key}= must be a Python literal, got {text!r} in {str(self)!r}."
                ) from None
        return values

    def check(self):
        """ValueError (one line) unless the name is a condition's and every argument one it takes; returns self."""
        cls = self.condition_class
        for key in self.arguments:
            check_argument(
                key in cls.parameters,
                f"Condition {cls.flag!r} has no argument {key!r}: it takes {', '.join(cls.parameters) or 'none'}.",
            )
        self.values()
        return self

    def build(self, k=None, seed=None, heldout=None):
        """The condition, with the run's `k`, `seed` and held-out batch `(x, y)` filled in where it takes them
        and the spec does not set them."""
        cls = self.check().condition_class
        arguments = self.values()
        if cls.takes_k and k is not None:
            arguments.setdefault("k", k)
        if cls.takes_seed and seed is not None:
            # Random batches from the run's seed: a resumed run draws the same ones.
            arguments.setdefault("seed", seed)
        return _construct(cls, lambda: cls.from_arguments(arguments, heldout))


def _construct(cls, build):
    try:
        return build()
    except TypeError as err:
        raise ValueError(f"Bad arguments for condition {cls.flag!r}: {err}.") from err


def from_spec(spec):
    """A condition from a string such as "consecutive:k=3" or "matched_random:per_epoch=5,seed=1"."""
    parsed = ConditionSpec.parse(spec)
    cls, arguments = parsed.condition_class, parsed.values()
    return _construct(cls, lambda: cls(**arguments))


def from_flag(spec, k=None, seed=None, heldout=None):
    """The condition of a `--condition` spec, with the run's `k`, `seed` and held-out batch `(x, y)`
    filled in where the condition takes them and the spec does not set them:
    `from_flag("random_share:share=[0.2,0.5]", k=2, seed=0)`. A bad spec is a one-line ValueError."""
    return ConditionSpec.parse(spec).build(k=k, seed=seed, heldout=heldout)


def flag_help():
    """The help of `--condition`, from every condition's flag, description and arguments."""
    items = []
    for name, cls in BY_NAME.items():
        arguments = "; ".join(f"{key}: {text}" for key, text in cls.parameters.items())
        items.append(f"{name}: {cls.flag_help}" + (f" [{arguments}]" if arguments else "") + ".")
    return "Motivation condition, name or name:key=value,... (k and seed default to --k and --seed). " + " ".join(items)


def get(identifier: Condition | str | dict | None) -> Condition:
    """A condition from an instance, a spec string, a config dict, or None (the paper's k=2)."""
    if identifier is None:
        return ConsecutiveDecrease(2)
    if isinstance(identifier, Condition):
        return identifier
    if isinstance(identifier, str):
        return from_spec(identifier)
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise TypeError(f"condition must be a Condition, got {identifier!r}")
