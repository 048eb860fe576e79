"""TrainConfig: everything one training run needs, as a plain dataclass.

The trainer's flags fill it (`keras_motivation.train`), tests build it
directly, and the workdir keeps it as `config.json` so that a resumed run can
be checked against the run it continues. Each field carries its flag's help
(`define_flags` defines one flag per field); `config_from_args` turns a
command line into a config for tools that run the trainer without absl's app.
"""

import ast
import dataclasses
import json

from absl import flags

from keras_motivation import conditions
from keras_motivation import policy as policy_lib
from keras_motivation.batch_norm import BN_STATISTICS
from keras_motivation.batch_norm import DEFAULT_RECALIBRATION_BATCHES
from keras_motivation.data import AUGMENTATIONS
from keras_motivation.recipes import OPTIMIZERS as _OPTIMIZER_BUILDERS
from keras_motivation.recipes import SCHEDULES as _SCHEDULE_BUILDERS
from keras_motivation.strategies import STRATEGIES as _STRATEGY_BUILDERS

# Each list is defined once, next to what builds its entries; validation and
# the flags' help are written from these (--condition's from conditions.BY_NAME).
OPTIMIZERS = tuple(_OPTIMIZER_BUILDERS)
SCHEDULES = tuple(_SCHEDULE_BUILDERS)
STRATEGIES = tuple(_STRATEGY_BUILDERS)
DIFFERENTIAL_INITS = ("paper", "identity")
INIT_FROM_MODELS = ("base", "motivated")

# Fields that may change when a run resumes in the same workdir: they do not
# change what is being trained (the policy's name neither: its resolved fields are compared).
RESUMABLE_CHANGES = frozenset(
    {
        "policy",
        "resume",
        "export",
        "verbose",
        "workdir",
        "data_dir",
        "download",
        "strategy",
        "tpu",
        "statistics_check_batches",
        "backup_every",
        "backup_every_s",
        "requeue_on_signal",
    }
)


class ConfigError(ValueError):
    """A config that cannot run; the message is one line saying what to change."""


START_PARAMETERS = ("gamma", "noise")


def differential_start(spec):
    """`--differential_init` as identity_start's arguments ({} for the plain identity start), or None
    for the paper's random start; ConfigError for a bad spec."""
    name, _, args = spec.partition(":")
    if name not in DIFFERENTIAL_INITS or (args and name != "identity"):
        raise ConfigError(f"--differential_init must be paper, identity or identity:gamma=G,noise=S, got {spec!r}.")
    if name == "paper":
        return None
    params = {}
    for item in filter(None, args.split(",")):
        key, eq, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not eq or key not in START_PARAMETERS or number < 0:
            raise ConfigError(
                f"--differential_init={spec!r}: use identity:gamma=G,noise=S with G, S >= 0 (bad part {item!r})."
            )
        params[key] = number
    return params


def _or(names):
    return ", ".join(names[:-1]) + f" or {names[-1]}"


def _policy_help(name):
    """The end of a policy field's help: its value in each named policy."""
    return f" Default: the policy's, {policy_lib.side_by_side(name)}."


def _policies_help():
    """--policy's help: the rule, then every field's value in each named policy, side by side."""
    fields = "; ".join(f"{name}: {policy_lib.side_by_side(name)}" for name in policy_lib.FIELDS)
    return (
        f"{_or(tuple(policy_lib.POLICIES))}: the training policy every policy flag left unset takes its value from "
        "(a flag set wins). default is the policy measured in docs/studies/index.md, paper the paper's alternation. "
        "Without --policy, --condition chooses: the policy whose condition has its name, else paper (a condition "
        "other than growth never gets the default's joint steps unless --joint is set); --policy=default with another "
        "condition needs --joint or --nojoint and --rewarm_epochs. The policies' fields: "
        f"{fields}."
    )


def _field(default, help, factory=None):
    """A config field whose flag help is kept with it (the flags are defined from the dataclass)."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class TrainConfig:
    """Everything one run of the trainer needs: each field is a flag of `python -m keras_motivation.train`.

    `TrainConfig(pair="resnet8:resnet8p14", epochs=6)` is the command with those two flags and every other at its
    default (the flags reference lists each field with its default and help); `config_from_args(argv)` reads a
    command line, `validate()` refuses what no run can use, and `trainer.run(config)` trains.
    """

    # What to train.
    pair: str = _field(
        "resnet8:resnet14",
        "Registry name of the model pair, 'base:motivated' (e.g. resnet20:resnet32), or a ladder of one family's "
        "models, smallest first (resnet8:resnet14:resnet20; docs/guides/ladders.md).",
    )
    model_kwargs: dict = _field(
        None, "Extra model arguments as key=value,... (e.g. width=8,weight_decay=2.5e-4).", factory=dict
    )
    # The policy fields below default to None: the config takes them from the chosen policy (policy.py says how
    # it is chosen) unless their flag is set, and config.json keeps the resolved values with the policy's name.
    policy: str | None = _field(None, _policies_help())
    condition: str | None = _field(None, conditions.flag_help() + _policy_help("condition"))
    k: int | None = _field(
        None,
        "Consecutive loss decreases that trigger the motivated model, for the conditions that take k (3 paid best "
        "in the first study, docs/studies/does-it-pay.md; the paper's is 2)." + _policy_help("k"),
    )
    differential_init: str | None = _field(
        None,
        "identity: differential layers start as no-ops; paper: they start random, as in the paper; "
        "identity:gamma=0.1,noise=0.01: the last BatchNorm gamma of each differential block at gamma (near the "
        "identity) plus Gaussian noise of that standard deviation." + _policy_help("differential_init"),
    )
    joint: bool | None = _field(
        None,
        "Joint step: each batch the motivated model trains on also trains the base, one update of the shared "
        "weights (loss = motivated loss + joint_base_weight x base loss); the nested-network way."
        + _policy_help("joint"),
    )
    joint_base_weight: float | None = _field(
        None,
        "Weight of the base's loss in a joint step (1 without one)." + _policy_help("joint_base_weight"),
    )
    distillation: float | None = _field(
        None,
        "Share of the base's loss in a joint step taken from the motivated model's predictions (0 to 1; 0 without "
        "one)." + _policy_help("distillation"),
    )
    joint_weights: str | None = _field(
        None,
        "Every model's loss weight in a joint step, smallest first (2,1 for a pair, 2,1,1 for a ladder of three), "
        "instead of --joint_base_weight (without it the models between weigh 1)." + _policy_help("joint_weights"),
    )
    equilibrium: bool | None = _field(
        None,
        "Gradient equilibrium in a joint step: each weight moves by the weighted mean of the gradients of the losses "
        "that reach it, not their sum, so a trunk several models share steps at one network's scale (Li et al., "
        "ICCV 2019)." + _policy_help("equilibrium"),
    )
    distillation_teachers: str | None = _field(
        None,
        "With --distillation: each smaller model learns from the joint step's largest model (largest) or from every "
        "larger one (all: the mean of their KL terms, one-for-all distillation)."
        + _policy_help("distillation_teachers"),
    )
    joint_base_share: float = _field(
        1.0,
        "Share of each joint batch the base's own layers train on (the first rows), in (0, 1]: a joint step costs "
        "the motivated model's step plus this share of the base's (US-Nets' and BigNAS' way to many sizes).",
    )
    shared_forward: bool = _field(
        True,
        "Joint step: compute the part of the two forward passes that is the same once (in a prefix pair such as "
        "resnet8:resnet8p14 both outputs come out of the motivated model's pass); same losses and gradients.",
    )
    rewarm_epochs: float | None = _field(
        None,
        "With --condition=growth: the learning rate ramps up again linearly over this many epochs from the growth "
        "point (staged training's re-warm-up)." + _policy_help("rewarm_epochs"),
    )
    bn_statistics: str | None = _field(
        None,
        "BatchNorm moving statistics each model is evaluated and saved with: recalibrated (its own, recomputed from "
        "training batches when read: before each validation, at the end of training), private (its own, updated "
        "by its own steps) or shared (the paper's: copied with the weights)." + _policy_help("bn_statistics"),
    )
    recalibration_batches: int = _field(
        DEFAULT_RECALIBRATION_BATCHES,
        "Training batches that --bn_statistics=recalibrated recomputes the statistics from.",
    )
    # Data.
    dataset: str = _field(
        "fashion_mnist_idx",
        "tensorflow-datasets name (cifar10, cifar100, imagenet2012, ...), fashion_mnist_idx (Debian's IDX files) or "
        "image_folder (--data_dir with train/<class>/ and test/<class>/, needs --image_size).",
    )
    data_dir: str | None = _field(None, "TFDS data dir (default $TFDS_DATA_DIR) or the IDX directory.")
    download: bool = _field(
        True,
        "Download and prepare a missing tensorflow-datasets dataset on first use (needs network; --download=false for "
        "offline clusters).",
    )
    image_size: int | None = _field(
        None, "Resize images to this size (the paper's EfficientNet and ViT recipes use 224)."
    )
    train_size: int | None = _field(None, "Use only the first N training examples (a budget for CPU runs).")
    eval_size: int | None = _field(None, "Evaluate on only the first N examples of the validation split (a budget).")
    validation_split: str = _field("test", "Split used for validation and the final evaluation.")
    augment: tuple = _field(None, f"Comma-separated augmentations: {', '.join(AUGMENTATIONS)}.", factory=tuple)
    # Recipe.
    epochs: int = _field(3, "Training epochs.")
    batch_size: int = _field(128, "Global batch size (split across replicas).")
    optimizer: str = _field("sgd", f"{_or(OPTIMIZERS)} (the motivated model gets a fresh copy).")
    learning_rate: float = _field(0.1, "Peak learning rate.")
    momentum: float = _field(0.9, "Momentum of SGD and RMSprop.")
    nesterov: bool = _field(False, "Nesterov momentum for SGD.")
    weight_decay: float = _field(0.0, "Decoupled weight decay of the optimizer.")
    schedule: str = _field(
        "cosine",
        f"{_or(SCHEDULES)}: cosine has a linear warm-up; exponential multiplies by decay_rate every decay_epochs, "
        "after warm-up.",
    )
    warmup_epochs: float = _field(0.0, "Linear warm-up epochs.")
    decay_rate: float = _field(0.97, "Factor of the exponential schedule.")
    decay_epochs: float = _field(2.0, "Epochs between two decays of the exponential schedule.")
    label_smoothing: float = _field(0.0, "Label smoothing of the cross-entropy.")
    # Running.
    seed: int = _field(0, "Random seed (weights, data order, conditions).")
    deterministic: bool = _field(
        False, "Enable TensorFlow op determinism (two runs with one seed give the same result)."
    )
    strategy: str = _field("default", f"{_or(STRATEGIES)} (multi_worker reads TF_CONFIG or Slurm's variables).")
    tpu: str | None = _field(None, "TPU name or grpc:// address for --strategy=tpu ('local' on a TPU VM).")
    steps_per_execution: int = _field(1, "Steps per compiled call.")
    jit_compile: bool = _field(False, "Compile the train step with XLA (single device).")
    mixed_precision: bool = _field(False, "mixed_float16 compute (GPU/TPU).")
    workdir: str | None = _field(None, "Directory of the run: config, backups, logs, final models, summary.json.")
    resume: bool = _field(True, "Resume from the workdir's backup when there is one.")
    backup_every: int = _field(
        200,
        "Write the backup (<workdir>/backup) every N steps, counted from the start of the run (not of the "
        "epoch); also at every epoch end and when a signal stops the run.",
    )
    backup_every_s: float = _field(
        0.0, "Also write the backup when this many seconds have passed since the last one (0: off)."
    )
    requeue_on_signal: bool = _field(
        False,
        "Inside a Slurm job: on SIGUSR1 (Slurm's warning before the time limit, sbatch --signal=USR1@90), after "
        "saving the run, requeue the job (scontrol requeue $SLURM_JOB_ID); the requeued job resumes the run.",
    )
    export: bool = _field(False, "Export SavedModels for TF Serving into <workdir>/export at the end.")
    init_from: str | None = _field(
        None, "Workdir of a finished run to initialise from (transfer learning; new classifier head)."
    )
    init_from_model: str = _field("base", f"Which model of --init_from to start from: {_or(INIT_FROM_MODELS)}.")
    verbose: str = _field("auto", "Keras verbosity: auto, 0, 1 or 2.")
    statistics_check_batches: int = _field(
        0,
        "After training, also report both models' accuracy with BatchNorm statistics recomputed from this many "
        "training batches (0: off); a check that the saved statistics are right.",
    )

    def __post_init__(self):
        # Unset policy fields take the chosen policy's values; config.json keeps them and the policy's name.
        self.policy = self._chosen_policy()
        chosen = policy_lib.get(self.policy)
        if self.joint is None:
            self.joint = chosen.joint
        if self.joint_weights and self.joint_base_weight is None:
            # --joint_weights names the base's weight too: the policy's base weight does not apply.
            self.joint_base_weight = 1.0
        for name in policy_lib.FIELDS:
            if getattr(self, name) is None:
                # A policy's joint step weights belong to its joint step: without one (--nojoint) they are neutral.
                neutral = not self.joint and name in policy_lib.WITHOUT_JOINT_STEP
                value = policy_lib.WITHOUT_JOINT_STEP[name] if neutral else getattr(chosen, name)
                setattr(self, name, str(value) if name == "condition" else value)

    @property
    def condition_spec(self):
        """`condition` parsed (once per text): the `ConditionSpec` the policy, the recipes, the data, the summary
        read. A bad spec is a ConfigError naming --condition."""
        cached = self.__dict__.get("condition_spec_cache")
        if cached is None or cached[0] != self.condition:
            try:
                cached = (self.condition, conditions.ConditionSpec.parse(self.condition))
            except ValueError as err:
                raise ConfigError(f"--condition={self.condition}: {err}") from None
            self.__dict__["condition_spec_cache"] = cached
        return cached[1]

    def _chosen_policy(self):
        """The name of the policy the unset fields come from: --policy, else the one --condition names (see
        policy.py); ConfigError for an unknown name and for --policy=default's joint step and re-warm-up taken
        with another condition than its own."""
        if self.policy is None:
            return "default" if self.condition is None else policy_lib.name_for_condition(self.condition_spec)
        if self.policy not in policy_lib.POLICIES:
            raise ConfigError(f"--policy must be {_or(tuple(policy_lib.POLICIES))}, got {self.policy!r}.")
        chosen = policy_lib.get(self.policy)
        other_condition = self.condition is not None and self.condition_spec.name != chosen.condition_name
        if other_condition and (
            (chosen.joint and self.joint is None) or (chosen.rewarm_epochs and self.rewarm_epochs is None)
        ):
            raise ConfigError(
                f"--policy={self.policy}'s joint step and re-warm-up belong to its condition {chosen.condition}, not "
                f"--condition={self.condition}: use --policy=paper, or also set --joint (or --nojoint) and "
                "--rewarm_epochs=0."
            )
        return self.policy

    def resolved_policy(self):
        """The `policy.Policy` this config trains with (its resolved policy fields)."""
        fields = {name: getattr(self, name) for name in policy_lib.FIELDS}
        return policy_lib.Policy(**{**fields, "condition": self.condition_spec})

    def validate(self):
        """Raises ConfigError (one line) for values no run can use."""

        def check(ok, message):
            if not ok:
                raise ConfigError(message)

        check(":" in self.pair, f"--pair must be 'base:motivated' (e.g. resnet20:resnet32), got {self.pair!r}.")
        spec = self.condition_spec  # a ConfigError naming --condition where it does not parse
        try:
            condition = spec.check()
        except ValueError as err:
            raise ConfigError(f"--condition={self.condition}: {err}") from None
        check(self.k >= 1, f"--k must be >= 1, got {self.k}.")
        check(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}.")
        check(self.batch_size >= 1, f"--batch_size must be >= 1, got {self.batch_size}.")
        check(self.learning_rate > 0, f"--learning_rate must be > 0, got {self.learning_rate}.")
        check(self.optimizer in OPTIMIZERS, f"--optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        check(self.schedule in SCHEDULES, f"--schedule must be one of {SCHEDULES}, got {self.schedule!r}.")
        check(self.strategy in STRATEGIES, f"--strategy must be one of {STRATEGIES}, got {self.strategy!r}.")
        differential_start(self.differential_init)
        check(self.joint_base_weight >= 0, f"--joint_base_weight must be >= 0, got {self.joint_base_weight}.")
        check(0 <= self.distillation <= 1, f"--distillation must be in [0, 1], got {self.distillation}.")
        check(
            not (self.distillation or self.joint_base_weight != 1.0) or self.joint,
            "--distillation and --joint_base_weight set the joint step: add --joint.",
        )
        try:
            weights = policy_lib.parse_weights(self.joint_weights)
        except ValueError as err:
            raise ConfigError(f"--joint_weights: {err}") from None
        models = self.pair.count(":") + 1
        check(
            not weights or len(weights) == models,
            f"--joint_weights has {len(weights)} weights for the {models} models of --pair={self.pair}: give one per "
            "model, smallest first.",
        )
        check(
            not weights or self.joint_base_weight == 1.0,
            "--joint_weights and --joint_base_weight both set the base's weight: put it in --joint_weights.",
        )
        check(
            not (weights or self.equilibrium or self.distillation_teachers != "largest") or self.joint,
            "--joint_weights, --equilibrium and --distillation_teachers set the joint step: add --joint.",
        )
        check(
            self.distillation_teachers in ("largest", "all"),
            f"--distillation_teachers must be largest or all, got {self.distillation_teachers!r}.",
        )
        check(0 < self.joint_base_share <= 1, f"--joint_base_share must be in (0, 1], got {self.joint_base_share}.")
        check(self.joint_base_share == 1.0 or self.joint, "--joint_base_share sets the joint step: add --joint.")
        check(self.rewarm_epochs >= 0, f"--rewarm_epochs must be >= 0, got {self.rewarm_epochs}.")
        check(
            not self.rewarm_epochs or condition.name == "growth",
            "--rewarm_epochs re-warms the learning rate at the growth point: use it with --condition=growth:epochs=E.",
        )
        check(
            self.bn_statistics in BN_STATISTICS,
            f"--bn_statistics must be one of {BN_STATISTICS}, got {self.bn_statistics!r}.",
        )
        check(
            self.recalibration_batches >= 1, f"--recalibration_batches must be >= 1, got {self.recalibration_batches}."
        )
        check(
            self.statistics_check_batches >= 0,
            f"--statistics_check_batches must be >= 0, got {self.statistics_check_batches}.",
        )
        check(
            self.strategy != "tpu" or self.tpu,
            "--strategy=tpu needs --tpu (a TPU name or grpc:// address, or 'local').",
        )
        check(self.tpu is None or self.strategy == "tpu", "--tpu is only used with --strategy=tpu.")
        check(self.steps_per_execution >= 1, f"--steps_per_execution must be >= 1, got {self.steps_per_execution}.")
        check(self.backup_every >= 1, f"--backup_every must be >= 1, got {self.backup_every}.")
        check(self.backup_every_s >= 0, f"--backup_every_s must be >= 0 (0: off), got {self.backup_every_s}.")
        check(
            0 <= self.warmup_epochs < self.epochs, f"--warmup_epochs must be in [0, epochs), got {self.warmup_epochs}."
        )
        check(0 <= self.label_smoothing < 1, f"--label_smoothing must be in [0, 1), got {self.label_smoothing}.")
        check(
            self.init_from_model in INIT_FROM_MODELS,
            f"--init_from_model must be {_or(INIT_FROM_MODELS)}, got {self.init_from_model!r}.",
        )
        check(self.train_size is None or self.train_size > 0, f"--train_size must be > 0, got {self.train_size}.")
        check(self.eval_size is None or self.eval_size > 0, f"--eval_size must be > 0, got {self.eval_size}.")
        check(self.image_size is None or self.image_size > 0, f"--image_size must be > 0, got {self.image_size}.")
        check(
            not (self.deterministic and self.jit_compile),
            "--deterministic and --jit_compile cannot be combined: XLA has no deterministic mode for every op.",
        )
        return self

    def to_json(self):
        d = dataclasses.asdict(self)
        d["augment"] = list(self.augment)
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        d = json.loads(text)
        d["augment"] = tuple(d.get("augment", ()))
        # A config.json from before a policy field existed ran without it.
        d = {**policy_lib.ADDED_FIELDS, **d}
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def incompatibilities(self, other):
        """Fields that differ from `other` and would change the run being resumed."""
        a, b = dataclasses.asdict(self), dataclasses.asdict(other)
        a["augment"], b["augment"] = list(a["augment"]), list(b["augment"])
        return sorted(k for k in a if k not in RESUMABLE_CHANGES and a[k] != b.get(k))


# -- command line ----------------------------------------------------------------------


def define_flags(flag_values=flags.FLAGS):
    """Defines one flag per TrainConfig field, with the field's help."""
    for field in dataclasses.fields(TrainConfig):
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = field.metadata["help"]
        if field.name == "model_kwargs":
            flags.DEFINE_string(field.name, "", help_text, flag_values=flag_values)
        elif field.name == "augment":
            flags.DEFINE_list(field.name, list(default), help_text, flag_values=flag_values)
        elif field.type in (bool, bool | None):
            flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
        elif field.type in (int, int | None):
            flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
        elif field.type in (float, float | None):
            flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)


def parse_kwargs(text):
    """'width=8,sync_bn=True' -> {'width': 8, 'sync_bn': True}."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise ValueError(f"--model_kwargs items must be key=value, got {item!r}.")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def config_from_flags(values):
    """A TrainConfig from parsed flag values (defined by `define_flags`)."""
    kwargs = {f.name: values[f.name].value for f in dataclasses.fields(TrainConfig)}
    kwargs["model_kwargs"] = parse_kwargs(kwargs["model_kwargs"] or "")
    kwargs["augment"] = tuple(kwargs["augment"] or ())
    return TrainConfig(**kwargs)


def config_from_args(argv: list[str]) -> TrainConfig:
    """A TrainConfig from a command line (argv[0] is the program name), without absl's app."""
    values = flags.FlagValues()
    define_flags(values)
    values(argv)
    return config_from_flags(values)
