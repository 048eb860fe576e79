"""Small models, data and a scripted condition shared by the engine tests."""

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_motivation as km
from keras_motivation import files
from keras_motivation import weights_map as weights_map_lib
from keras_motivation.conditions import Condition
from keras_motivation.models import resnet_cifar
from keras_motivation.state import state_variable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
SHAPE = (8, 8, 1)
# The trainer tests' model: the quickstart's ResNets at width 4, one stage (tiny_pair's size).
TINY_MODEL_FLAG = "--model_kwargs=width=4,stages=1"
# The studies' flagfile (the quickstart's until it moved to the prefix pair: ResNet-8 -> ResNet-14) and the flags
# the study passes after it: the paper's trigger (k = 2, no joint step) from the identity start, with recalibrated
# statistics, at rate 0.05. The trainer tests build on both: their few steps then switch between the two models
# many times (what resumption, preemption and several replicas must get right), and the committed workdirs under
# tests/data were written with them.
sys.path.insert(0, os.path.join(ROOT, "tools"))
from pay_study import FLAGFILE as STUDY_FLAGFILE  # noqa: E402  (the study's setting, defined once)
from pay_study import STUDY_FLAGS as PAPERS_TRIGGER_FLAGS  # noqa: E402

# The one skip condition of the tests on real images.
requires_fashion_mnist = pytest.mark.skipif(
    not os.path.isdir(FASHION_MNIST_DIR),
    reason="needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
)


class Scripted(Condition):
    """Test condition: batch i of the run is motivated iff schedule[i]."""

    selects_before_step = True

    def __init__(self, schedule, **kwargs):
        super().__init__(**kwargs)
        self.schedule = tf.constant([bool(s) for s in schedule])
        self.step = self._state("step", "int32", 0)

    def select(self, motivated):
        return tf.gather(self.schedule, tf.minimum(self.step, len(self.schedule) - 1))

    def update(self, loss, motivated, signals=None):
        self.step.assign_add(1)
        return motivated


class Recording(km.conditions.ConsecutiveDecrease):
    """ConsecutiveDecrease that records, inside the train step, the mode that
    trained each batch and its loss: the activation sequence of any train
    function (steps_per_execution > 1 logs only one batch per call)."""

    def __init__(self, k=2, capacity=256, **kwargs):
        super().__init__(k, **kwargs)
        self.modes = state_variable(self, "modes", "int32", 0, shape=(capacity,))
        self.batch_losses = state_variable(self, "batch_losses", "float32", 0.0, shape=(capacity,))
        self.count = self._state("count", "int32", 0)

    def update(self, loss, motivated, signals=None):
        at = [[self.count.value]]
        self.modes.assign(tf.tensor_scatter_nd_update(self.modes.value, at, [tf.cast(motivated, "int32")]))
        self.batch_losses.assign(tf.tensor_scatter_nd_update(self.batch_losses.value, at, [tf.cast(loss, "float32")]))
        self.count.assign_add(1)
        return super().update(loss, motivated, signals)

    def record(self):
        """(per-batch motivated flags, per-batch losses) of the run so far."""
        n = int(self.count.numpy())
        return [bool(m) for m in self.modes.numpy()[:n]], [float(v) for v in self.batch_losses.numpy()[:n]]


def configure_grappler():
    """Turns Grappler's graph rewrites off, unless KM_TEST_GRAPPLER=on.

    They cost about a fifth of the CPU of each small fit here (its first call) and change nothing the
    tests compare: the engine and plain Keras run under the same setting. They do change the last bits
    of a result, so the scripts tests run as subprocesses call this too where a run is split between
    such a script and the test process (tests/trainer_signal_run.py). Training runs keep them.
    """
    if os.environ.get("KM_TEST_GRAPPLER", "off") != "on":
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def tiny_pair(base_depth=8, motivated_depth=14, width=4, input_shape=SHAPE, stages=1, **kwargs):
    """ResNet-8 and ResNet-14 of one stage: one block and two (a third of the three-stage models' layers,
    and of the time tracing them, which is most of a small fit's CPU)."""
    kwargs.update(num_classes=10, input_shape=input_shape, width=width, stages=stages)
    return resnet_cifar(base_depth, **kwargs), resnet_cifar(motivated_depth, **kwargs)


def csv_rows(path):
    """The rows of a CSV the code under test must have written (`files.read_csv`
    gives [] for a missing file, which would let two missing files compare equal)."""
    assert os.path.exists(path), path
    return files.read_csv(path)


def tiny_model(
    condition=None,
    optimizer=None,
    metrics=("accuracy",),
    bn_statistics="recalibrated",
    steps_per_execution=1,
    jit_compile=False,
    joint=None,
    **kwargs,
):
    base, motivated = tiny_pair(**kwargs)
    model = km.MotivatedModel(
        base,
        motivated,
        "resnet_depth",
        condition or km.conditions.ConsecutiveDecrease(2),
        bn_statistics=bn_statistics,
        joint=joint,
    )
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(0.05, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=list(metrics),
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


def random_data(n=128, shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    y = rng.integers(0, 10, n)
    return x, y


class BatchRecorder(keras.callbacks.Callback):
    """Records per-batch `batch_loss` and `motivated` logs, and epoch logs."""

    def __init__(self):
        super().__init__()
        self.losses, self.flags, self.epochs = [], [], []
        self._epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["batch_loss"]))
        self.flags.append(bool(logs["motivated"]))
        self._epoch.append(len(self.losses) - 1)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((self._epoch, dict(logs)))


def replay_algorithm_1(losses, epoch_lengths, k):
    """Pure-Python Algorithm 1 over the logged losses: the motivated flag per batch."""
    motivated, prev, streak, flags = False, float("inf"), 0, []
    i = 0
    for n in epoch_lengths:
        for _ in range(n):
            flags.append(motivated)
            loss = losses[i]
            i += 1
            streak = streak + 1 if loss < prev else 0
            if streak >= k and not motivated:
                motivated = True
            if streak < k and motivated:
                motivated = False
            prev = loss
        motivated = False
    return flags


def replay_ladder(losses, epoch_lengths, k, rungs):
    """The written rule in pure Python: after each batch the rung for the next is min(streak // k, top),
    the streak of consecutive decreases of the raw loss never reset; every epoch starts on the base."""
    rung, previous, streak, out, i = 0, float("inf"), 0, [], 0
    for n in epoch_lengths:
        rung = 0
        for _ in range(n):
            out.append(rung)
            streak = streak + 1 if losses[i] < previous else 0
            previous = losses[i]
            i += 1
            rung = min(streak // k, rungs - 1)
    return out


def joint_reference_update(model, x, y, lr, base_weight=1.0, motivated_weight=1.0, base_rows=None):
    """One SGD step on motivated_weight * L_Y + base_weight * L_X, the base read from Y's slices (and fed the
    batch's first `base_rows` rows), by hand: the joint step's weights after it."""
    base, motivated = model.base, model.motivated
    views = {id(e.base): e for e in model.weights_map.entries}
    m_train = [tf.Variable(v.numpy()) for v in motivated.trainable_variables]
    index = {id(v): i for i, v in enumerate(motivated.trainable_variables)}
    ce = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        y_m, _ = motivated.stateless_call(
            m_train, [v.numpy() for v in motivated.non_trainable_variables], x, training=True
        )
        b_train = []
        for v in base.trainable_variables:
            e = views[id(v)]
            full = m_train[index[id(e.motivated)]]
            b_train.append(full if tuple(v.shape) == tuple(full.shape) else tf.slice(full, e.start, v.shape))
        n = len(x) if base_rows is None else base_rows
        y_b, _ = base.stateless_call(b_train, [v.numpy() for v in base.non_trainable_variables], x[:n], training=True)
        loss = motivated_weight * ce(y, y_m) + base_weight * ce(y[:n], y_b)
    grads = tape.gradient(loss, m_train)
    return [v.numpy() - lr * g.numpy() for v, g in zip(m_train, grads)]


def snapshot(variables):
    return [np.array(v.numpy(), copy=True) for v in variables]


def assert_same(before, variables):
    for b, v in zip(before, variables):
        np.testing.assert_array_equal(b, v.numpy(), err_msg=v.path)


def scramble(variables, seed):
    """Distinct random values in every variable, so that a misplaced slice cannot go unnoticed."""
    rng = np.random.default_rng(seed)
    for v in variables:
        v.assign(rng.normal(size=v.shape).astype(v.dtype))


def mapped_block(entry):
    """The block of a weights-map entry's motivated variable that its base variable occupies."""
    index = tuple(slice(s, s + n) for s, n in zip(entry.start, entry.base.shape))
    return entry.motivated.numpy()[index]


def run_json_script(name, env=None, args=(), timeout=600):
    """Runs tests/<name> in a fresh Python process; returns the JSON object of its last output line."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    out = subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def read_page(path):
    """The text of README.md or of a documentation page (a path under docs/, e.g. "studies/index.md")."""
    full = os.path.join(ROOT, path) if path == "README.md" else os.path.join(ROOT, "docs", path)
    with open(full, encoding="utf-8") as f:
        return f.read()


def page_section(text, title, level=2):
    """The section of a markdown text under its heading `title` (## by default), up to the next one as high."""
    mark = "#" * level
    return text.split(f"{mark} {title}\n", 1)[1].split(f"\n{mark} ", 1)[0]


def repository_env(env=None):
    """`env` (default: this process's) with this checkout first on PYTHONPATH, for
    `python -m keras_motivation...` in a child process."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


def run_snippet(code, cwd, timeout=900):
    """Python code of the pages, run as a reader pastes it: a fresh process in `cwd` on this checkout."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=repository_env(), timeout=timeout
    )


def quickstart_command(workdir, *args, eval_size=128):
    """`python -m keras_motivation.train` on the studies' flagfile (the quickstart's former one) at a tiny
    budget (2 epochs of 4 batches of real images, width 4, one stage), as a user types it."""
    return [
        sys.executable,
        "-m",
        "keras_motivation.train",
        f"--flagfile={STUDY_FLAGFILE}",
        *PAPERS_TRIGGER_FLAGS,
        "--train_size=128",
        f"--eval_size={eval_size}",
        "--batch_size=32",
        "--epochs=2",
        TINY_MODEL_FLAG,
        f"--workdir={workdir}",
        *args,
    ]


def load_fashion_mnist(n_train=512, n_test=256):
    """The first real Fashion-MNIST images, scaled to [0, 1]."""
    from keras_motivation import data

    (x, y), (xt, yt) = data.load_fashion_mnist_idx(FASHION_MNIST_DIR)
    return (x[:n_train] / 255.0, y[:n_train]), (xt[:n_test] / 255.0, yt[:n_test])


def write_image_folder(root, classes=("boot", "coat", "shirt"), per_class=4, splits=("train", "test"), seed=0):
    """PNG and JPEG files of different sizes; class i is a solid grey level 60 * (i + 1)."""
    rng = np.random.default_rng(seed)
    for split in splits:
        for i, name in enumerate(classes):
            os.makedirs(os.path.join(root, split, name))
            for j in range(per_class):
                h, w = rng.integers(20, 40, 2)
                img = tf.fill((int(h), int(w), 3), tf.constant(60 * (i + 1), tf.uint8))
                encoded = tf.io.encode_png(img) if j % 2 else tf.io.encode_jpeg(img, quality=100)
                tf.io.write_file(os.path.join(root, split, name, f"{j}.{'png' if j % 2 else 'jpg'}"), encoded)
    return str(root)


def pause_at_step(step, timeout=300):
    """Test hook for the stop signals: once `step` steps are trained, right after `batches.csv` has that
    step's row and before the backup callback looks at the stop request, prints `paused at step N` and
    waits until a signal handler of `preemption.StopRequest` has run (as if the signal had come during
    the call that ended there). The test sends the signal when it reads that line: no sleep, no race."""
    from keras_motivation import callbacks as callbacks_lib
    from keras_motivation import preemption

    received = []
    handle, log = preemption.StopRequest.handle, callbacks_lib.BatchLog.on_train_batch_end

    def recording_handle(self, signum, frame=None):
        handle(self, signum, frame)
        received.append(signum)

    def log_then_pause(self, batch, logs=None):
        log(self, batch, logs)
        if self.model.counters()["steps"] == step:
            print(f"paused at step {step}", flush=True)
            deadline = time.monotonic() + timeout
            while not received:
                assert time.monotonic() < deadline, f"no signal within {timeout} s"
                time.sleep(0.01)

    preemption.StopRequest.handle = recording_handle
    callbacks_lib.BatchLog.on_train_batch_end = log_then_pause


def joint_ladder_reference(model, batches, lr, weights, equilibrium=False, distillation=0.0, teachers="largest"):
    """Plain SGD joint steps of the largest rung of `model` (a pair or a ladder) on `batches` [(x, y), ...], by
    hand: rung j's loss weighted `weights[j]`, each smaller rung's variables read as slices of the largest
    model's (the composed weights maps); with `equilibrium` each element's gradient divided by the sum of the
    weights of the rungs whose variables include it; with `distillation` each smaller rung's loss mixed with
    the mean KL from the largest (`teachers="largest"`) or every larger rung ("all"). Returns the largest
    model's trainable weights after the steps."""
    rungs = model.rungs
    top = rungs[-1]
    maps = [weights_map_lib.compose(model.weights_maps[j:]) for j in range(len(rungs) - 1)]
    values = [v.numpy().astype("float64") for v in top.trainable_variables]
    index = {id(v): i for i, v in enumerate(top.trainable_variables)}
    totals = [np.full(v.shape, weights[-1]) for v in values]
    for j, wmap in enumerate(maps):
        for e in wmap.entries:
            if e.base.trainable:
                totals[index[id(e.motivated)]][tuple(slice(s, s + n) for s, n in zip(e.start, e.base.shape))] += (
                    weights[j]
                )
    ce, kl = keras.losses.SparseCategoricalCrossentropy(), keras.losses.KLDivergence()
    for x, y in batches:
        train = [tf.Variable(v.astype(top.trainable_variables[i].dtype)) for i, v in enumerate(values)]
        with tf.GradientTape() as tape:
            y_top, _ = top.stateless_call(train, [v.numpy() for v in top.non_trainable_variables], x, training=True)
            outputs = []
            for wmap in maps:
                views = {id(e.base): e for e in wmap.entries}
                smaller = wmap.base
                slices = []
                for v in smaller.trainable_variables:
                    e = views[id(v)]
                    full = train[index[id(e.motivated)]]
                    slices.append(full if tuple(v.shape) == tuple(full.shape) else tf.slice(full, e.start, v.shape))
                y_j, _ = smaller.stateless_call(
                    slices, [v.numpy() for v in smaller.non_trainable_variables], x, training=True
                )
                outputs.append(y_j)
            outputs.append(y_top)
            loss = weights[-1] * ce(y, y_top)
            for j, y_j in enumerate(outputs[:-1]):
                loss_j = ce(y, y_j)
                if distillation:
                    sources = outputs[j + 1 :] if teachers == "all" else outputs[-1:]
                    distilled = tf.add_n([kl(tf.stop_gradient(t), y_j) for t in sources]) / len(sources)
                    loss_j = (1 - distillation) * loss_j + distillation * distilled
                loss = loss + weights[j] * loss_j
        grads = tape.gradient(loss, train)
        values = [
            v - lr * g.numpy().astype("float64") / (total if equilibrium else 1.0)
            for v, g, total in zip(values, grads, totals)
        ]
    return values
