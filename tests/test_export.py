"""SavedModels for TF Serving, reloaded with TensorFlow alone and with saved_model_cli."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from testing_utils import PAPERS_TRIGGER_FLAGS
from testing_utils import load_fashion_mnist
from testing_utils import requires_fashion_mnist
from testing_utils import tiny_model

from keras_motivation import export

RELOAD = r"""
import json, sys
import numpy as np
import tensorflow as tf
assert "keras_motivation" not in sys.modules
npz, paths = sys.argv[1], sys.argv[2:]
data = np.load(npz, allow_pickle=True)  # the PNG bytes are an object array
for i, path in enumerate(paths):  # one TensorFlow start-up for every SavedModel
    loaded = tf.saved_model.load(path)
    by_bytes = loaded.signatures["serving_default"](image_bytes=tf.constant(list(data["png"])))
    by_images = loaded.signatures["serving_images"](images=tf.constant(data["images"]))
    np.savez(
        f"{npz}.{i}.out.npz",
        bytes_probabilities=by_bytes["probabilities"].numpy(),
        bytes_ids=by_bytes["top_k_ids"].numpy(),
        images_probabilities=by_images["probabilities"].numpy(),
    )
"""


@requires_fashion_mnist
def test_exported_pair_reloads_without_this_package(tmp_path):
    (x, y), (xt, _) = load_fashion_mnist(n_train=256, n_test=8)
    model = tiny_model(input_shape=(28, 28, 1))
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    paths = export.export_pair(
        model.base,
        model.motivated,
        str(tmp_path / "export"),
        image_size=(28, 28),
        channels=1,
        metadata={"pair": "resnet8:resnet14"},
    )
    pixels = np.round(xt * 255).astype(np.uint8)
    png = np.array([tf.io.encode_png(p).numpy() for p in pixels], dtype=object)
    npz = str(tmp_path / "inputs.npz")
    np.savez(npz, png=png, images=pixels.astype(np.float32))
    config = (tmp_path / "export" / "models.config").read_text()
    names = ("base", "motivated")
    versions = [os.path.join(paths[name], "1") for name in names]
    out = subprocess.run([sys.executable, "-c", RELOAD, npz, *versions], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for i, (name, keras_model, version) in enumerate(zip(names, (model.base, model.motivated), versions)):
        assert os.path.exists(os.path.join(version, "saved_model.pb"))
        with open(os.path.join(version, "assets", "export_info.json")) as f:
            assert json.load(f)["pair"] == "resnet8:resnet14"
        assert f'name: "{name}"' in config and f'base_path: "{os.path.abspath(paths[name])}"' in config
        got = np.load(f"{npz}.{i}.out.npz")
        expected = keras_model.predict(pixels / 255.0, verbose=0)
        np.testing.assert_allclose(got["bytes_probabilities"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["images_probabilities"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got["bytes_ids"][:, 0], expected.argmax(-1))
        if name != "base":
            continue  # the two are written by the same code; one run of the tool (a TensorFlow start-up) is enough
        # TensorFlow's own command-line tool.
        cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
        np.save(tmp_path / "images.npy", pixels.astype(np.float32))
        outdir = tmp_path / f"cli_{name}"
        run = subprocess.run(
            [
                cli,
                "run",
                "--dir",
                version,
                "--tag_set",
                "serve",
                "--signature_def",
                "serving_images",
                "--inputs",
                f"images={tmp_path / 'images.npy'}",
                "--outdir",
                str(outdir),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        np.testing.assert_allclose(np.load(outdir / "probabilities.npy"), expected, rtol=1e-5, atol=1e-6)


def test_existing_version_is_refused_and_left_untouched(tmp_path):
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
    )
    path = export.export_saved_model(model, str(tmp_path), "m", image_size=(8, 8), channels=1)
    before = sorted(os.listdir(path))
    with pytest.raises(FileExistsError, match="exists: export another --version"):
        export.export_saved_model(model, str(tmp_path), "m", image_size=(8, 8), channels=1)
    assert sorted(os.listdir(path)) == before
    assert [p for p in os.listdir(tmp_path / "m") if p.startswith(".tmp")] == []


# Slow (a run, then every artefact reloaded in a fresh process, 30 s): by default
# test_exported_pair_reloads_without_this_package covers the SavedModels without this package.
@pytest.mark.slow
@requires_fashion_mnist
def test_export_command_checks_every_artefact_of_a_run(tmp_path, capsys):
    from keras_motivation import config as config_lib
    from keras_motivation import trainer

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workdir = str(tmp_path / "run")
    trainer.run(
        config_lib.config_from_args(
            [
                "train",
                f"--flagfile={root}/configs/quickstart.flags",
                *PAPERS_TRIGGER_FLAGS,
                "--train_size=3072",
                "--batch_size=64",
                "--epochs=1",
                "--eval_size=256",
                "--model_kwargs=width=8",
                "--verbose=0",
                f"--workdir={workdir}",
            ]
        )
    )
    rows = export.main([f"--workdir={workdir}", "--check", "--check_images=256"])
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {
        "base SavedModel",
        "motivated SavedModel",
        "base LiteRT float",
        "base LiteRT dynamic",
        "base LiteRT int8",
    }
    assert by_name["base SavedModel"]["agreement"] == 1.0 and by_name["motivated SavedModel"]["agreement"] == 1.0
    assert by_name["base LiteRT float"]["agreement"] >= 0.99
    # Full-integer int8 on a real Fashion-MNIST test batch, run by the TFLite interpreter.
    assert by_name["base LiteRT int8"]["agreement"] >= 0.95, by_name["base LiteRT int8"]
    assert by_name["base LiteRT int8"]["size_mb"] < by_name["base LiteRT float"]["size_mb"]
    assert by_name["base SavedModel"]["accuracy"] > 0.5
    out = capsys.readouterr().out
    assert "| base LiteRT int8 |" in out and "top-1 agreement" in out
    assert "checked on the first 256 images of the test split; summary.json's accuracies" in out
    assert all(r["images"] == 256 and r["split"] == "test" for r in rows)
    # A second call finds everything exported and only checks.
    before = os.path.getmtime(by_name["base LiteRT int8"]["path"])
    export.main([f"--workdir={workdir}", "--litert=int8"])
    assert os.path.getmtime(by_name["base LiteRT int8"]["path"]) == before


def _tiny_finished_run(workdir):
    """A workdir as the trainer leaves it, with untrained tiny models (width 4) of the quickstart's pair."""
    from testing_utils import tiny_pair

    from keras_motivation.config import TrainConfig

    os.makedirs(os.path.join(workdir, "final"))
    config = TrainConfig(workdir=str(workdir), dataset="fashion_mnist_idx", pair="resnet8:resnet14")
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json())
    for name, model in zip(("base", "motivated"), tiny_pair(input_shape=(28, 28, 1))):
        model.save(os.path.join(workdir, "final", f"{name}.keras"))
    summary = {
        "schema": 2,
        "pair": config.pair,
        "evaluation": {"split": "test", "images": 10000},
        "base": {"accuracy": 0.8547},
        "motivated": {"accuracy": 0.8557},
    }
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f)


@requires_fashion_mnist
def test_export_check_prints_its_sample_and_nothing_of_the_converter(tmp_path):
    from testing_utils import repository_env

    workdir = tmp_path / "run"
    _tiny_finished_run(workdir)
    env = repository_env({k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    run = subprocess.run(
        [sys.executable, "-m", "keras_motivation.export", f"--workdir={workdir}", "--check", "--check_images=32"]
        + ["--litert=int8"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # Not a line of TensorFlow's or of the LiteRT converter's ("fully_quantize: 0, inference_type: 6, ...").
    assert run.stderr == "", run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert [line.split()[:3] for line in lines[:3]] == [
        ["base", "SavedModel", str(workdir / "export" / "base" / "1")],
        ["motivated", "SavedModel", str(workdir / "export" / "motivated" / "1")],
        ["base", "LiteRT", "int8"],
    ]
    assert lines[3] == (
        "checked on the first 32 images of the test split; summary.json's accuracies "
        "(base 85.47%, motivated 85.57%) are on all 10,000 of its images"
    )
    assert lines[4].endswith("| accuracy on 32 images |") and lines[5].startswith("|---")
    assert [line.split(" | ")[0] for line in lines[6:]] == [
        "| base SavedModel",
        "| motivated SavedModel",
        "| base LiteRT int8",
    ]


def test_the_sample_line_says_what_it_is_against():
    rows = [{"images": 256, "split": "test"}]
    assert export.sample_line(rows) == "checked on the first 256 images of the test split"
    old = {"final": {"accuracy": 0.855, "motivated_accuracy": 0.856}}  # a summary before schema 2
    assert export.sample_line(rows, old).endswith("(base 85.50%, motivated 85.60%) are on all of it")
    same = {"schema": 2, "evaluation": {"images": 256}, "base": {"accuracy": 0.5}, "motivated": {"accuracy": 0.6}}
    assert export.sample_line(rows, same).endswith("are on the same images")


def test_export_command_refuses_an_unfinished_run(tmp_path):
    with pytest.raises(SystemExit, match="is not a finished run"):
        export.main([f"--workdir={tmp_path}"])
    with pytest.raises(SystemExit):
        export.main([f"--workdir={tmp_path}", "--litert=int4"])
