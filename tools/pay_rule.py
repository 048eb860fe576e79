"""The "Does it pay?" rule: a dual run against the classical front (used by tools/report.py).

The front of a model is what it reaches trained alone: one `FrontPoint` per
budget (epochs), at the mean training compute and test accuracy over seeds.
Between budgets it is linear, from chance at zero compute, and it only goes up
(`reach` gives the best accuracy any budget up to that compute reaches). A
dual run pays when no split of its compute between the two models trained
alone gives both its accuracies; its small model comes free when the
motivated model is as good as the big model trained alone with all the
compute and the base is within `SMALL_MODEL_TOLERANCE` points of the small
model trained alone for the same epochs.
"""

import typing

# Points of test accuracy a dual run's base may fall short of X-C of the same
# epochs while its small model still counts as free.
SMALL_MODEL_TOLERANCE = 0.3


class FrontPoint(typing.NamedTuple):
    """One budget of the classical front: a model trained alone for `epochs`, means over its seeds."""

    epochs: int
    compute: float  # training FLOPs
    accuracy: float  # test accuracy %
    sd: float  # of the accuracy over seeds
    cpu_s: float
    seeds: int


def _envelope(points, chance):
    """(compute, best accuracy reachable with at most that compute), from (0, chance)."""
    out, best = [(0.0, chance)], chance
    for p in points:
        best = max(best, p.accuracy)
        out.append((p.compute, best))
    return out


def reach(points, compute, chance=10.0):
    """Accuracy a separately trained model reaches with `compute` (linear between
    measured budgets, from chance at zero compute; capped at the largest budget)."""
    env = _envelope(points, chance)
    for (c0, a0), (c1, a1) in zip(env, env[1:]):
        if compute <= c1:
            return a0 + (a1 - a0) * (compute - c0) / (c1 - c0) if c1 > c0 else a1
    return env[-1][1]


def compute_to_reach(points, accuracy, chance=10.0):
    """Least compute for which the front reaches `accuracy`; None beyond the front."""
    env = _envelope(points, chance)
    if accuracy <= env[0][1]:
        return 0.0
    for (c0, a0), (c1, a1) in zip(env, env[1:]):
        if accuracy <= a1:
            return c0 + (c1 - c0) * (accuracy - a0) / (a1 - a0) if a1 > a0 else c0
    return None


def verdict(front, compute, acc_b, acc_m, chance):
    """Whether no split of `compute` between X-C and Y-C gives both accuracies,
    and the accuracy Y-C reaches with what is left after X-C reaches acc_b."""
    cx = compute_to_reach(front["base"], acc_b, chance)
    if cx is None:  # the base beats every X-C budget measured: X-C would need more than the largest
        cx = front["base"][-1].compute
        beyond = True
    else:
        beyond = False
    left = compute - cx
    y_left = reach(front["motivated"], left, chance) if left > 0 else None
    cy = compute_to_reach(front["motivated"], acc_m, chance)
    separate = cx + (cy if cy is not None else front["motivated"][-1].compute)
    # Beyond the front, `separate` is a lower bound: it decides only a "yes".
    pays = True if separate > compute else (None if beyond or cy is None else False)
    return {
        "x_compute": cx,
        "x_beyond_front": beyond,
        "y_with_rest": y_left,
        "separate_compute": separate,
        "y_beyond_front": cy is None,
        "pays": pays,
    }


def small_model_free(acc_b, sd_b, acc_m, sd_m, y_alone, xc):
    """(free, within noise): the motivated model at least `y_alone` (Y-C with all the compute) and the
    base within SMALL_MODEL_TOLERANCE points of `xc` (X-C's FrontPoint of the same epochs, or None:
    never free); within noise when one seed sd of the dual run moves either test across its line."""
    if xc is None:
        return False, False
    base_line = xc.accuracy - SMALL_MODEL_TOLERANCE
    free = acc_m >= y_alone and acc_b >= base_line
    noise = (acc_m - sd_m < y_alone) != (acc_m + sd_m < y_alone) or (acc_b - sd_b < base_line) != (
        acc_b + sd_b < base_line
    )
    return free, noise
