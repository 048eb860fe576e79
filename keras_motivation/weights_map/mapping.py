"""`WeightsMap`: where each base variable sits inside the motivated model, and the copies through it."""

import collections
from collections.abc import Iterable

import keras

# RNG state of Dropout & co: not a model parameter, never copied.
_IGNORED_VARIABLE_NAMES = ("seed_generator_state",)

Entry = collections.namedtuple("Entry", ["base", "motivated", "start"])


def is_ignored(variable):
    return any(variable.name.endswith(n) for n in _IGNORED_VARIABLE_NAMES)


def mapped_variables(model):
    """The variables of `model` that a weights map must place."""
    return [v for v in model.weights if not is_ignored(v)]


def describe(variable):
    return f"{variable.path} {tuple(variable.shape)} {variable.dtype}"


class WeightsMap:
    """Entries `(base variable, motivated variable, start)` and the copies.

    Args:
        entries: iterable of `(base_variable, motivated_variable, start)`;
            `start` is a tuple of offsets into the motivated variable, or None
            for all zeros (the first entries of every axis).
        base: the base model. When both models are given, the map is checked
            to place every base variable (trainable or not, e.g. BatchNorm
            moving statistics) exactly once.
        motivated: the motivated model.

    Raises:
        ValueError: at construction, naming the offending variables, when a
            slice does not fit, dtypes or trainability differ, two base
            variables overlap in the motivated model, or a base variable is
            left unmapped.
    """

    def __init__(
        self,
        entries: Iterable[tuple[keras.Variable, keras.Variable, tuple[int, ...] | None]],
        base: keras.Model | None = None,
        motivated: keras.Model | None = None,
    ):
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
                problems.append(f"{describe(e.base)} is mapped more than once")
            seen_base.add(id(e.base))
            if len(bshape) != len(mshape) or len(e.start) != len(bshape):
                problems.append(f"{describe(e.base)} -> {describe(e.motivated)}: ranks differ")
                continue
            if any(s < 0 or s + b > m for s, b, m in zip(e.start, bshape, mshape)):
                problems.append(
                    f"{describe(e.base)} -> {describe(e.motivated)} at {e.start}: the base tensor does not fit inside"
                )
            if e.base.dtype != e.motivated.dtype:
                problems.append(f"{describe(e.base)} -> {describe(e.motivated)}: dtypes differ")
            if e.base.trainable != e.motivated.trainable:
                problems.append(f"{describe(e.base)} -> {describe(e.motivated)}: one is trainable and the other is not")
            regions[id(e.motivated)].append(e)
        for entries in regions.values():
            for i, a in enumerate(entries):
                for b in entries[i + 1 :]:
                    if _overlap(a, b):
                        problems.append(
                            f"{describe(a.base)} and {describe(b.base)} overlap inside {describe(a.motivated)}"
                        )
        if self.base is not None:
            for v in mapped_variables(self.base):
                if id(v) not in seen_base:
                    problems.append(f"{describe(v)} is not mapped")
        if problems:
            raise ValueError(
                "Invalid weights map (the motivated model must contain the base):\n  " + "\n  ".join(problems)
            )

    # -- copies --------------------------------------------------------------
    # Both run inside tf.function (and XLA): a full-shape entry is a plain
    # assign, a partial one a dynamic_update_slice / slice.

    def copy_to_motivated(self) -> None:
        """Writes every base variable into its slice of the motivated model."""
        copy_to_motivated(self.entries)

    def copy_to_base(self) -> None:
        """Reads every base variable back from its slice of the motivated model."""
        copy_to_base(self.entries)

    def differential_variables(self) -> list[keras.Variable]:
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


def compose(maps: Iterable[WeightsMap]) -> WeightsMap:
    """The map from the first map's base to the last map's motivated model, through each model between
    (a ladder's neighbouring maps: rung j inside rung r). Raises ValueError naming a variable that a map
    does not carry into the next model."""
    maps = list(maps)
    entries = maps[0].entries
    for i, outer in enumerate(maps[1:], start=1):
        by_base = {id(e.base): e for e in outer.entries}
        missing = [e.motivated.path for e in entries if id(e.motivated) not in by_base]
        if missing:
            raise ValueError(f"Cannot compose the maps: map {i} does not place {', '.join(missing)}.")
        entries = [
            Entry(
                e.base,
                by_base[id(e.motivated)].motivated,
                tuple(a + b for a, b in zip(e.start, by_base[id(e.motivated)].start)),
            )
            for e in entries
        ]
    return WeightsMap(entries, base=maps[0].base, motivated=maps[-1].motivated)


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
