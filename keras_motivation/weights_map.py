"""Where each base variable sits inside the motivated model, and the copies.

A `WeightsMap` is a list of entries `(base variable, motivated variable,
start)`: the base variable occupies the block of the motivated variable that
begins at `start` and has the base variable's shape. The paper always uses
the first channels / features / layers, so `start` is all zeros for every map
this package derives; other offsets are allowed for hand-written maps.

`derive()` builds a map for two models from the paths of their variables
(nested models and layers that hold layers included): layers outside
residual blocks map to the layer of the same name, layers inside blocks map
block to block by a depth rule (`"first"` or `"last_to_last"`), and every
tensor takes the first entries of each axis (the width rule).

`identity_start()` (opt-in) makes the motivated model's parts that no base
variable maps to start as no-ops (see the section "identity start").
"""

import collections
import re

import keras
import numpy as np

from keras_motivation import keras_internals

# RNG state of Dropout & co: not a model parameter, never copied.
_IGNORED_VARIABLE_NAMES = ("seed_generator_state",)

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

Entry = collections.namedtuple("Entry", ["base", "motivated", "start"])


def _is_ignored(variable):
    return any(variable.name.endswith(n) for n in _IGNORED_VARIABLE_NAMES)


def mapped_variables(model):
    """The variables of `model` that a weights map must place."""
    return [v for v in model.weights if not _is_ignored(v)]


def _describe(variable):
    return f"{variable.path} {tuple(variable.shape)} {variable.dtype}"


class WeightsMap:
    """Entries `(base variable, motivated variable, start)` and the copies.

    Args:
        entries: iterable of `(base_variable, motivated_variable, start)`;
            `start` is a tuple of offsets into the motivated variable, or None
            for all zeros (the first entries of every axis).
        base, motivated: the two models. When given, the map is checked to
            place every base variable (trainable or not, e.g. BatchNorm moving
            statistics) exactly once.

    Raises:
        ValueError at construction, naming the offending variables, when a
        slice does not fit, dtypes or trainability differ, two base variables
        overlap in the motivated model, or a base variable is left unmapped.
    """

    def __init__(self, entries, base=None, motivated=None):
        self.entries = [
            Entry(b, m, tuple(start) if start is not None else (0,) * len(b.shape)) for b, m, start in entries
        ]
        self.base = base
        self.motivated = motivated
        self._validate()

    def __len__(self):
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def _validate(self):
        problems = []
        seen_base = set()
        regions = collections.defaultdict(list)
        for e in self.entries:
            bshape, mshape = tuple(e.base.shape), tuple(e.motivated.shape)
            if id(e.base) in seen_base:
                problems.append(f"{_describe(e.base)} is mapped more than once")
            seen_base.add(id(e.base))
            if len(bshape) != len(mshape) or len(e.start) != len(bshape):
                problems.append(f"{_describe(e.base)} -> {_describe(e.motivated)}: ranks differ")
                continue
            if any(s < 0 or s + b > m for s, b, m in zip(e.start, bshape, mshape)):
                problems.append(
                    f"{_describe(e.base)} -> {_describe(e.motivated)} at {e.start}: the base tensor does not fit inside"
                )
            if e.base.dtype != e.motivated.dtype:
                problems.append(f"{_describe(e.base)} -> {_describe(e.motivated)}: dtypes differ")
            if e.base.trainable != e.motivated.trainable:
                problems.append(
                    f"{_describe(e.base)} -> {_describe(e.motivated)}: one is trainable and the other is not"
                )
            regions[id(e.motivated)].append(e)
        for entries in regions.values():
            for i, a in enumerate(entries):
                for b in entries[i + 1 :]:
                    if _overlap(a, b):
                        problems.append(
                            f"{_describe(a.base)} and {_describe(b.base)} overlap inside {_describe(a.motivated)}"
                        )
        if self.base is not None:
            for v in mapped_variables(self.base):
                if id(v) not in seen_base:
                    problems.append(f"{_describe(v)} is not mapped")
        if problems:
            raise ValueError(
                "Invalid weights map (the motivated model must contain the base):\n  " + "\n  ".join(problems)
            )

    # -- copies --------------------------------------------------------------
    # Both run inside tf.function (and XLA): a full-shape entry is a plain
    # assign, a partial one a dynamic_update_slice / slice.

    def copy_to_motivated(self):
        """Writes every base variable into its slice of the motivated model."""
        copy_to_motivated(self.entries)

    def copy_to_base(self):
        """Reads every base variable back from its slice of the motivated model."""
        copy_to_base(self.entries)

    def differential_variables(self):
        """Motivated variables (and parts) that no base variable maps to."""
        covered = {id(e.motivated) for e in self.entries}
        return [v for v in mapped_variables(self.motivated) if id(v) not in covered]

    # -- serialization -------------------------------------------------------

    def get_config(self):
        """Entries as indices into `base.weights` / `motivated.weights`."""
        b_index = {id(v): i for i, v in enumerate(self.base.weights)}
        m_index = {id(v): i for i, v in enumerate(self.motivated.weights)}
        return {"entries": [[b_index[id(e.base)], m_index[id(e.motivated)], list(e.start)] for e in self.entries]}

    @classmethod
    def from_config(cls, config, base, motivated):
        bw, mw = base.weights, motivated.weights
        return cls(
            [(bw[b], mw[m], tuple(s)) for b, m, s in config["entries"]],
            base=base,
            motivated=motivated,
        )


def _overlap(a, b):
    return all(sa < sb + nb and sb < sa + na for sa, na, sb, nb in zip(a.start, a.base.shape, b.start, b.base.shape))


def copy_to_motivated(entries):
    for e in entries:
        if tuple(e.base.shape) == tuple(e.motivated.shape):
            e.motivated.assign(e.base.value)
        else:
            e.motivated.assign(keras.ops.slice_update(e.motivated.value, e.start, e.base.value))


def copy_to_base(entries):
    for e in entries:
        if tuple(e.base.shape) == tuple(e.motivated.shape):
            e.base.assign(e.motivated.value)
        else:
            e.base.assign(keras.ops.slice(e.motivated.value, e.start, tuple(e.base.shape)))


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


def _layer_tree(layer, seen=None):
    """The `_Node` tree of `layer` (weightless layers included).

    A layer shared by two parents keeps its variables where it is met first
    (`seen`: ids of the variables placed already).
    """
    seen = set() if seen is None else seen
    children = []
    for sub in keras_internals.sublayers(layer):
        children.append(_layer_tree(sub, seen))
    own = [v for v in layer.weights if id(v) not in seen and not _is_ignored(v)]
    seen.update(id(v) for v in own)
    return _Node(layer, own, children)


def _parse_names(names, patterns):
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
    parsed = _parse_names([layer.name for layer in model.layers], patterns)
    return {name: (stage, block, name) for name, (stage, block, _) in parsed.items()}


def _block_key(block):
    return (len(block), block) if block.isdigit() else (0, block)


def _block_order(parsed):
    """stage -> ordered list of block ids (numeric or alphabetic order)."""
    stages = collections.defaultdict(set)
    for stage, block, _ in parsed.values():
        stages[stage].add(block)
    return {s: sorted(bs, key=_block_key) for s, bs in stages.items()}


def depth_rule(rule, n_base, n_motivated):
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
    base,
    motivated,
    depth="first",
    width="first_channels",
    overrides=None,
    block_patterns=DEFAULT_BLOCK_PATTERNS,
):
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
        ValueError listing every base variable that could not be placed, and why.
    """
    if width != "first_channels":
        raise ValueError(f"Unknown width rule {width!r}: use 'first_channels'.")
    if depth not in ("first", "last_to_last"):
        raise ValueError(f"Unknown depth rule {depth!r}: use 'first' or 'last_to_last'.")
    matcher = _Matcher(depth, dict(overrides or {}), block_patterns)
    matcher.match(_layer_tree(base), _layer_tree(motivated), ())
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
                self.problems.extend(f"{_describe(v)}: {reason}" for v in child.all_variables())
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
                self.problems.append(f"{_describe(bv)}: {where} has no variable named {bv.name!r} to hold it")
                continue
            mv = candidates[taken[bv.name]]
            taken[bv.name] += 1
            bshape, mshape = tuple(bv.shape), tuple(mv.shape)
            if len(bshape) != len(mshape) or any(b > m for b, m in zip(bshape, mshape)):
                self.problems.append(f"{_describe(bv)}: does not fit in {_describe(mv)}")
                continue
            self.entries.append((bv, mv, None))

    def _child_targets(self, b_children, m_children):
        """{base child: (motivated layer name, None) or (None, why it has none)}."""
        b_blocks = _parse_names([c.name for c in b_children], self.block_patterns)
        m_blocks = _parse_names([c.name for c in m_children], self.block_patterns)
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


def resnet_depth_map(base, motivated):
    """The paper's CIFAR/ImageNet ResNet map: depth only, last block to last block."""
    return derive(base, motivated, depth="last_to_last")


def efficientnet_map(base, motivated):
    """The paper's EfficientNet map: first channels, first blocks of each stage."""
    return derive(base, motivated, depth="first")


def width_map(base, motivated):
    """Width only (e.g. ViT): same layer names, first channels of every axis."""
    return derive(base, motivated, depth="first", block_patterns=())


RULES = {
    "resnet_depth": resnet_depth_map,
    "efficientnet": efficientnet_map,
    "width": width_map,
    "first": lambda b, m: derive(b, m, depth="first"),
    "last_to_last": lambda b, m: derive(b, m, depth="last_to_last"),
}


def get(identifier, base, motivated):
    """A WeightsMap from a map, a rule name in `RULES`, or a callable."""
    if isinstance(identifier, WeightsMap):
        return identifier
    if isinstance(identifier, str):
        if identifier not in RULES:
            raise ValueError(
                f"Unknown weights map {identifier!r}: use one of {sorted(RULES)}, "
                "a WeightsMap, or a callable(base, motivated) -> WeightsMap."
            )
        return RULES[identifier](base, motivated)
    if callable(identifier):
        return identifier(base, motivated)
    raise TypeError(f"weights_map must be a WeightsMap, a rule name or a callable, got {identifier!r}")


# -- identity start ----------------------------------------------------------
#
# Identity start (our extension, opt-in): differential parts begin as no-ops.
#
# In the paper's maps the motivated model's differential parts start from
# random initialisation, so at its first activation the motivated model
# computes a function far from the base's. `identity_start(weights_map)` makes
# them no-ops, so that right after the first copy the motivated model computes
# the base's function:
#
# - depth: the gamma of the last BatchNorm of each differential block's
#   residual branch is zero, so the branch outputs zero and the block is the
#   identity (exact); a block that is one layer adding its residuals in `call`
#   (keras-hub's pre-norm transformer blocks) gets zero output projections of
#   its attention and MLP instead (exact, checked when it starts);
# - width: every weight that reads an extra channel or feature (the input axes
#   of a widened kernel beyond the mapped slice) is zero, so the base's
#   channels never see the extra ones. The extra channels themselves keep their
#   random incoming weights, so they are non-zero and learn (zeroing both sides
#   would leave them at a saddle with zero gradient). Exact for convolutional
#   nets, whose channel-wise BatchNorm, activations, squeeze-excite gates and
#   pooling never mix channels; not exact where a layer mixes all features
#   without weights: LayerNorm's mean and variance over a wider embedding (ViT)
#   include the extra features. `tests/test_models.py` measures that gap.


def _blocks(model, block_patterns):
    """{(stage, block): [layers]} of every residual block of `model`, wherever it
    sits; a block held inside another layer has its stage prefixed by that
    layer's path (`res_net_backbone/stack2`)."""
    blocks = collections.defaultdict(list)

    def walk(node, path):
        parsed = _parse_names([c.name for c in node.children], block_patterns)
        for c in node.children:
            if c.name in parsed:
                stage, block, _ = parsed[c.name]
                blocks[("/".join((*path, stage)), block)].extend(c.all_layers())
            else:
                walk(c, (*path, c.name))

    walk(_layer_tree(model), ())
    return blocks


def differential_blocks(weights_map, block_patterns=DEFAULT_BLOCK_PATTERNS):
    """{(stage, block): [layers]} of the motivated model's blocks no base variable maps to."""
    covered = {id(e.motivated) for e in weights_map}
    return {
        key: layers
        for key, layers in _blocks(weights_map.motivated, block_patterns).items()
        if not any(id(v) in covered for layer in layers for v in layer.weights)
    }


def branch_gammas(weights_map, block_patterns=DEFAULT_BLOCK_PATTERNS):
    """[(stage, block, differential, mean |gamma|)] of the last BatchNorm of each
    residual branch of the motivated model, in block order: how far each block is
    from the identity (0: the identity start's differential blocks)."""
    blocks = _blocks(weights_map.motivated, block_patterns)
    differential = differential_blocks(weights_map, block_patterns)
    rows = []
    for key, layers in sorted(blocks.items()):
        bn = _branch_end(layers)
        if bn is not None and bn.scale:
            rows.append((*key, key in differential, float(np.mean(np.abs(bn.gamma.numpy())))))
    return rows


def _branch_end(layers):
    """The last BatchNormalization of a block's residual branch (not its shortcut)."""
    bns = [
        layer
        for layer in layers
        if isinstance(layer, keras.layers.BatchNormalization)
        and "shortcut" not in layer.name
        and not layer.name.endswith("_0_bn")
    ]
    return bns[-1] if bns else None


def _silence_extra_inputs(weights_map):
    """Zeroes the parts of widened kernels that read extra channels; returns their paths."""
    owners = {}

    def index(node):
        owners.update((id(v), node) for v in node.variables)
        for c in node.children:
            index(c)

    index(_layer_tree(weights_map.motivated))
    silenced = []
    for e in weights_map:
        kernel = e.motivated
        if kernel.name != "kernel" or tuple(e.base.shape) == tuple(kernel.shape):
            continue
        # The output axes are those of the layer's bias (the last axis when
        # there is none): Dense/Conv [.., in, out], attention q/k/v [d, heads,
        # head_dim] and its output projection [heads, head_dim, d].
        owner = owners.get(id(kernel))
        bias = next((v for v in owner.variables if v.name == "bias"), None) if owner else None
        inputs = len(kernel.shape) - (len(bias.shape) if bias is not None else 1)
        keep = np.ones(kernel.shape, bool)
        for axis in range(inputs):
            mapped = np.zeros(kernel.shape[axis], bool)
            mapped[e.start[axis] : e.start[axis] + e.base.shape[axis]] = True
            keep &= mapped.reshape([-1 if a == axis else 1 for a in range(len(kernel.shape))])
        if not keep.all():
            kernel.assign(np.where(keep, kernel.numpy(), 0).astype(kernel.dtype))
            silenced.append(kernel.path)
    return silenced


def _is_one_layer_block(layers):
    """Whether a block's layers are one layer and what it holds (keras-hub's transformer_block_N)."""
    return bool(layers) and {id(layer) for layer in layers} == {id(x) for x in _layer_tree(layers[0]).all_layers()}


def _start_attention_block(block, gamma, noise, rng):
    """A block that is one layer adding its residuals inside `call` (keras-hub's
    pre-norm transformer blocks): scales the output projections of its
    branches, the attention's and the last Dense (the MLP's), by `gamma` (plus
    noise) and zeroes their biases. At gamma 0 each branch outputs zero, so
    the block is the identity: checked on random tokens, and undone (None
    returned) where it does not hold, as in a post-norm block. Returns the
    paths of the kernels it set."""
    layers = _layer_tree(block).all_layers()
    attention = [x for x in layers if isinstance(x, keras.layers.MultiHeadAttention)]
    dense = [x for x in layers if isinstance(x, keras.layers.Dense)]
    if not attention or not dense:
        return None
    # Keras names a MultiHeadAttention's output projection attention_output.
    outputs = [x for a in attention for x in keras_internals.sublayers(a) if x.name == "attention_output"]
    outputs.append(dense[-1])
    if len(outputs) != len(attention) + 1:
        return None
    saved = [(v, v.numpy()) for layer in outputs for v in layer.weights]
    for v, value in saved:
        v.assign(np.zeros_like(value))
    # The last Dense projects back to the residual stream: its width is the block's.
    tokens = np.random.default_rng(0).normal(size=(2, 3, dense[-1].units)).astype(block.compute_dtype)
    if not np.allclose(keras.ops.convert_to_numpy(block(tokens, training=False)), tokens, atol=1e-6):
        for v, value in saved:
            v.assign(value)
        return None
    for v, value in saved:
        if v.name == "kernel" and (gamma or noise):
            scaled = gamma * value + (rng.normal(0.0, noise, value.shape) if noise else 0.0)
            v.assign(scaled.astype(value.dtype))
    return [v.path for v, _ in saved if v.name == "kernel"]


def identity_start(weights_map, gamma=0.0, noise=0.0, seed=None):
    """Makes the motivated model's differential parts no-ops (see the section comment above).

    Args:
        gamma: the value the last BatchNorm gamma of each differential block
            takes; 0 (the default) makes the block the identity, a small value
            (0.1, 0.25) starts it near the identity with a gradient into the
            block's other weights.
        noise: standard deviation of Gaussian noise added to those gammas
            (the identity start "with noise", as growth methods start added
            layers: Net2Net, bert2BERT).
        seed: seed of that noise.

    A differential block that is one layer holding a pre-norm transformer
    block (keras-hub's ViT `transformer_block_N`, which adds its residuals
    inside `call`) starts with the output projections of its attention and
    MLP scaled by `gamma` (zero by default) and their biases zero: the
    identity too.

    Returns the names of the BatchNorm layers whose gamma was set and the
    paths of the kernels whose extra-channel inputs were zeroed or that were
    scaled.

    Raises:
        ValueError when a differential block has no residual connection or no
        BatchNorm to set: such a block cannot start as the identity.
    """
    for name, value in (("gamma", gamma), ("noise", noise)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"identity_start needs {name} >= 0, got {value!r}.")
    rng = np.random.default_rng(seed)
    zeroed = _silence_extra_inputs(weights_map)
    for (stage, block), layers in sorted(differential_blocks(weights_map).items()):
        if _branch_end(layers) is None and _is_one_layer_block(layers):
            started = _start_attention_block(layers[0], gamma, noise, rng)
            if started:
                zeroed.extend(started)
                continue
        if not any(isinstance(layer, keras.layers.Add) for layer in layers):
            raise ValueError(
                f"Differential block {stage}/{block} has no residual Add: it cannot start as the identity."
            )
        bn = _branch_end(layers)
        if bn is None or not bn.scale:
            raise ValueError(f"Differential block {stage}/{block} has no BatchNormalization with a gamma to zero.")
        value = np.full(bn.gamma.shape, gamma) + (rng.normal(0.0, noise, bn.gamma.shape) if noise else 0.0)
        bn.gamma.assign(value.astype(bn.gamma.dtype))
        zeroed.append(bn.name)
    return zeroed
