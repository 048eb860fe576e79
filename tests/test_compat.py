"""Files written before the engine split (at e4c7fc2) load after it: a `.keras`
file and an interrupted trainer workdir's backup (tests/data/compat_e4c7fc2,
written by its make_compat.py)."""

import json
import os
import shutil

import keras
import numpy as np
from testing_utils import PAPERS_TRIGGER_FLAGS
from testing_utils import ROOT
from testing_utils import STUDY_FLAGFILE
from testing_utils import csv_rows
from testing_utils import random_data
from testing_utils import requires_fashion_mnist
from testing_utils import tiny_model

import keras_motivation as km
from keras_motivation import config as config_lib
from keras_motivation import trainer

DATA = os.path.join(ROOT, "tests", "data", "compat_e4c7fc2")


def test_a_keras_file_from_before_the_split_loads_with_the_same_state():
    expected = np.load(os.path.join(DATA, "tiny_expected.npz"))
    loaded = keras.models.load_model(os.path.join(DATA, "tiny.keras"))
    assert isinstance(loaded, km.MotivatedModel)
    # Saved variables keep their names and order (the file's layout).
    assert [v.path for v in loaded.variables] == list(expected["variables"])
    with open(os.path.join(DATA, "tiny_counters.json")) as f:
        assert loaded.counters() == json.load(f)
    np.testing.assert_allclose(loaded.base.predict(expected["probe"], verbose=0), expected["base"], atol=1e-6)
    np.testing.assert_allclose(loaded.motivated.predict(expected["probe"], verbose=0), expected["motivated"], atol=1e-6)
    # The optimizers' state came back: training goes on from step 8.
    x, y = random_data(64)
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert loaded.counters()["steps"] == 12


def test_a_model_built_now_has_the_layout_of_then():
    expected = np.load(os.path.join(DATA, "tiny_expected.npz"))
    keras.utils.set_random_seed(0)
    model = tiny_model(width=2, stages=3)  # the three-stage tiny pair the file was written with
    assert [v.path for v in model.variables] == list(expected["variables"])


@requires_fashion_mnist
def test_a_trainer_backup_from_before_the_split_resumes(tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(os.path.join(DATA, "trainer_run"), workdir)
    config = config_lib.config_from_args(
        [
            "train",
            f"--flagfile={STUDY_FLAGFILE}",
            *PAPERS_TRIGGER_FLAGS,
            "--train_size=64",
            "--eval_size=64",
            "--batch_size=32",
            "--epochs=1",
            "--model_kwargs=width=2",
            "--verbose=0",
            f"--workdir={workdir}",
        ]
    )
    summary = trainer.run(config)
    # Resumed at the backup's step 2 (the end of its one epoch): nothing trained again.
    assert summary["activations"]["steps"] == 2
    assert len(csv_rows(str(workdir / "batches.csv"))) == 2
    assert os.path.exists(workdir / "final" / "motivated_model.keras")
