"""Writes tests/data/compat_e4c7fc2: files saved by keras-motivation at e4c7fc2 (before the engine split)."""
import json, os, sys
sys.path.insert(0, "tests")
import keras, numpy as np, tensorflow as tf
from testing_utils import tiny_model, random_data
from keras_motivation import trainer, train
out = "tests/data/compat_e4c7fc2"
keras.utils.set_random_seed(0)
model = tiny_model(width=2)
x, y = random_data(64)
model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
model.save(f"{out}/tiny.keras")
probe = x[:4]
np.savez(f"{out}/tiny_expected.npz", probe=probe, base=model.base.predict(probe, verbose=0),
         motivated=model.motivated.predict(probe, verbose=0),
         variables=np.array([v.path for v in model.variables]))
json.dump(model.counters(), open(f"{out}/tiny_counters.json", "w"), indent=1)
