"""Model pairs by name: `get_pair("resnet20:resnet32", num_classes, input_shape)`.

Each pair returns `(base, motivated, weights_map)` with the paper's map rule
for its family; `build_model(name, ...)` builds one model of a pair.
"""

import re

from keras_motivation import weights_map as weights_map_lib
from keras_motivation.models import hub
from keras_motivation.models.efficientnet import efficientnet
from keras_motivation.models.resnet import BUILDERS as IMAGENET_RESNETS
from keras_motivation.models.resnet import resnet
from keras_motivation.models.resnet_cifar import resnet_cifar
from keras_motivation.models.vit import vit

PAIRS = (
    "resnet8:resnet14",
    "resnet8:resnet20",  # the quickstart's base with a larger size gap (the study's second pair)
    "resnet20:resnet32",
    "resnet32:resnet44",
    "resnet44:resnet56",
    "resnet56:resnet110",
    "resnet50:resnet101",
    "resnet101:resnet152",
    *(f"efficientnet_b{i}:efficientnet_b{i + 1}" for i in range(7)),
    "vit_tiny:vit_small",
    "vit_small:vit_base",
    # keras-hub classifiers (keras-hub is optional: `unavailable` says what is missing).
    "hub_resnet18:hub_resnet34",
    "hub_resnet50:hub_resnet101",
    "hub_vit_tiny:hub_vit_small",
)


def family(name):
    if re.fullmatch(r"hub_resnet\d+", name):
        return "hub_resnet"
    if re.fullmatch(r"hub_vit_[a-z]+", name):
        return "hub_vit"
    if re.fullmatch(r"resnet\d+", name):
        return "resnet" if int(name[6:]) in IMAGENET_RESNETS else "resnet_cifar"
    if re.fullmatch(r"efficientnet_b\d", name):
        return "efficientnet"
    if re.fullmatch(r"vit_[a-z]+", name):
        return "vit"
    raise ValueError(
        f"Unknown model {name!r}: use resnetN (CIFAR 6n+2 or 50/101/152), efficientnet_bN, vit_tiny/small/base, "
        "hub_resnetN (18/34/50/101/152) or hub_vit_tiny/small/base."
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
    if fam == "hub_resnet":
        return hub.hub_resnet(int(name[10:]), num_classes=num_classes, input_shape=input_shape, **kwargs)
    if fam == "hub_vit":
        return hub.hub_vit(name[8:], num_classes=num_classes, input_shape=input_shape, **kwargs)
    return vit(name[4:], num_classes=num_classes, input_shape=input_shape, **kwargs)


# Family -> the name of its paper map rule in `weights_map.RULES` (the rules are defined there only).
MAP_RULES = {
    "resnet_cifar": "resnet_depth",
    "resnet": "resnet_depth",
    "efficientnet": "efficientnet",
    "vit": "width",
    "hub_resnet": "resnet_depth",
    "hub_vit": "width",
}


def list_pairs():
    return list(PAIRS)


def unavailable(name):
    """Why the pair `name` cannot be built here (a missing optional package), or None."""
    if name in PAIRS and family(name.split(":")[0]).startswith("hub_") and not hub.available():
        return hub.INSTALL
    return None


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
