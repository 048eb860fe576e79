"""How tests/data/compat_e4c7fc2 was written, at e4c7fc2 (before the engine split).

    python tests/data/compat_e4c7fc2/make_compat.py    # from the repository root, at e4c7fc2

trainer_run/ is the workdir of
    python -m keras_motivation.train --flagfile=configs/quickstart.flags --train_size=64 --eval_size=64 \
        --batch_size=32 --epochs=1 --model_kwargs=width=2 --verbose=0 --workdir=/tmp/compat_run
less its final models, summary and logs other than batches.csv and history.csv (an interrupted run).
"""

import json
import sys

import keras
import numpy as np

sys.path.insert(0, "tests")
from testing_utils import random_data  # noqa: E402
from testing_utils import tiny_model  # noqa: E402

OUT = "tests/data/compat_e4c7fc2"

keras.utils.set_random_seed(0)
model = tiny_model(width=2)
x, y = random_data(64)
model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
model.save(f"{OUT}/tiny.keras")
probe = x[:4]
np.savez(
    f"{OUT}/tiny_expected.npz",
    probe=probe,
    base=model.base.predict(probe, verbose=0),
    motivated=model.motivated.predict(probe, verbose=0),
    variables=np.array([v.path for v in model.variables]),
)
with open(f"{OUT}/tiny_counters.json", "w") as f:
    json.dump(model.counters(), f, indent=1)
