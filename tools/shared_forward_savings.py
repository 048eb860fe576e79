"""What the joint step's shared forward pass saves on each registry pair: one command, a Markdown table.

    python tools/shared_forward_savings.py

For each pair (at the study's input, Fashion-MNIST's 28x28x1, with its study's model arguments): where the
two forward passes part (the cut), the base's own layers (its tail) as a share of the base's forward FLOPs, and
a joint step's forward FLOPs per image with the shared trunk against the two passes, against the motivated
model's own forward, and with `--joint_base_share=0.25`. docs/guides/joint.md shows the table;
tests/test_shared_forward.py checks it.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Each pair with its study's model arguments (tools/examples/*/ep6/*/seed0/config.json).
PAIRS = {
    "resnet8:resnet14": {"width": 16},
    "resnet8:resnet20": {"width": 16},
    "resnet8:resnet8p14": {"width": 16},
    "resnet8:resnet8p20": {"width": 16},
    "resnet8:resnet32": {"width": 8},
    "vit_tiny_d2:vit_tiny_d4": {"patch_size": 7},
    # keras-hub's depth pairs (skipped where keras-hub is not installed), the ViT at the ViT study's patch size.
    "hub_resnet18:hub_resnet34": {},
    "hub_vit_tiny_d2:hub_vit_tiny_d4": {"patch_size": 7},
}


def rows(pairs=PAIRS, input_shape=(28, 28, 1)):
    """[(pair, its model arguments, cut, tail share of the base, joint / two passes, joint / motivated alone,
    share-0.25 joint / motivated alone)] of the pairs that can be built here (keras-hub's need keras-hub)."""
    import keras_motivation as km
    from keras_motivation import flops
    from keras_motivation.engine import joint as joint_lib

    out = []
    for name, kwargs in pairs.items():
        if km.models.unavailable(name):
            continue
        base, motivated, wmap = km.models.get_pair(name, 10, input_shape, **kwargs)
        model = km.MotivatedModel(base, motivated, wmap, km.conditions.Always(), joint=True)
        plan = model.shared_forward
        fx, fy, ft = flops.count_flops(base), flops.count_flops(motivated), flops.count_flops(plan.tail)
        joint = joint_lib.forward_flops(km.JointStep(), plan, fx, fy, ft)
        quarter = joint_lib.forward_flops(km.JointStep(base_share=0.25), plan, fx, fy, ft)
        out.append((name, kwargs, ", ".join(plan.cut), ft / fx, joint / (fx + fy), joint / fy, quarter / fy))
    return out


def markdown(table):
    lines = [
        "| pair | model arguments | the passes part after | base's own layers (share of its FLOPs) "
        "| joint step / two passes | joint step / motivated alone | with base share 0.25 / motivated alone |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, kwargs, cut, tail, two, alone, quarter in table:
        args = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "-"
        lines.append(f"| {name} | {args} | `{cut}` | {tail:.3f} | {two:.3f} | {alone:.3f} | {quarter:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    print(markdown(rows()))


if __name__ == "__main__":
    sys.exit(main())
