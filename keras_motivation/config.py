"""TrainConfig: everything one training run needs, as a plain dataclass.

The trainer's flags fill it (`keras_motivation.train`), tests build it
directly, and the workdir keeps it as `config.json` so that a resumed run can
be checked against the run it continues.
"""

import dataclasses
import json
from typing import Optional

from keras_motivation.batch_norm import BN_STATISTICS
from keras_motivation.batch_norm import DEFAULT_BN_STATISTICS
from keras_motivation.batch_norm import DEFAULT_RECALIBRATION_BATCHES

OPTIMIZERS = ("sgd", "adamw", "adam", "rmsprop", "lamb")
SCHEDULES = ("cosine", "exponential", "constant")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
DIFFERENTIAL_INITS = ("paper", "identity")

# Fields that may change when a run resumes in the same workdir: they do not
# change what is being trained.
RESUMABLE_CHANGES = frozenset(
    {"resume", "export", "verbose", "workdir", "data_dir", "download", "strategy", "tpu", "statistics_check_batches"}
)


class ConfigError(ValueError):
    """A config that cannot run; the message is one line saying what to change."""


@dataclasses.dataclass
class TrainConfig:
    # What to train.
    pair: str = "resnet8:resnet14"
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    condition: str = "consecutive"
    # 3 paid best in README "Does it pay?"; the paper's flagfiles set its 2.
    k: int = 3
    differential_init: str = "identity"
    bn_statistics: str = DEFAULT_BN_STATISTICS
    recalibration_batches: int = DEFAULT_RECALIBRATION_BATCHES
    # Data.
    dataset: str = "fashion_mnist_idx"
    data_dir: Optional[str] = None
    download: bool = True
    image_size: Optional[int] = None
    train_size: Optional[int] = None
    eval_size: Optional[int] = None
    validation_split: str = "test"
    augment: tuple = ()
    # Recipe.
    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    decay_rate: float = 0.97
    decay_epochs: float = 2.0
    label_smoothing: float = 0.0
    # Running.
    seed: int = 0
    deterministic: bool = False
    strategy: str = "default"
    tpu: Optional[str] = None
    steps_per_execution: int = 1
    jit_compile: bool = False
    mixed_precision: bool = False
    workdir: Optional[str] = None
    resume: bool = True
    export: bool = False
    init_from: Optional[str] = None
    init_from_model: str = "base"
    verbose: str = "auto"
    statistics_check_batches: int = 0

    def validate(self):
        """Raises ConfigError (one line) for values no run can use."""

        def check(ok, message):
            if not ok:
                raise ConfigError(message)

        check(":" in self.pair, f"--pair must be 'base:motivated' (e.g. resnet20:resnet32), got {self.pair!r}.")
        check(self.k >= 1, f"--k must be >= 1, got {self.k}.")
        check(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}.")
        check(self.batch_size >= 1, f"--batch_size must be >= 1, got {self.batch_size}.")
        check(self.learning_rate > 0, f"--learning_rate must be > 0, got {self.learning_rate}.")
        check(self.optimizer in OPTIMIZERS, f"--optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        check(self.schedule in SCHEDULES, f"--schedule must be one of {SCHEDULES}, got {self.schedule!r}.")
        check(self.strategy in STRATEGIES, f"--strategy must be one of {STRATEGIES}, got {self.strategy!r}.")
        check(
            self.differential_init in DIFFERENTIAL_INITS,
            f"--differential_init must be one of {DIFFERENTIAL_INITS}, got {self.differential_init!r}.",
        )
        check(
            self.bn_statistics in BN_STATISTICS,
            f"--bn_statistics must be one of {BN_STATISTICS}, got {self.bn_statistics!r}.",
        )
        check(self.recalibration_batches >= 1, f"--recalibration_batches must be >= 1, got {self.recalibration_batches}.")
        check(self.statistics_check_batches >= 0, f"--statistics_check_batches must be >= 0, got {self.statistics_check_batches}.")
        check(self.strategy != "tpu" or self.tpu, "--strategy=tpu needs --tpu (a TPU name or grpc:// address, or 'local').")
        check(self.tpu is None or self.strategy == "tpu", "--tpu is only used with --strategy=tpu.")
        check(self.steps_per_execution >= 1, f"--steps_per_execution must be >= 1, got {self.steps_per_execution}.")
        check(0 <= self.warmup_epochs < self.epochs, f"--warmup_epochs must be in [0, epochs), got {self.warmup_epochs}.")
        check(0 <= self.label_smoothing < 1, f"--label_smoothing must be in [0, 1), got {self.label_smoothing}.")
        check(self.init_from_model in ("base", "motivated"), f"--init_from_model must be base or motivated, got {self.init_from_model!r}.")
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
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def incompatibilities(self, other):
        """Fields that differ from `other` and would change the run being resumed."""
        a, b = dataclasses.asdict(self), dataclasses.asdict(other)
        a["augment"], b["augment"] = list(a["augment"]), list(b["augment"])
        return sorted(k for k in a if k not in RESUMABLE_CHANGES and a[k] != b.get(k))
