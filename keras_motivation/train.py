r"""Trains a motivated pair: `python -m keras_motivation.train --flagfile=configs/quickstart.flags`.

Flags fill a `TrainConfig` (flags given after --flagfile override it); all the
work is in `keras_motivation.trainer.run`. See `--helpfull` for every flag.
"""

import ast
import dataclasses
import sys

from keras_motivation import console

console.quiet_tensorflow()  # before TensorFlow is imported (also for the keras-motivation-train script)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from keras_motivation import trainer  # noqa: E402
from keras_motivation.config import TrainConfig  # noqa: E402

HELP = {
    "pair": "Registry name of the model pair, 'base:motivated' (e.g. resnet20:resnet32).",
    "model_kwargs": "Extra model arguments as key=value,... (e.g. width=8,weight_decay=2.5e-4).",
    "condition": "Motivation condition: consecutive (the paper's), ema, valloss, slope, random, matched_random:per_epoch=N, random_share:share=0.5 (or a per-epoch list [0.2,0.5,0.8]), never, always.",
    "k": "Consecutive loss decreases that trigger the motivated model (default 3, measured in README 'Does it pay?'; the paper's flagfiles and the quickstart use the paper's 2).",
    "differential_init": "identity (default): differential layers start as no-ops; paper: they start random, as in the paper.",
    "bn_statistics": "BatchNorm moving statistics each model is evaluated and saved with: recalibrated (default: its own, recomputed from training batches at every epoch end), private (its own, updated by its own steps) or shared (the paper's: copied with the weights).",
    "recalibration_batches": "Training batches that --bn_statistics=recalibrated recomputes the statistics from.",
    "statistics_check_batches": "After training, also report both models' accuracy with BatchNorm statistics recomputed from this many training batches (0: off); a check that the saved statistics are right.",
    "dataset": "tensorflow-datasets name (cifar10, cifar100, imagenet2012, ...), fashion_mnist_idx (Debian's IDX files) or image_folder (--data_dir with train/<class>/ and test/<class>/, needs --image_size).",
    "data_dir": "TFDS data dir (default $TFDS_DATA_DIR) or the IDX directory.",
    "download": "Download and prepare a missing tensorflow-datasets dataset on first use (needs network; --download=false for offline clusters).",
    "image_size": "Resize images to this size (the paper's EfficientNet and ViT recipes use 224).",
    "train_size": "Use only the first N training examples (a budget for CPU runs).",
    "eval_size": "Evaluate on only the first N examples of the validation split (a budget).",
    "validation_split": "Split used for validation and the final evaluation.",
    "augment": "Comma-separated augmentations: crop_flip, flip, randaugment, autoaugment_cifar10, random_erasing, mixup, cutmix.",
    "epochs": "Training epochs.",
    "batch_size": "Global batch size (split across replicas).",
    "optimizer": "sgd, adamw, adam, rmsprop or lamb (the motivated model gets a fresh copy).",
    "learning_rate": "Peak learning rate.",
    "momentum": "Momentum of SGD and RMSprop.",
    "nesterov": "Nesterov momentum for SGD.",
    "weight_decay": "Decoupled weight decay of the optimizer.",
    "schedule": "cosine (with linear warm-up), exponential (x decay_rate every decay_epochs, after warm-up) or constant.",
    "warmup_epochs": "Linear warm-up epochs.",
    "decay_rate": "Factor of the exponential schedule.",
    "decay_epochs": "Epochs between two decays of the exponential schedule.",
    "label_smoothing": "Label smoothing of the cross-entropy.",
    "seed": "Random seed (weights, data order, conditions).",
    "deterministic": "Enable TensorFlow op determinism (two runs with one seed give the same result).",
    "strategy": "default, mirrored, multi_worker (TF_CONFIG or Slurm) or tpu.",
    "tpu": "TPU name or grpc:// address for --strategy=tpu ('local' on a TPU VM).",
    "steps_per_execution": "Steps per compiled call.",
    "jit_compile": "Compile the train step with XLA (single device).",
    "mixed_precision": "mixed_float16 compute (GPU/TPU).",
    "workdir": "Directory of the run: config, backups, logs, final models, summary.json.",
    "resume": "Resume from the workdir's backup when there is one.",
    "export": "Export SavedModels for TF Serving into <workdir>/export at the end.",
    "init_from": "Workdir of a finished run to initialise from (transfer learning; new classifier head).",
    "init_from_model": "Which model of --init_from to start from: base or motivated.",
    "verbose": "Keras verbosity: auto, 0, 1 or 2.",
}


def define_flags(flag_values=flags.FLAGS):
    """Defines one flag per TrainConfig field."""
    for field in dataclasses.fields(TrainConfig):
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = HELP[field.name]
        if field.name == "model_kwargs":
            flags.DEFINE_string(field.name, "", help_text, flag_values=flag_values)
        elif field.name == "augment":
            flags.DEFINE_list(field.name, list(default), help_text, flag_values=flag_values)
        elif isinstance(default, bool):
            flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
        elif field.name in ("image_size", "train_size", "eval_size"):
            flags.DEFINE_integer(field.name, None, help_text, flag_values=flag_values)
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
    kwargs = {f.name: values[f.name].value for f in dataclasses.fields(TrainConfig)}
    kwargs["model_kwargs"] = parse_kwargs(kwargs["model_kwargs"] or "")
    kwargs["augment"] = tuple(kwargs["augment"] or ())
    return TrainConfig(**kwargs)


def config_from_args(argv):
    """A TrainConfig from a command line (argv[0] is the program name), without absl's app."""
    values = flags.FlagValues()
    define_flags(values)
    values(argv)
    return config_from_flags(values)


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]}: every setting is a --flag (see --helpfull).")
    try:
        config = config_from_flags(flags.FLAGS)
        summary = trainer.run(config)
    except (trainer.ConfigError, FileNotFoundError, trainer.data_lib.DatasetUnavailableError) as err:
        sys.exit(f"error: {err}")
    print(trainer.describe(config, summary))


def run():
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
