"""Where each base variable sits inside the motivated model, and the copies.

A `WeightsMap` is a list of entries `(base variable, motivated variable,
start)`: the base variable occupies the block of the motivated variable that
begins at `start` and has the base variable's shape. The paper always uses
the first channels / features / layers, so `start` is all zeros for every map
this package derives; other offsets are allowed for hand-written maps.

`derive()` builds a map for two functional models from layer names: layers
outside residual blocks map to the layer of the same name, layers inside
blocks map block to block by a depth rule (`"first"` or `"last_to_last"`),
and every tensor takes the first entries of each axis (the width rule).

`identity_start()` (opt-in) makes the motivated model's parts that no base
variable maps to start as no-ops (see the section "identity start").
"""

import collections
import re

import keras
import numpy as np

# RNG state of Dropout & co: not a model parameter, never copied.
_IGNORED_VARIABLE_NAMES = ("seed_generator_state",)

# Block names of the families this package knows. Each pattern yields
# `stage`, `block` (an index, or a letter as in keras.applications'
# EfficientNet) and `rest` (the layer's role inside the block).
DEFAULT_BLOCK_PATTERNS = (
    # resnet_cifar: stage2_block3_conv1; keras.applications ResNet:
    # conv4_block23_1_conv.
    r"^(?P<stage>[a-z]+\d+)_block(?P<block>\d+)_(?P<rest>.+)$",
    # keras.applications EfficientNet: block2c_expand_conv.
    r"^block(?P<stage>\d+)(?P<block>[a-z])_(?P<rest>.+)$",
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


# -- derivation from layer names -------------------------------------------


def _parse_blocks(model, patterns):
    """layer name -> (stage, block, rest) for layers inside residual blocks."""
    compiled = [re.compile(p) for p in patterns]
    parsed = {}
    for layer in model.layers:
        for p in compiled:
            m = p.match(layer.name)
            if m:
                parsed[layer.name] = (m["stage"], m["block"], m["rest"])
                break
    return parsed


def _block_order(parsed):
    """stage -> ordered list of block ids (numeric or alphabetic order)."""
    stages = collections.defaultdict(set)
    for stage, block, _ in parsed.values():
        stages[stage].add(block)
    key = lambda b: (len(b), b) if b.isdigit() else (0, b)  # noqa: E731
    return {s: sorted(bs, key=key) for s, bs in stages.items()}


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
    """Derives a `WeightsMap` for two functional models from layer names.

    Layers inside residual blocks (named as in `block_patterns`) map stage by
    stage with the `depth` rule; every other layer maps to the motivated
    layer of the same name, or, for layers Keras named automatically
    (`normalization` vs `normalization_1`), to the motivated layer of the
    same class in the same order among the unmatched ones. `overrides` maps base layer names to motivated
    layer names explicitly and wins over both. Each variable of a base layer
    pairs with the motivated layer's variable of the same position, placed at
    the first entries of every axis (`width="first_channels"`).

    Raises:
        ValueError listing every base variable that could not be placed, and why.
    """
    if width != "first_channels":
        raise ValueError(f"Unknown width rule {width!r}: use 'first_channels'.")
    overrides = dict(overrides or {})
    m_layers = {layer.name: layer for layer in motivated.layers}
    b_blocks = _parse_blocks(base, block_patterns)
    m_blocks = _parse_blocks(motivated, block_patterns)
    b_order, m_order = _block_order(b_blocks), _block_order(m_blocks)

    problems, entries = [], []
    block_target = {}
    for stage, blocks in b_order.items():
        if stage not in m_order:
            problems.append(f"stage {stage!r} of the base has no motivated counterpart")
            continue
        try:
            idx = depth_rule(depth, len(blocks), len(m_order[stage]))
        except ValueError as err:
            problems.append(f"stage {stage!r}: {err}")
            continue
        for b, i in zip(blocks, idx):
            block_target[(stage, b)] = m_order[stage][i]

    inverse_patterns = _block_name_formats(base, b_blocks)
    by_order = _auto_named_pairs(base, motivated, overrides, b_blocks, m_blocks)
    for layer in base.layers:
        weights = [v for v in layer.weights if not _is_ignored(v)]
        if not weights:
            continue
        if layer.name in overrides:
            target = overrides[layer.name]
        elif layer.name in by_order:
            target = by_order[layer.name]
        elif layer.name in b_blocks:
            stage, block, _ = b_blocks[layer.name]
            if (stage, block) not in block_target:
                for v in weights:
                    problems.append(f"{_describe(v)}: its stage cannot be mapped")
                continue
            target = inverse_patterns[layer.name](block_target[(stage, block)])
        else:
            target = layer.name
        m_layer = m_layers.get(target)
        if m_layer is None:
            for v in weights:
                problems.append(f"{_describe(v)}: no motivated layer named {target!r}")
            continue
        m_weights = [v for v in m_layer.weights if not _is_ignored(v)]
        if len(m_weights) != len(weights):
            for v in weights:
                problems.append(
                    f"{_describe(v)}: layer {target!r} of the motivated model "
                    f"has {len(m_weights)} variables, the base layer {len(weights)}"
                )
            continue
        for bv, mv in zip(weights, m_weights):
            bshape, mshape = tuple(bv.shape), tuple(mv.shape)
            if len(bshape) != len(mshape) or any(b > m for b, m in zip(bshape, mshape)):
                problems.append(f"{_describe(bv)}: does not fit in {_describe(mv)}")
                continue
            entries.append((bv, mv, None))
    if problems:
        raise ValueError("Cannot map the base into the motivated model:\n  " + "\n  ".join(problems))
    return WeightsMap(entries, base=base, motivated=motivated)


def _auto_named_pairs(base, motivated, overrides, b_blocks, m_blocks):
    """Pairs layers that Keras named automatically (`normalization` in one model,
    `normalization_1` in the other): base layers with weights whose name the
    motivated model lacks map, class by class and in graph order, to the
    motivated layers of that class whose name the base lacks. Block layers
    (`b_blocks`, `m_blocks`: parsed with derive's `block_patterns`) never pair."""
    b_names = {layer.name for layer in base.layers}
    m_names = {layer.name for layer in motivated.layers}

    def orphans(model, other_names, skip):
        out = collections.defaultdict(list)
        for layer in model.layers:
            auto = re.fullmatch(_snake_case(type(layer).__name__) + r"(_\d+)?", layer.name)
            if auto and layer.weights and layer.name not in other_names and layer.name not in skip:
                out[type(layer)].append(layer.name)
        return out

    b_orphans = orphans(base, m_names, set(overrides) | set(b_blocks))
    m_orphans = orphans(motivated, b_names, set(overrides.values()) | set(m_blocks))
    pairs = {}
    for cls, names in b_orphans.items():
        if len(names) == len(m_orphans.get(cls, ())):
            pairs.update(zip(names, m_orphans[cls]))
    return pairs


def _snake_case(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _block_name_formats(model, parsed):
    """layer name -> function(block id) giving the same role in another block."""
    formats = {}
    for name, (_, block, rest) in parsed.items():
        # Rebuild the name around the block id: the block id is the only part
        # of the name that differs between the same role in two blocks.
        head = name[: len(name) - len(rest) - 1]
        prefix = head[: len(head) - len(block)]
        formats[name] = lambda b, prefix=prefix, rest=rest: f"{prefix}{b}_{rest}"
    return formats


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
#   identity (exact);
# - width: every weight that reads an extra channel or feature (the input axes
#   of a widened kernel beyond the mapped slice) is zero, so the base's
#   channels never see the extra ones. The extra channels themselves keep their
#   random incoming weights, so they are non-zero and learn (zeroing both sides
#   would leave them at a saddle with zero gradient). Exact for convolutional
#   nets, whose channel-wise BatchNorm, activations, squeeze-excite gates and
#   pooling never mix channels; not exact where a layer mixes all features
#   without weights: LayerNorm's mean and variance over a wider embedding (ViT)
#   include the extra features. `tests/test_models.py` measures that gap.


def differential_blocks(weights_map, block_patterns=DEFAULT_BLOCK_PATTERNS):
    """{(stage, block): [layers]} of the motivated model's blocks no base variable maps to."""
    motivated = weights_map.motivated
    parsed = _parse_blocks(motivated, block_patterns)
    covered = {id(e.motivated) for e in weights_map}
    blocks = collections.defaultdict(list)
    for layer in motivated.layers:
        if layer.name in parsed:
            stage, block, _ = parsed[layer.name]
            blocks[(stage, block)].append(layer)
    return {
        key: layers
        for key, layers in blocks.items()
        if not any(id(v) in covered for layer in layers for v in layer.weights)
    }


def branch_gammas(weights_map, block_patterns=DEFAULT_BLOCK_PATTERNS):
    """[(stage, block, differential, mean |gamma|)] of the last BatchNorm of each
    residual branch of the motivated model, in block order: how far each block is
    from the identity (0: the identity start's differential blocks)."""
    parsed = _parse_blocks(weights_map.motivated, block_patterns)
    blocks = collections.defaultdict(list)
    for layer in weights_map.motivated.layers:
        if layer.name in parsed:
            stage, block, _ = parsed[layer.name]
            blocks[(stage, block)].append(layer)
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
    variables = {v.path: v for v in weights_map.motivated.weights}
    silenced = []
    for e in weights_map:
        kernel = e.motivated
        if kernel.path.rsplit("/", 1)[-1] != "kernel" or tuple(e.base.shape) == tuple(kernel.shape):
            continue
        # The output axes are those of the layer's bias (the last axis when
        # there is none): Dense/Conv [.., in, out], attention q/k/v [d, heads,
        # head_dim] and its output projection [heads, head_dim, d].
        bias = variables.get(kernel.path.rsplit("/", 1)[0] + "/bias")
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

    Returns the names of the BatchNorm layers whose gamma was set and the
    paths of the kernels whose extra-channel inputs were zeroed.

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
