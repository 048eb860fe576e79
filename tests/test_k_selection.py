"""k selection by cross-validation, end to end on real Fashion-MNIST."""

import json
import os

import pytest
from testing_utils import TINY_MODEL_FLAG
from testing_utils import load_fashion_mnist
from testing_utils import requires_fashion_mnist

from keras_motivation import k_selection
from keras_motivation import models


# Slow (several ks x folds, 22 s): by default test_select_k_command_line runs the selection end to end.
@pytest.mark.slow
@requires_fashion_mnist
def test_select_k_on_real_data_returns_the_table_and_k():
    (x, y), _ = load_fashion_mnist(n_train=192)
    x = x.astype("float32")
    best, rows = k_selection.select_k(
        lambda: models.get_pair("resnet8:resnet14", num_classes=10, input_shape=(28, 28, 1), width=4, stages=1),
        x,
        y,
        ks=(1, 2),
        folds=2,
        epochs=1,
        batch_size=32,
    )
    assert [(r["k"], r["fold"]) for r in rows] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    means = {k: sum(r["base_accuracy"] for r in rows if r["k"] == k) / 2 for k in (1, 2)}
    assert best == max((1, 2), key=lambda k: (means[k], -k))
    assert all(0 <= r["motivated_share"] <= 1 for r in rows)
    assert "chosen k" in k_selection.markdown(rows, best)


@requires_fashion_mnist
def test_select_k_command_line(tmp_path):
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
    import select_k

    out = tmp_path / "k.json"
    # One k, two folds: the flags reach select_k and the table reaches the file
    # (choosing among ks is the test above's).
    best, rows = select_k.main(
        [
            "--train_size=128",
            "--ks=3",
            "--folds=2",
            "--batch_size=32",
            TINY_MODEL_FLAG,
            f"--out={out}",
        ]
    )
    with open(out) as f:
        saved = json.load(f)
    assert saved["best_k"] == best == 3
    assert [(r["k"], r["fold"]) for r in saved["rows"]] == [(3, 0), (3, 1)] and len(rows) == 2
