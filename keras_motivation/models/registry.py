"""Model pairs by name: `get_pair("resnet20:resnet32", num_classes, input_shape)`.

Each pair returns `(base, motivated, weights_map)` with the paper's map rule
for its family; `build_model(name, ...)` builds one model of a pair.

Besides the paper's sizes, two kinds of names build depth variants:
`resnet{b}p{n}` is CIFAR ResNet-b with ResNet-n's extra blocks appended to its
last stage (`resnet8p14`: [1, 1, 4] blocks), and `vit_{variant}_d{n}` is a ViT
of that variant's width at depth n (`vit_tiny_d2`). `PREFIX_PAIRS` lists the
pairs whose base is a prefix of the motivated model: the base's forward pass
is the first part of the motivated model's, up to the shared head
(`is_prefix_pair`).
"""

import re

import keras

from keras_motivation import weights_map as weights_map_lib
from keras_motivation.models import hub
from keras_motivation.models.efficientnet import efficientnet
from keras_motivation.models.resnet import BUILDERS as IMAGENET_RESNETS
from keras_motivation.models.resnet import resnet
from keras_motivation.models.resnet_cifar import prefix_resnet_cifar
from keras_motivation.models.resnet_cifar import resnet_cifar
from keras_motivation.models.vit import VARIANTS as VIT_VARIANTS
from keras_motivation.models.vit import vit

PAIRS = (
    "resnet8:resnet14",
    "resnet8:resnet20",  # the quickstart's base with a larger size gap (the study's second pair)
    "resnet20:resnet32",
    # The stress pair (issue 40), meant for width 8 (--model_kwargs=width=8): narrower networks, a bigger size gap.
    "resnet8:resnet32",
    "resnet32:resnet44",
    "resnet44:resnet56",
    "resnet56:resnet110",
    "resnet50:resnet101",
    "resnet101:resnet152",
    *(f"efficientnet_b{i}:efficientnet_b{i + 1}" for i in range(7)),
    "vit_tiny:vit_small",
    "vit_small:vit_base",
    # Prefix pairs (PREFIX_PAIRS): the motivated model's extra blocks all come after the base's last block.
    "resnet8:resnet8p14",  # [1, 1, 1] inside [1, 1, 4], the multiply-adds of ResNet-14
    "resnet8:resnet8p20",  # [1, 1, 1] inside [1, 1, 7], the multiply-adds of ResNet-20
    # ViT-Tiny's width, depth 2 inside depth 4 (the width map: same names; the extra blocks start as initialised).
    "vit_tiny_d2:vit_tiny_d4",
    # keras-hub classifiers (keras-hub is optional: `unavailable` says what is missing).
    "hub_resnet18:hub_resnet34",
    "hub_resnet50:hub_resnet101",
    "hub_vit_tiny:hub_vit_small",
    # keras-hub ViT-Tiny's width, depth 2 inside depth 4 (`derive`'s width rule maps the same-named layers).
    "hub_vit_tiny_d2:hub_vit_tiny_d4",
)

# The pairs whose base's forward pass is the first part of the motivated model's (then the shared head):
# one forward pass of the motivated model can give both outputs. tests/test_models.py checks each
# registry pair's map against this list.
PREFIX_PAIRS = (
    "resnet8:resnet8p14",
    "resnet8:resnet8p20",
    "vit_tiny_d2:vit_tiny_d4",
)

_PREFIX_RESNET = re.compile(r"resnet(?P<base>\d+)p(?P<depth>\d+)")
_VIT_DEPTH = re.compile(r"vit_(?P<variant>[a-z]+)(_d(?P<depth>\d+))?")
_HUB_VIT = re.compile(r"hub_vit_(?P<variant>[a-z]+)(_d(?P<depth>\d+))?")


def family(name):
    if re.fullmatch(r"hub_resnet\d+", name):
        return "hub_resnet"
    if _HUB_VIT.fullmatch(name):
        return "hub_vit"
    if re.fullmatch(r"resnet\d+", name):
        return "resnet" if int(name[6:]) in IMAGENET_RESNETS else "resnet_cifar"
    if _PREFIX_RESNET.fullmatch(name):
        return "resnet_cifar"
    if re.fullmatch(r"efficientnet_b\d", name):
        return "efficientnet"
    if _VIT_DEPTH.fullmatch(name):
        return "vit"
    raise ValueError(
        f"Unknown model {name!r}: use resnetN (CIFAR 6n+2 or 50/101/152), resnetBpN (CIFAR prefix), efficientnet_bN, "
        "vit_tiny/small/base (vit_tiny_dN for depth N), hub_resnetN (18/34/50/101/152) "
        "or hub_vit_tiny/small/base (hub_vit_tiny_dN)."
    )


def build_model(name: str, num_classes: int, input_shape: tuple[int, ...], **kwargs) -> keras.Model:
    """One model by registry name, e.g. build_model("resnet20", 10, (32, 32, 3), width=16)."""
    fam = family(name)
    prefix = _PREFIX_RESNET.fullmatch(name)
    if prefix:
        base_depth, depth = int(prefix["base"]), int(prefix["depth"])
        return prefix_resnet_cifar(base_depth, depth, num_classes=num_classes, input_shape=input_shape, **kwargs)
    if fam == "resnet_cifar":
        return resnet_cifar(int(name[6:]), num_classes=num_classes, input_shape=input_shape, **kwargs)
    if fam == "resnet":
        return resnet(int(name[6:]), num_classes=num_classes, input_shape=input_shape, **kwargs)
    if fam == "efficientnet":
        return efficientnet(name, num_classes=num_classes, input_shape=input_shape, **kwargs)
    if fam == "hub_resnet":
        return hub.hub_resnet(int(name[10:]), num_classes=num_classes, input_shape=input_shape, **kwargs)
    if fam == "hub_vit":
        return _vit(hub.hub_vit, _HUB_VIT, name, num_classes, input_shape, **kwargs)
    return _vit(vit, _VIT_DEPTH, name, num_classes, input_shape, **kwargs)


def _vit(build, pattern, name, num_classes, input_shape, **kwargs):
    """vit_tiny, or vit_tiny_d2 (ViT-Tiny's width at depth 2); the same for hub_vit_*."""
    m = pattern.fullmatch(name)
    if m["depth"] is None:
        return build(m["variant"], num_classes=num_classes, input_shape=input_shape, **kwargs)
    if "depth" in kwargs:
        stem = name[: -len(f"_d{m['depth']}")]
        raise ValueError(f"{name} sets its depth in its name: drop the depth argument or use {stem}.")
    depth = int(m["depth"])
    return build(m["variant"], num_classes=num_classes, input_shape=input_shape, depth=depth, name=name, **kwargs)


# Family -> the name of its paper map rule in `weights_map.RULES` (the rules are defined there only).
MAP_RULES = {
    "resnet_cifar": "resnet_depth",
    "resnet": "resnet_depth",
    "efficientnet": "efficientnet",
    "vit": "width",
    "hub_resnet": "resnet_depth",
    "hub_vit": "width",
}


def list_pairs() -> list[str]:
    return list(PAIRS)


def is_prefix_pair(name: str) -> bool:
    """Whether the registry pair `name`'s base is a prefix of its motivated model (see PREFIX_PAIRS)."""
    if name not in PAIRS:
        raise ValueError(f"Unknown pair {name!r}: use one of {', '.join(PAIRS)}.")
    return name in PREFIX_PAIRS


def unavailable(name):
    """Why the pair `name` cannot be built here (a missing optional package), or None."""
    if name in PAIRS and family(name.split(":")[0]).startswith("hub_") and not hub.available():
        return hub.INSTALL
    return None


def is_ladder(name):
    """Whether `name` names more than two models ("resnet8:resnet14:resnet20")."""
    return name.count(":") > 1


def check_ladder(name):
    """Raises a one-line ValueError unless `name` is a ladder of one family's models with its map rule."""
    names = name.split(":")
    families = {family(n) for n in names}
    if len(families) != 1:
        raise ValueError(f"Ladder {name!r}: the models must be of one family, got {', '.join(sorted(families))}.")
    (fam,) = families
    if fam not in MAP_RULES or fam.startswith("hub_"):
        raise ValueError(f"Ladder {name!r}: the {fam} family has no ladder here; use CIFAR ResNets, ResNets or ViTs.")
    if len(set(names)) != len(names):
        raise ValueError(f"Ladder {name!r}: each model once, smallest first.")
    sizes = [_size(n) for n in names]
    for (a, size_a), (b, size_b) in zip(zip(names, sizes), zip(names[1:], sizes[1:])):
        if all(x <= y for x, y in zip(size_a, size_b)):
            continue
        if all(x >= y for x, y in zip(size_a, size_b)):
            order = ":".join(sorted(names, key=_size))
            raise ValueError(f"Ladder {name!r}: {a} is bigger than {b}; give the models smallest first: {order}.")
        raise ValueError(f"Ladder {name!r}: {a} and {b} do not nest (one is wider, the other deeper).")


def _size(name):
    """A ladder model's size by its registry name, along each axis its family nests in: a ResNet's depth, a
    ViT's width and depth."""
    vit_name = _VIT_DEPTH.fullmatch(name)
    if vit_name:
        return (list(VIT_VARIANTS).index(vit_name["variant"]), int(vit_name["depth"] or VIT_VARIANTS["tiny"]["depth"]))
    prefix = _PREFIX_RESNET.fullmatch(name)
    return (int(prefix["depth"] if prefix else name[len("resnet") :]),)


def get_ladder(
    name: str, num_classes: int, input_shape: tuple[int, ...], **kwargs
) -> tuple[list[keras.Model], list[weights_map_lib.WeightsMap]]:
    """(models, weights maps) of a ladder such as "resnet8:resnet14:resnet20": each model by name, smallest
    first, and its family's map rule between each neighbouring pair."""
    check_ladder(name)
    names = name.split(":")
    try:
        models = [build_model(n, num_classes, input_shape, **kwargs) for n in names]
    except TypeError as err:
        raise ValueError(f"{name}: unsupported model argument ({err}).") from err
    rule = ladder_rule(name)
    return models, [weights_map_lib.get(rule, b, m) for b, m in zip(models, models[1:])]


def ladder_rule(name):
    """The map rule (a name in `weights_map.RULES`) between the neighbouring models of the ladder `name`."""
    names = name.split(":")
    return "first" if _is_prefix_resnet_ladder(names) else MAP_RULES[family(names[0])]


def _is_prefix_resnet_ladder(names):
    """Whether `names` are resnet{b} then resnet{b}p{n}s: each a prefix of the next under the first-blocks
    rule (the paper's last-to-last rule would put a prefix network's last block at the next one's end)."""
    bases = [m["base"] for m in map(_PREFIX_RESNET.fullmatch, names[1:]) if m]
    return len(bases) == len(names) - 1 and set(bases) == {names[0][len("resnet") :]}


def get_pair(
    name: str, num_classes: int, input_shape: tuple[int, ...], **kwargs
) -> tuple[keras.Model, keras.Model, weights_map_lib.WeightsMap]:
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
