"""SavedModels that TF Serving loads and LiteRT flatbuffers, for both models of a run.

    python -m keras_motivation.export --workdir=DIR [--check]

exports a finished run's models (SavedModels and LiteRT float / dynamic-range /
int8 of the base model) and, with --check, reloads every artefact in a fresh
process that imports only TensorFlow (`keras_motivation/serving_check.py`) and
prints size, latency, agreement with the Keras model and accuracy on the first
--check_images images of the run's validation split (the line above the table
says how many, and on how many summary.json's accuracies are).

`export_pair(base, motivated, export_dir, ...)` writes

    <export_dir>/base/<version>/saved_model.pb        + variables/, assets/export_info.json
    <export_dir>/motivated/<version>/saved_model.pb
    <export_dir>/models.config                        for tensorflow_model_server --model_config_file

Each SavedModel has two signatures that apply the training preprocessing
(resize, scale to [0, 1], optional mean/std) themselves:

- `serving_default`: input `image_bytes`, a [batch] string tensor of encoded
  JPEG or PNG images;
- `serving_images`: input `images`, a [batch, height, width, channels] float32
  tensor of pixels in [0, 255].

Both return `probabilities` [batch, classes], `top_k_ids` [batch, k] int32 and
`top_k_scores` [batch, k].

`export_litert` writes a LiteRT model that takes one image [1, h, w, c] of
0-255 pixels (float32; uint8 for full-integer int8) and returns the
probabilities. `tensorflow-model-optimization` is not used: it rejects Keras 3
models; Keras' own `model.quantize("int8")` (Dense/EinsumDense layers) and the
LiteRT converter's post-training quantization are what work.
"""

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_motivation import console
from keras_motivation import data as data_lib
from keras_motivation import files
from keras_motivation import summary_json
from keras_motivation.config import TrainConfig


def _preprocess(images, image_size, mean, std):
    images = tf.image.resize(tf.cast(images, tf.float32), image_size) / 255.0
    if mean is not None:
        images = images - tf.constant(mean, tf.float32)
    if std is not None:
        images = images / tf.constant(std, tf.float32)
    return images


def export_saved_model(
    model: keras.Model,
    export_dir: str,
    model_name: str,
    *,
    image_size: tuple[int, int],
    channels: int,
    version: int = 1,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    top_k: int = 5,
    metadata: dict | None = None,
    overwrite: bool = False,
) -> str:
    """Writes `<export_dir>/<model_name>/<version>/`, atomically; returns its path."""
    target = os.path.join(os.path.abspath(export_dir), model_name, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"{target} exists: export another --version, or pass overwrite=True to replace it.")
    image_size = tuple(image_size)
    classes = model.output_shape[-1]
    k = min(top_k, classes)

    def outputs(images):
        probabilities = tf.cast(model(_preprocess(images, image_size, mean, std), training=False), tf.float32)
        scores, ids = tf.math.top_k(probabilities, k=k)
        return {"probabilities": probabilities, "top_k_ids": ids, "top_k_scores": scores}

    def serve_bytes(image_bytes):
        def decode(b):
            image = tf.io.decode_image(b, channels=channels, expand_animations=False)
            return tf.image.resize(tf.cast(image, tf.float32), image_size)

        images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec((*image_size, channels), tf.float32))
        return outputs(images)

    def serve_images(images):
        return outputs(images)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default", serve_bytes, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")]
    )
    archive.add_endpoint(
        "serving_images",
        serve_images,
        input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32, name="images")],
    )
    info = {
        "model_name": model_name,
        "keras_name": model.name,
        "input": {
            "image_size": list(image_size),
            "channels": channels,
            "mean": mean,
            "std": std,
            "pixels": "0-255, resized and scaled to [0, 1] by the signature",
        },
        "signatures": {"serving_default": "image_bytes", "serving_images": "images"},
        "outputs": ["probabilities", "top_k_ids", "top_k_scores"],
        **(metadata or {}),
    }
    with files.replacing(target) as tmp:
        archive.write_out(tmp, verbose=False)
        os.makedirs(os.path.join(tmp, "assets"), exist_ok=True)
        with open(os.path.join(tmp, "assets", "export_info.json"), "w") as f:
            json.dump(info, f, indent=2)
    return target


def models_config(paths):
    """TF Serving's model_config_list text proto for {name: base_path}."""
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{os.path.abspath(path)}"\n'
        '    model_platform: "tensorflow"\n  }\n'
        for name, path in paths.items()
    )
    return f"model_config_list {{\n{entries}}}\n"


def export_pair(
    base: keras.Model,
    motivated: keras.Model,
    export_dir: str,
    *,
    version: int = 1,
    metadata: dict | None = None,
    **kwargs,
) -> dict[str, str]:
    """Exports both models as `base` and `motivated` and writes models.config; returns the paths."""
    return export_models(
        {"base": base, "motivated": motivated}, export_dir, version=version, metadata=metadata, **kwargs
    )


def export_models(
    models: dict[str, keras.Model], export_dir: str, *, version: int = 1, metadata: dict | None = None, **kwargs
) -> dict[str, str]:
    """Exports each of {name: model} (a ladder's `base`, `rung1`, ..., `motivated`) under its name and writes
    models.config; returns the paths."""
    paths = {}
    for name, model in models.items():
        export_saved_model(
            model, export_dir, name, version=version, metadata={**(metadata or {}), "role": name}, **kwargs
        )
        paths[name] = os.path.join(export_dir, name)
    files.atomic_write(os.path.join(export_dir, "models.config"), models_config(paths))
    return paths


LITERT_QUANTIZATIONS = ("float", "dynamic", "int8")


def export_litert(
    model: keras.Model,
    path: str,
    *,
    quantization: str = "float",
    representative_images: np.ndarray | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> str:
    """Writes a LiteRT flatbuffer of `model` with its preprocessing; returns `path`.

    quantization: "float"; "dynamic" (int8 weights, float activations); "int8"
    (full-integer, uint8 pixels in, calibrated on `representative_images`, a
    [n, h, w, c] array of 0-255 pixels drawn from the training data).
    """
    if quantization not in LITERT_QUANTIZATIONS:
        raise ValueError(f"Unknown LiteRT quantization {quantization!r}: use one of {', '.join(LITERT_QUANTIZATIONS)}.")
    if quantization == "int8" and representative_images is None:
        raise ValueError("int8 LiteRT needs representative_images: a few hundred training images (0-255 pixels).")
    h, w, c = model.input_shape[1:]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda images: tf.cast(model(_preprocess(images, (h, w), mean, std), training=False), tf.float32),
        input_signature=[tf.TensorSpec([1, h, w, c], tf.float32, name="images")],
    )
    # The converter reads variables reliably only from a SavedModel, not from a live concrete function.
    with tempfile.TemporaryDirectory() as saved:
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if quantization != "float":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "int8":
            images = np.asarray(representative_images, np.float32)
            converter.representative_dataset = lambda: ([images[i : i + 1]] for i in range(len(images)))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
        # The quantizer prints its settings from C++ whatever the log level; shown only if conversion fails.
        with console.native_output_hidden():
            flatbuffer = converter.convert()
    files.atomic_write(path, flatbuffer)
    return path


def keras_int8(model):
    """A copy of `model` with Keras' own int8 weight quantization (Dense/EinsumDense layers only)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per layer kind that has no int8 form (Conv2D, BN, ...)
        copy.quantize("int8")
    return copy


# -- a finished run's workdir ---------------------------------------------------------


def _load_run(workdir):
    config_path = os.path.join(workdir, "config.json")
    final = os.path.join(workdir, "final")
    if not os.path.exists(config_path) or not os.path.exists(os.path.join(final, "base.keras")):
        raise FileNotFoundError(
            f"{workdir} is not a finished run (no config.json or final/base.keras): train it first."
        )
    with open(config_path) as f:
        config = TrainConfig.from_json(f.read())
    models = {
        name: keras.saving.load_model(os.path.join(final, f"{name}.keras"), compile=False)
        for name in summary_json.model_names(config.pair)
    }
    return config, models, _load_summary(workdir)


def _load_summary(workdir):
    """The run's summary.json ({} when there is none)."""
    path = os.path.join(workdir, "summary.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _images(config, split, n):
    """n examples of a split of the run's dataset, resized like in training: (uint8-range float pixels, labels)."""
    train, val, _, info = data_lib.load_data(config)
    h, w, c = data_lib.input_shape(config, info)
    ds = (train if split == "train" else val).take(n)
    images, labels = [], []
    for example in ds.as_numpy_iterator():
        x, y = example if isinstance(example, tuple) else (example["image"], example["label"])
        images.append(tf.image.resize(tf.cast(x, tf.float32), (h, w)).numpy() if x.shape[:2] != (h, w) else x)
        labels.append(y)
    return np.round(np.asarray(images, np.float32)), np.asarray(labels)


def export_run(
    workdir: str,
    *,
    version: int = 1,
    litert: Sequence[str] = LITERT_QUANTIZATIONS,
    calibration_images: int = 200,
    overwrite: bool = False,
) -> list[dict]:
    """Exports a finished run: SavedModels of every model (a pair's two, a ladder's all) and LiteRT models of the
    base; returns the artefacts."""
    config, models, summary = _load_run(workdir)
    h, w, c = models["base"].input_shape[1:]
    out = os.path.join(workdir, "export")
    saved = os.path.join(out, "base", str(version))
    if overwrite or not os.path.exists(saved):
        export_models(
            models,
            out,
            version=version,
            image_size=(h, w),
            channels=c,
            overwrite=overwrite,
            metadata=summary_json.export_metadata({"pair": config.pair, **summary}),
        )
    artefacts = [
        {
            "name": f"{name} SavedModel",
            "model": name,
            "kind": "saved_model",
            "path": os.path.join(out, name, str(version)),
        }
        for name in models
    ]
    representative = _images(config, "train", calibration_images)[0] if "int8" in litert else None
    for quantization in litert:
        path = os.path.join(out, "litert", f"base_{quantization}.tflite")
        if overwrite or not os.path.exists(path):
            export_litert(models["base"], path, quantization=quantization, representative_images=representative)
        artefacts.append({"name": f"base LiteRT {quantization}", "model": "base", "kind": "litert", "path": path})
    return artefacts


def check(workdir: str, artefacts: list[dict], *, images: int = 256) -> list[dict]:
    """Reloads every artefact in a fresh TensorFlow-only process and measures it against the Keras models.

    Returns one row per artefact: size, latency, agreement, accuracy, and the sample they were measured on
    (`images`, `split`: the first `images` images of the run's validation split, or all if it has fewer).
    """
    config, models, _ = _load_run(workdir)
    pixels, labels = _images(config, "validation", images)
    sample = {"images": len(labels), "split": config.validation_split}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "inputs.npz")
        np.savez(
            inputs,
            images=pixels,
            labels=labels,
            **{name: m.predict(pixels / 255.0, verbose=0) for name, m in models.items()},
        )
        spec = os.path.join(tmp, "artefacts.json")
        with open(spec, "w") as f:
            json.dump(artefacts, f)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serving_check.py")
        # -I: isolated, so neither this checkout nor PYTHONPATH is importable; the script asserts it.
        run = subprocess.run([sys.executable, "-I", script, inputs, spec], capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"reload check failed: {run.stderr.strip().splitlines()[-1]}")
        return [{**row, **sample} for row in json.loads(run.stdout.strip().splitlines()[-1])]


def sample_line(rows, summary=None):
    """What the check measured on, next to what summary.json's accuracies are on."""
    n, split = rows[0]["images"], rows[0]["split"]
    line = f"checked on the first {n:,} images of the {split} split"
    summary = summary or {}
    accuracies = [summary_json.accuracy(summary, m) for m in ("base", "motivated")]
    if None not in accuracies:
        total = (summary.get("evaluation") or {}).get("images")
        line += (
            f"; summary.json's accuracies (base {100 * accuracies[0]:.2f}%, motivated {100 * accuracies[1]:.2f}%) "
            + (
                "are on the same images"
                if total == n
                else f"are on all {total:,} of its images"
                if total
                else "are on all of it"
            )
        )
    return line


def format_table(rows):
    """The check's markdown table; its accuracy column names the sample's size."""
    n = rows[0].get("images") if rows else None
    lines = [
        "| artefact | size (MB) | latency (ms/image) | top-1 agreement with Keras | "
        + (f"accuracy on {n:,} images |" if n else "accuracy |"),
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['size_mb']:.2f} | {r['latency_ms']:.2f} | {100 * r['agreement']:.1f}% "
            f"| {100 * r['accuracy']:.1f}% |"
        )
    return "\n".join(lines)


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m keras_motivation.export", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="A finished run of keras_motivation.train.")
    parser.add_argument("--version", type=int, default=1, help="SavedModel version directory.")
    parser.add_argument(
        "--litert", default="float,dynamic,int8", help="LiteRT variants of the base model ('' for none)."
    )
    parser.add_argument("--overwrite", action="store_true", help="Replace artefacts that exist.")
    parser.add_argument("--check", action="store_true", help="Reload every artefact in a fresh process and compare.")
    parser.add_argument(
        "--check_images",
        type=int,
        default=256,
        help="--check measures on the first N images of the run's validation split (default 256).",
    )
    args = parser.parse_args(argv)
    litert = tuple(q for q in args.litert.split(",") if q)
    bad = [q for q in litert if q not in LITERT_QUANTIZATIONS]
    if bad:
        parser.error(f"unknown --litert {bad[0]!r}: use a comma-separated subset of {','.join(LITERT_QUANTIZATIONS)}.")
    try:
        artefacts = export_run(args.workdir, version=args.version, litert=litert, overwrite=args.overwrite)
        for a in artefacts:
            print(f"{a['name']:<24} {a['path']}")
        if args.check:
            rows = check(args.workdir, artefacts, images=args.check_images)
            print(sample_line(rows, _load_summary(args.workdir)))
            print(format_table(rows))
            return rows
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as err:
        sys.exit(f"error: {err}")
    return artefacts


if __name__ == "__main__":
    main()
