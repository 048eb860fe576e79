"""The tools' one reader of run directories, what a run is (its arm, its models' names) and one mean ± sd.

A run directory is a trainer workdir: its `config.json` (written when it starts) and, once finished, its
`summary.json`. A study directory holds them as `OUT/ep<E>/<arm>/seed<S>` (tools/pay_study.py;
tools/reproduce.py's `OUT/<arm>/seed<S>` is its one-budget form). Importing this module starts no TensorFlow:
keras_motivation's modules are imported at their first use (`lazy_module`), so the tools' `--help` is quick.
"""

import importlib
import json
import math
import os
import statistics


class lazy_module:  # noqa: N801  (it stands for a module)
    """A keras_motivation module imported at its first use: `--help` starts no TensorFlow."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)


conditions = lazy_module("keras_motivation.conditions")
summary_json = lazy_module("keras_motivation.summary_json")

# The classical arms (one model trained alone; conditions.Never.label and conditions.Always.label, which a
# test checks) and how a dual run's arm starts.
X_C, Y_C = "X-C", "Y-C"
DUAL = "X-Y"


def read_run(run_dir):
    """{"dir", "summary", "config"} of a finished run (its summary.json; the config None where config.json is
    missing), or None before it finishes."""
    path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        summary = json.load(f)
    config = None
    if os.path.exists(os.path.join(run_dir, "config.json")):
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
    return {"dir": run_dir, "summary": summary, "config": config}


def find_runs(paths):
    """Every finished run with its config under `paths` (searched recursively), by folder."""
    runs = []
    for root in paths:
        for dirpath, _, names in os.walk(root):
            if "summary.json" in names and "config.json" in names:
                runs.append(read_run(dirpath))
    return sorted(runs, key=lambda r: r["dir"])


def study_runs(out):
    """{(epochs, arm): [each finished seed's run, by seed]} of a study directory OUT/ep<E>/<arm>/seed<S>."""
    groups = {}
    for ep in sorted(os.listdir(out)):
        if not ep.startswith("ep") or not ep[2:].isdigit():
            continue
        for arm in sorted(os.listdir(os.path.join(out, ep))):
            for seed in sorted(os.listdir(os.path.join(out, ep, arm))):
                run = read_run(os.path.join(out, ep, arm, seed))
                if run is not None:
                    groups.setdefault((int(ep[2:]), arm), []).append(run)
    return groups


def mean_sd(values):
    """(mean, sample sd) of the values that are numbers (None and NaN left out); the sd is None for one value
    (no spread measured), both None for none."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def fmt_mean_sd(mean, sd, spec=".2f", sd_spec=None):
    """A mean with its sd, "85.57 ± 0.27"; the mean alone, "85.57", without a spread (one seed); "" without a
    mean. `sd_spec`: the sd's format where it is not the mean's (a signed difference: "+0.12 ± 0.05")."""
    if mean is None:
        return ""
    return format(mean, spec) + ("" if sd is None else f" ± {format(sd, sd_spec or spec)}")


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def accuracy_percent(run, model):
    """A run's final accuracy of `model` ("base", a ladder's "rung1", ..., "motivated"), in %."""
    return 100 * summary_json.accuracy(run["summary"], model)


def model_names(pair):
    """The paper's names of a run's models, smallest first: "ResNet-8", "ResNet-14" (a ladder: each of them)."""

    def pretty(name):
        for prefix, label in (("resnet", "ResNet-"), ("efficientnet_b", "EffNet-B"), ("vit_", "ViT-")):
            if name.startswith(prefix):
                return label + name[len(prefix) :]
        return name

    return tuple(pretty(name) for name in pair.split(":"))


def dual_models(pair):
    """[(the model's name in summary.json, its row label)] of a dual run: a pair's X-Y-B and X-Y-M, a ladder's
    X-Y-Z-B, X-Y-Z-R1 (each model between) and X-Y-Z-M."""
    names = model_names(pair)
    roles = summary_json.model_names(pair)
    suffixes = ["B", *(f"R{i}" for i in range(1, len(names) - 1)), "M"]
    return [(role, f"{'-'.join(names)}-{suffix}") for role, suffix in zip(roles, suffixes)]


def arm_of(config):
    """The paper's arm of a run, from its config, with the start and the
    BatchNorm statistics option of a dual run: "X-Y k=2 (identity, recalibrated)".
    Each condition names its arm (`report_label`); a name no condition has any more reads "X-Y name"."""
    spec = conditions.ConditionSpec.parse(config["condition"])
    cls = conditions.BY_NAME.get(spec.name)
    if cls is None:
        arm = f"{DUAL} {spec.name}"
    else:
        arm = cls.report_label(spec.arguments, config.get("k"))
        if cls.classical:
            return arm
    return arm + f" ({config.get('differential_init', 'paper')}, {config.get('bn_statistics', 'shared')})"
