"""Model pairs by name: `get_pair("resnet20:resnet32", num_classes, input_shape)`.

Each pair returns `(base, motivated, weights_map)` with the paper's map rule
for its family; `build_model(name, ...)` builds one model of a pair.
"""

import re

from keras_motivation import weights_map as weights_map_lib
from keras_motivation.models.efficientnet import efficientnet
from keras_motivation.models.resnet import BUILDERS as IMAGENET_RESNETS
from keras_motivation.models.resnet import resnet
from keras_motivation.models.resnet_cifar import resnet_cifar
from keras_motivation.models.vit import vit

PAIRS = (
    "resnet8:resnet14",
    "resnet20:resnet32",
    "resnet32:resnet44",
    "resnet44:resnet56",
    "resnet56:resnet110",
    "resnet50:resnet101",
    "resnet101:resnet152",
    *(f"efficientnet_b{i}:efficientnet_b{i + 1}" for i in range(7)),
    "vit_tiny:vit_small",
    "vit_small:vit_base",
)


def family(name):
    if re.fullmatch(r"resnet\d+", name):
        return "resnet" if int(name[6:]) in IMAGENET_RESNETS else "resnet_cifar"
    if re.fullmatch(r"efficientnet_b\d", name):
        return "efficientnet"
    if re.fullmatch(r"vit_[a-z]+", name):
        return "vit"
    raise ValueError(
        f"Unknown model {name!r}: use resnetN (CIFAR 6n+2 or 50/101/152), efficientnet_bN or vit_tiny/small/base."
    )


def build_model(name, num_classes, input_shape, **kwargs):
    """One model by registry name, e.g. build_model("resnet20", 10, (32, 32, 3), width=16)."""
    fam = family(name)
    if fam == "resnet_cifar":
        return resnet_cifar(int(name[6:]), num_classes=num_classes, input_shape=input_shape, **kwargs)
    if fam == "resnet":
        return resnet(int(name[6:]), num_classes=num_classes, input_shape=input_shape, **kwargs)
    if fam == "efficientnet":
        return efficientnet(name, num_classes=num_classes, input_shape=input_shape, **kwargs)
    return vit(name[4:], num_classes=num_classes, input_shape=input_shape, **kwargs)


# Family -> the name of its paper map rule in `weights_map.RULES` (the rules are defined there only).
MAP_RULES = {
    "resnet_cifar": "resnet_depth",
    "resnet": "resnet_depth",
    "efficientnet": "efficientnet",
    "vit": "width",
}


def list_pairs():
    return list(PAIRS)


def get_pair(name, num_classes, input_shape, **kwargs):
    """(base, motivated, weights_map) for a registry pair name such as "resnet20:resnet32"."""
    if name not in PAIRS:
        raise ValueError(f"Unknown pair {name!r}: use one of {', '.join(PAIRS)}.")
    x, y = name.split(":")
    try:
        base = build_model(x, num_classes, input_shape, **kwargs)
        motivated = build_model(y, num_classes, input_shape, **kwargs)
    except TypeError as err:
        raise ValueError(f"{name}: unsupported model argument ({err}).") from err
    return base, motivated, weights_map_lib.get(MAP_RULES[family(x)], base, motivated)
