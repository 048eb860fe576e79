"""Reading a run's summary.json, of schema 2 (summary.py writes it) or older, without the run summary module.

The export and the tools read finished runs' summaries through these:
`accuracy(summary, model)`, `forward_flops(summary, model)`,
`training_flops(summary, key)`, `model_entry(summary, model)`,
`motivated_share(activations)` and `export_metadata(summary)`.

Summaries written before schema 2 keep the base's numbers in "final"
("accuracy", "loss"; the motivated model's as "motivated_accuracy", ...),
"best" and "flops" ("base", "motivated" forward FLOPs per image, "base_macs",
"dual_training_average", "training_total", ...); these functions read both
layouts. Run summaries written before `motivated_share` was named so call it
`activation_rate`; `motivated_share(activations)` reads both.
"""

# Keys of summary["activations"] in summaries written before the rename.
_OLD_KEYS = {"motivated_share": "activation_rate", "noise_motivated_share": "noise_activation_rate"}


def every_model(n):
    """How the text names n models together: "both models" (a pair), "every model" (a ladder)."""
    return "both models" if n == 2 else "every model"


def rung_names(n):
    """The names of n models, smallest first: a pair's `base` and `motivated`, a ladder's `base`, `rung1`, ...
    and `motivated` (their entries in summary.json, their files in final/ and export/)."""
    return ("base", *(f"rung{i}" for i in range(1, n - 1)), "motivated")


def model_names(pair: str) -> tuple[str, ...]:
    """The names of a run's models, smallest first, from its --pair (`rung_names`)."""
    return rung_names(len(pair.split(":")))


# summary["training_flops"][key] in schema 2 -> summary["flops"][key] before it.
_OLD_TRAINING_FLOPS = {
    "total": "training_total",
    "motivated_alone": "training_total_motivated_alone",
    "average_forward_per_image": "dual_training_average",
    "recalibration": "recalibration",
    "recalibration_for_validation": "recalibration_for_validation",
}


def motivated_share(activations, key="motivated_share"):
    """summary["activations"][key] ("motivated_share" or "noise_motivated_share"), also from
    summaries written before the rename; None when the summary has neither name."""
    if key in activations:
        return activations[key]
    return activations.get(_OLD_KEYS[key])


def model_entry(summary: dict, model: str) -> dict:
    """`summary[model]` ("base" or "motivated"): the model's architecture, parameters, forward FLOPs and
    accuracies; from a summary older than schema 2, what its "final", "best" and "flops" held of that model."""
    if "schema" in summary:
        return summary.get(model) or {}
    prefix = "motivated_"
    final = summary.get("final") or {}
    if model == "base":
        entry = {k: v for k, v in final.items() if not k.startswith(prefix)}
    else:
        entry = {k[len(prefix) :]: v for k, v in final.items() if k.startswith(prefix)}
    best = (summary.get("best") or {}).get("accuracy" if model == "base" else prefix + "accuracy")
    if best is not None:
        entry["best_epoch_accuracy"] = best
    flops = summary.get("flops") or {}
    if model in flops:
        entry["forward_flops_per_image"] = flops[model]
    if f"{model}_macs" in flops:
        entry["forward_macs_per_image"] = flops[f"{model}_macs"]
    return entry


def accuracy(summary: dict, model: str = "base") -> float | None:
    """The model's final accuracy on the evaluation split (a fraction), or None."""
    return model_entry(summary, model).get("accuracy")


def forward_flops(summary: dict, model: str = "base") -> float | None:
    """The model's forward FLOPs per image, or None."""
    return model_entry(summary, model).get("forward_flops_per_image")


def training_flops(summary: dict, key: str = "total") -> float | None:
    """`summary["training_flops"][key]` (see the module docstring), also from older summaries; None without it."""
    if "schema" in summary:
        return (summary.get("training_flops") or {}).get(key)
    return (summary.get("flops") or {}).get(_OLD_TRAINING_FLOPS[key])


def export_metadata(summary: dict) -> dict:
    """What an exported SavedModel's assets/export_info.json says of the run: the pair, the evaluation and
    both models' entries (sizes, FLOPs, accuracies)."""
    return {
        "pair": summary.get("pair"),
        "evaluation": summary.get("evaluation"),
        **{name: model_entry(summary, name) for name in model_names(summary.get("pair") or ":")},
    }
