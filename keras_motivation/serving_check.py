"""Reloads exported artefacts with TensorFlow alone, as a server or a device would.

    python -I serving_check.py INPUTS.npz ARTEFACTS.json

INPUTS.npz holds `images` (0-255 pixels), `labels` and the Keras models'
probabilities under `base` and `motivated`; ARTEFACTS.json lists
{name, model, kind: saved_model | litert, path}. Prints one JSON line: per
artefact its size on disk, median latency per image (batch of one), top-1
agreement with the Keras model and accuracy. `keras_motivation.export.check`
runs it in a fresh isolated process; it must not import this package.
"""

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf


def _size_mb(path):
    if os.path.isfile(path):
        return os.path.getsize(path) / 2**20
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files) / 2**20


def _saved_model(path):
    serve = tf.saved_model.load(path).signatures["serving_images"]
    return lambda image: serve(images=tf.constant(image))["probabilities"].numpy()


def _litert(path):
    interpreter = tf.lite.Interpreter(model_path=path)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def predict(image):
        interpreter.set_tensor(inp["index"], image.astype(inp["dtype"]))
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])

    return predict


def main(inputs, spec):
    assert "keras_motivation" not in sys.modules
    data = np.load(inputs)
    images, labels = data["images"], data["labels"]
    rows = []
    with open(spec) as f:
        artefacts = json.load(f)
    for artefact in artefacts:
        predict = (_saved_model if artefact["kind"] == "saved_model" else _litert)(artefact["path"])
        predict(images[:1])  # warm-up: tracing and allocation are not latency
        probabilities, times = [], []
        for i in range(len(images)):
            start = time.perf_counter()
            probabilities.append(predict(images[i : i + 1])[0])
            times.append(time.perf_counter() - start)
        top1 = np.asarray(probabilities).argmax(-1)
        rows.append(
            {
                **artefact,
                "size_mb": _size_mb(artefact["path"]),
                "latency_ms": 1000 * float(np.median(times)),
                "agreement": float(np.mean(top1 == data[artefact["model"]].argmax(-1))),
                "accuracy": float(np.mean(top1 == labels)),
            }
        )
    assert "keras_motivation" not in sys.modules
    print(json.dumps(rows))


if __name__ == "__main__":
    main(*sys.argv[1:3])
