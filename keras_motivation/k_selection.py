"""Choosing k as the paper does: k-fold cross-validation on the training set.

For every k and fold, a fresh pair trains with ConsecutiveDecrease(k) on the
other folds; the base model's accuracy on the held-out fold scores k; the k
with the best mean wins.
"""

import statistics

import keras

from keras_motivation import conditions
from keras_motivation import data
from keras_motivation.engine import MotivatedModel
from keras_motivation.engine import switching


def select_k(build_pair, x, y, ks=(2, 3, 4, 5), folds=5, epochs=1, batch_size=128, seed=0, optimizer=None):
    """Returns (best k, table rows).

    Args:
        build_pair: callable returning a fresh (base, motivated, weights_map).
        x, y: the training set (numpy arrays); the test set is never used.
        optimizer: callable returning a fresh optimizer (default SGD 0.05, momentum 0.9).
    """
    if not ks:
        raise ValueError("select_k needs at least one k.")
    rows = []
    for k in ks:
        for fold, (train_idx, val_idx) in enumerate(data.kfold_indices(len(x), folds, seed)):
            keras.utils.set_random_seed(seed + fold)
            base, motivated, wmap = build_pair()
            model = MotivatedModel(base, motivated, wmap, conditions.ConsecutiveDecrease(k))
            model.compile(
                optimizer=optimizer() if optimizer else keras.optimizers.SGD(0.05, momentum=0.9),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            model.fit(x[train_idx], y[train_idx], batch_size=batch_size, epochs=epochs, verbose=0)
            scores = model.evaluate(x[val_idx], y[val_idx], batch_size=batch_size, verbose=0, return_dict=True)
            counters = model.counters()
            rows.append(
                {
                    "k": k,
                    "fold": fold,
                    "base_accuracy": scores["accuracy"],
                    "motivated_accuracy": scores["motivated_accuracy"],
                    "motivated_share": switching.share_of_steps(counters),
                }
            )
    means = {k: statistics.mean(r["base_accuracy"] for r in rows if r["k"] == k) for k in ks}
    best = max(ks, key=lambda k: (means[k], -k))  # ties go to the smaller k
    return best, rows


def markdown(rows, best=None):
    lines = ["| k | fold | base accuracy | motivated accuracy | motivated share |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['k']} | {r['fold']} | {r['base_accuracy']:.4f} | {r['motivated_accuracy']:.4f} "
            f"| {r['motivated_share']:.3f} |"
        )
    if best is not None:
        lines.append(f"\nchosen k = {best} (best mean base accuracy over the folds)")
    return "\n".join(lines)
