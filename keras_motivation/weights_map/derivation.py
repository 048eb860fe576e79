"""`derive()`: a weights map from the two models' layer paths, block to block by a depth rule."""

import collections
import re
from collections.abc import Sequence

import keras

from keras_motivation import keras_internals
from keras_motivation.weights_map.mapping import WeightsMap
from keras_motivation.weights_map.mapping import describe
from keras_motivation.weights_map.mapping import is_ignored

# Block names of the families this package knows, matched against the name of
# each layer at every level of a model. Each pattern yields `stage` and
# `block` (an index, or a letter as in EfficientNet); the rest of the name is
# the layer's role inside the block (empty where one layer is the block).
DEFAULT_BLOCK_PATTERNS = (
    # resnet_cifar: stage2_block3_conv1; keras.applications ResNet:
    # conv4_block23_1_conv; keras-hub ResNet: stack2_block3_1_conv.
    r"^(?P<stage>[a-z]+\d+)_block(?P<block>\d+)_(?P<rest>.+)$",
    # keras.applications and keras-hub EfficientNet: block2c_expand_conv.
    r"^block(?P<stage>\d+)(?P<block>[a-z])_(?P<rest>.+)$",
    # A block that is one layer holding layers: keras-hub's ViT encoder holds
    # transformer_block_1 ..., its text models transformer_layer_0 ...
    # (not any `*_layer_N`: Keras names its input layers input_layer_N).
    r"^(?P<stage>[a-z][a-z0-9_]*_block|transformer_layer)_(?P<block>\d+)$",
)

# -- derivation from layer paths ---------------------------------------------
#
# derive() walks the two models' layer trees side by side: a model holds layers,
# a layer (a keras-hub backbone, a ViT encoder, a user's block container) may
# hold layers again. At every level the base's layers pair with motivated layers
# of the same level; a variable pairs with the variable of the same name in the
# paired layer. So a variable's place is its path of layer names, whether or
# not Keras' own `variable.path` spells all of it (layers of a functional
# sub-model are named without the sub-model).


class _Node:
    """One layer of a model's layer tree: its own variables and the layers it holds."""

    def __init__(self, layer, variables, children):
        self.layer, self.variables, self.children = layer, variables, children

    @property
    def name(self):
        return self.layer.name

    def all_variables(self):
        return self.variables + [v for c in self.children for v in c.all_variables()]

    def all_layers(self):
        return [self.layer] + [layer for c in self.children for layer in c.all_layers()]


def layer_tree(layer, seen=None):
    """The `_Node` tree of `layer` (weightless layers included).

    A layer shared by two parents keeps its variables where it is met first
    (`seen`: ids of the variables placed already).
    """
    seen = set() if seen is None else seen
    children = []
    for sub in keras_internals.sublayers(layer):
        children.append(layer_tree(sub, seen))
    own = [v for v in layer.weights if id(v) not in seen and not is_ignored(v)]
    seen.update(id(v) for v in own)
    return _Node(layer, own, children)


def parse_block_names(names, patterns):
    """name -> (stage, block, target) for the names that are residual blocks or
    lie inside one; `target(b)` is the name of the same role in block `b`."""
    compiled = [re.compile(p) for p in patterns]
    parsed = {}
    for name in names:
        for p in compiled:
            m = p.match(name)
            if m:
                head, tail = name[: m.start("block")], name[m.end("block") :]
                parsed[name] = (m["stage"], m["block"], lambda b, head=head, tail=tail: f"{head}{b}{tail}")
                break
    return parsed


def _parse_blocks(model, patterns):
    """layer name -> (stage, block, rest) for the model's own layers that lie in residual blocks."""
    parsed = parse_block_names([layer.name for layer in model.layers], patterns)
    return {name: (stage, block, name) for name, (stage, block, _) in parsed.items()}


def _block_key(block):
    return (len(block), block) if block.isdigit() else (0, block)


def _block_order(parsed):
    """stage -> ordered list of block ids (numeric or alphabetic order)."""
    stages = collections.defaultdict(set)
    for stage, block, _ in parsed.values():
        stages[stage].add(block)
    return {s: sorted(bs, key=_block_key) for s, bs in stages.items()}


def depth_rule(rule: str, n_base: int, n_motivated: int) -> list[int]:
    """Index in the motivated stage for each base block index.

    "first": base block i -> motivated block i.
    "last_to_last" (the paper's ResNet rule): blocks 0..l-2 keep their index
    and the last base block maps to the last motivated block. A stage with a
    single base block keeps it first: that block carries the stride and the
    projection shortcut, which only the first motivated block has.
    """
    if n_base > n_motivated:
        raise ValueError(f"a stage of the base has {n_base} blocks but the motivated stage only {n_motivated}")
    if rule == "first" or n_base == 1:
        return list(range(n_base))
    if rule == "last_to_last":
        return list(range(n_base - 1)) + [n_motivated - 1]
    raise ValueError(f"Unknown depth rule {rule!r}: use 'first' or 'last_to_last'.")


def derive(
    base: keras.Model,
    motivated: keras.Model,
    depth: str = "first",
    width: str = "first_channels",
    overrides: dict[str, str] | None = None,
    block_patterns: Sequence[str] = DEFAULT_BLOCK_PATTERNS,
) -> WeightsMap:
    """Derives a `WeightsMap` for two models from the paths of their variables.

    Both models' layer trees are walked side by side (nested models and
    layers that hold layers included). At each level, layers inside residual
    blocks (named as in `block_patterns`, wherever they sit) map stage by
    stage with the `depth` rule; every other layer maps to the motivated
    layer of the same name, or, for layers Keras named automatically
    (`normalization` vs `normalization_1`), to the motivated layer of the
    same class in the same order among the unmatched ones. `overrides` maps
    base layer names to motivated layer names explicitly and wins over both.
    Each variable pairs with the paired layer's variable of the same name,
    placed at the first entries of every axis (`width="first_channels"`).

    Raises:
        ValueError: listing every base variable that could not be placed, and why.
    """
    if width != "first_channels":
        raise ValueError(f"Unknown width rule {width!r}: use 'first_channels'.")
    if depth not in ("first", "last_to_last"):
        raise ValueError(f"Unknown depth rule {depth!r}: use 'first' or 'last_to_last'.")
    matcher = _Matcher(depth, dict(overrides or {}), block_patterns)
    matcher.match(layer_tree(base), layer_tree(motivated), ())
    if matcher.problems:
        raise ValueError("Cannot map the base into the motivated model:\n  " + "\n  ".join(matcher.problems))
    return WeightsMap(matcher.entries, base=base, motivated=motivated)


class _Matcher:
    """derive()'s walk: pairs the base's layers and variables with the motivated model's, level by level."""

    def __init__(self, depth, overrides, block_patterns):
        self.depth, self.overrides, self.block_patterns = depth, overrides, block_patterns
        self.entries, self.problems = [], []

    def match(self, b_node, m_node, m_path):
        self._match_variables(b_node, m_node, m_path)
        b_children = [c for c in b_node.children if c.all_variables()]
        m_children = [c for c in m_node.children if c.all_variables()]
        by_name = {c.name: c for c in m_children}
        for child, (target, reason) in self._child_targets(b_children, m_children).items():
            if reason is None and target not in by_name:
                reason = f"no motivated layer named {'/'.join((*m_path, target))!r}"
            if reason is not None:
                self.problems.extend(f"{describe(v)}: {reason}" for v in child.all_variables())
                continue
            self.match(child, by_name[target], (*m_path, target))

    def _match_variables(self, b_node, m_node, m_path):
        m_by_name = collections.defaultdict(list)
        for v in m_node.variables:
            m_by_name[v.name].append(v)
        taken = collections.Counter()
        for bv in b_node.variables:
            candidates = m_by_name.get(bv.name, [])
            if taken[bv.name] >= len(candidates):
                where = "/".join(m_path) or "the motivated model"
                self.problems.append(f"{describe(bv)}: {where} has no variable named {bv.name!r} to hold it")
                continue
            mv = candidates[taken[bv.name]]
            taken[bv.name] += 1
            bshape, mshape = tuple(bv.shape), tuple(mv.shape)
            if len(bshape) != len(mshape) or any(b > m for b, m in zip(bshape, mshape)):
                self.problems.append(f"{describe(bv)}: does not fit in {describe(mv)}")
                continue
            self.entries.append((bv, mv, None))

    def _child_targets(self, b_children, m_children):
        """{base child: (motivated layer name, None) or (None, why it has none)}."""
        b_blocks = parse_block_names([c.name for c in b_children], self.block_patterns)
        m_blocks = parse_block_names([c.name for c in m_children], self.block_patterns)
        b_order, m_order = _block_order(b_blocks), _block_order(m_blocks)
        block_target, stage_problem = {}, {}
        for stage, blocks in b_order.items():
            if stage not in m_order:
                stage_problem[stage] = f"stage {stage!r} of the base has no motivated counterpart"
                continue
            try:
                idx = depth_rule(self.depth, len(blocks), len(m_order[stage]))
            except ValueError as err:
                stage_problem[stage] = f"stage {stage!r}: {err}"
                continue
            for b, i in zip(blocks, idx):
                block_target[(stage, b)] = m_order[stage][i]
        by_order = _auto_named_pairs(b_children, m_children, self.overrides, b_blocks, m_blocks)
        targets = {}
        for child in b_children:
            if child.name in self.overrides:
                targets[child] = (self.overrides[child.name], None)
            elif child.name in by_order:
                targets[child] = (by_order[child.name], None)
            elif child.name in b_blocks:
                stage, block, target = b_blocks[child.name]
                if stage in stage_problem:
                    targets[child] = (None, stage_problem[stage])
                else:
                    targets[child] = (target(block_target[(stage, block)]), None)
            else:
                targets[child] = (child.name, None)
        return targets


def _auto_named_pairs(b_children, m_children, overrides, b_blocks, m_blocks):
    """Pairs layers of one level that Keras named automatically (`normalization`
    in one model, `normalization_1` in the other), and sub-models whatever
    their names: base layers whose name the motivated level lacks map, class
    by class and in graph order, to the motivated layers of that class whose
    name the base lacks, where both have as many. Block layers
    (`b_blocks`, `m_blocks`: parsed with derive's `block_patterns`) never pair."""
    b_names = {c.name for c in b_children}
    m_names = {c.name for c in m_children}

    def orphans(children, other_names, skip):
        out = collections.defaultdict(list)
        for c in children:
            auto = re.fullmatch(_snake_case(type(c.layer).__name__) + r"(_\d+)?", c.name)
            # A sub-model pairs whatever its name: two models of a pair name their backbones apart.
            if (auto or isinstance(c.layer, keras.Model)) and c.name not in other_names and c.name not in skip:
                out[type(c.layer)].append(c.name)
        return out

    b_orphans = orphans(b_children, m_names, set(overrides) | set(b_blocks))
    m_orphans = orphans(m_children, b_names, set(overrides.values()) | set(m_blocks))
    pairs = {}
    for cls, names in b_orphans.items():
        if len(names) == len(m_orphans.get(cls, ())):
            pairs.update(zip(names, m_orphans[cls]))
    return pairs


def _snake_case(name):
    # Keras' own rule for automatic layer names (Conv2D -> conv2d, ResNetBackbone -> res_net_backbone).
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
