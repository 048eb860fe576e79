"""A ladder of three models with the everyday Keras habits, as a user tries them: monitors on a middle model's
metrics, models given in the wrong order, `summary()`, `get_weights()` / `set_weights()`, the history's counts,
tools/report.py on a ladder's runs."""

import json
import os
import shutil
import sys

import keras
import numpy as np
import pytest
from test_ladder import ladder_models
from test_ladder import tiny_ladder
from testing_utils import ROOT
from testing_utils import random_data

import keras_motivation as km

MONITOR = "val_rung1_accuracy"


@pytest.fixture(scope="module")
def watched_fit(tmp_path_factory):
    """One fit of a ladder whose every rung trains, watched on the middle model's metrics (its validation accuracy,
    its training loss) by the three Keras callbacks that find a metric's direction themselves."""
    model = tiny_ladder()
    x, y = random_data(96)
    path = str(tmp_path_factory.mktemp("checkpoint") / "best.keras")
    watch = [
        keras.callbacks.EarlyStopping(monitor=MONITOR, patience=5),
        keras.callbacks.ModelCheckpoint(path, monitor=MONITOR, save_best_only=True),
        keras.callbacks.ReduceLROnPlateau(monitor="rung1_loss", patience=5),
    ]
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_data=(x[:32], y[:32]), callbacks=watch)
    return model, history, watch, path


@pytest.mark.xdist_group("ladder_watched_fit")
def test_early_stopping_checkpoint_and_plateau_watch_a_middle_models_metric(watched_fit):
    model, history, watch, path = watched_fit
    for callback, monitor, direction in zip(watch, [MONITOR, MONITOR, "rung1_loss"], ["greater", "greater", "less"]):
        assert callback.monitor == monitor and callback.monitor_op.__name__ == direction, type(callback).__name__
    assert watch[0].best == max(history.history[MONITOR])
    assert isinstance(keras.models.load_model(path), km.MotivatedModel)


@pytest.mark.xdist_group("ladder_watched_fit")
def test_the_history_counts_each_models_steps(watched_fit):
    model, history, _, _ = watched_fit
    h = history.history
    rung_steps = model.counters()["rung_steps"]
    assert sum(h["rung1_steps"]) == rung_steps[1] > 0 and sum(h["motivated_steps"]) == rung_steps[2] > 0
    assert sum(rung_steps) == 12
    steps = [6, 6]  # 96 images in batches of 16
    assert h["rung1_share"] == [n / s for n, s in zip(h["rung1_steps"], steps)]
    # Steps above the base per switch up, in every epoch.
    above = [
        s - b for s, b in zip(steps, (s - r1 - m for s, r1, m in zip(steps, h["rung1_steps"], h["motivated_steps"])))
    ]
    assert h["mean_activation_length"] == [a / n if n else 0.0 for a, n in zip(above, h["activations"])]


@pytest.mark.xdist_group("ladder_watched_fit")
def test_summary_lists_the_models_smallest_first_with_their_own_parameters(watched_fit):
    model = watched_fit[0]
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    rows = [line for line in text.splitlines() if "(Functional)" in line]
    assert [row.split()[1] for row in rows] == [m.name for m in model.rungs]
    assert "condition" not in text.lower()
    total = sum(m.count_params() for m in model.rungs)
    assert f"Total params: {total:,}" in text


@pytest.mark.xdist_group("ladder_watched_fit")
def test_get_weights_are_the_models_weights_and_set_weights_fills_an_uncompiled_twin(watched_fit):
    model = watched_fit[0]
    weights = model.get_weights()
    assert len(weights) == sum(len(m.weights) for m in model.rungs)
    for got, want in zip(weights, [v.numpy() for m in model.rungs for v in m.weights]):
        np.testing.assert_array_equal(got, want)
    twin = km.MotivatedModel(models=ladder_models(), weights_map="resnet_depth")
    twin.set_weights(weights)
    x, _ = random_data(8, seed=3)
    for a, b in zip(model.rungs, twin.rungs):
        np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match=r"needs \d+ arrays \(the models' weights, smallest first"):
        twin.set_weights(weights[:-1])


@pytest.mark.xdist_group("ladder_watched_fit")
def test_calling_and_predict_answer_with_the_smallest_model(watched_fit):
    """As the ladder guide says: `model(x)` and `predict` are the base's (m0's), as for a pair."""
    model = watched_fit[0]
    x, _ = random_data(8, seed=4)
    base = model.base(x, training=False).numpy()
    np.testing.assert_allclose(model(x, training=False).numpy(), base, atol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), base, atol=1e-6)
    assert not np.allclose(model.rung1.predict(x, verbose=0), base, atol=1e-3)


@pytest.mark.parametrize(
    "make, expected",
    [
        (
            lambda: km.models.get_ladder("resnet20:resnet14:resnet8", 10, (16, 16, 1), width=4),
            "Ladder 'resnet20:resnet14:resnet8': resnet20 is bigger than resnet14; give the models smallest first: "
            "resnet8:resnet14:resnet20.",
        ),
        (
            lambda: km.MotivatedModel(models=ladder_models()[::-1]),
            "`models[0]` ('resnet20_stages1', 1,062 parameters) is bigger than `models[1]` ('resnet14_stages1', 742): "
            "give the models smallest first, each inside the next ('resnet8_stages1', 'resnet14_stages1', "
            "'resnet20_stages1').",
        ),
        (
            lambda: km.MotivatedModel(*ladder_models((14, 8))),
            "`base` ('resnet14_stages1', 742 parameters) is bigger than `motivated` ('resnet8_stages1', 422): give the "
            "models smallest first, each inside the next ('resnet8_stages1', 'resnet14_stages1').",
        ),
    ],
    ids=["registry", "models", "pair"],
)
def test_models_in_the_wrong_order_fail_in_one_line_naming_them(make, expected):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == expected


def test_neighbours_that_do_not_nest_fail_in_two_lines_naming_them():
    # ResNet-14 (two blocks a stage) is not inside ResNet-8p20 (one block in each stage but the last).
    models = [km.models.build_model(n, 10, (16, 16, 1), width=4) for n in ("resnet8", "resnet14", "resnet8p20")]
    with pytest.raises(ValueError) as err:
        km.MotivatedModel(models=models, weights_map="resnet_depth")
    message = str(err.value).splitlines()
    assert len(message) == 2, message
    assert message[0] == (
        "`models[1]` ('resnet14') does not fit inside `models[2]` ('resnet8p20') under the weights map "
        "'resnet_depth': give the models smallest first, each inside the next."
    )
    assert "more)" in message[1]


def test_the_report_reports_a_ladders_runs(tmp_path):
    """tools/report.py on the committed prefix-ladder runs: a row per model, the statistics check of each."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import report

    source = os.path.join(ROOT, "tools", "examples", "prefix_ladder", "ep6")
    arm = sorted(os.listdir(source))[0]
    shutil.copytree(os.path.join(source, arm), tmp_path / "runs" / arm)
    for path in (tmp_path / "runs").rglob("summary.json"):
        summary = json.loads(path.read_text())
        summary["statistics_check"] = {
            "batches": 8,
            **{
                m: {"as_saved": summary[m]["accuracy"], "recomputed": summary[m]["accuracy"]}
                for m in report.summary_json.rung_names(3)
            },
        }
        path.write_text(json.dumps(summary))
    rows = report.write_report([str(tmp_path / "runs")], str(tmp_path / "report"))
    chain = "ResNet-8-ResNet-8p14-ResNet-8p20"
    assert [r["model"].split()[0] for r in rows] == [f"{chain}-B", f"{chain}-R1", f"{chain}-M"]
    assert [r["role"] for r in rows] == ["base", "rung1", "motivated"]
    table = (tmp_path / "report" / "statistics.md").read_text()
    assert "rung1 as saved % | rung1 recomputed %" in table
    assert os.path.getsize(tmp_path / "report" / "dynamics.png") > 10_000
