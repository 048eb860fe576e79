"""One worker of a 2-worker MultiWorkerMirroredStrategy run on loopback.

Started twice by test_multi_worker.py with TF_CONFIG set; prints one JSON line
with the worker's activation sequence and a digest of its final weights.
JOINT=1: the motivated mode's batches are joint steps (both models on one batch).
LADDER=1: a ladder of three one-stage ResNets (8, 14, 20); `flags` are then the rungs.
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import keras  # noqa: E402
import numpy as np  # noqa: E402
from testing_utils import BatchRecorder  # noqa: E402
from testing_utils import random_data  # noqa: E402
from testing_utils import tiny_pair  # noqa: E402

import keras_motivation as km  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()
keras.utils.set_random_seed(0)
x, y = random_data(256)
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32, drop_remainder=True).with_options(options)
with strategy.scope():
    base, motivated = tiny_pair(sync_bn=True)
    joint = bool(os.environ.get("JOINT"))
    if os.environ.get("LADDER"):
        largest = tiny_pair(motivated_depth=20, sync_bn=True)[1]
        model = km.MotivatedModel(
            models=[base, motivated, largest], condition=km.conditions.ConsecutiveDecrease(1), joint=joint
        )
    else:
        model = km.MotivatedModel(base, motivated, "resnet_depth", km.conditions.ConsecutiveDecrease(1), joint=joint)
    model.compile(
        optimizer=keras.optimizers.SGD(0.005, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
rec = BatchRecorder()
rungs = []
on_batch = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: rungs.append(float(logs["motivated"])))
model.fit(ds, epochs=2, verbose=0, callbacks=[rec, on_batch])
if os.environ.get("LADDER"):
    rec.flags = rungs
weights = [w.numpy() for m in model.rungs for w in m.weights]
if os.environ.get("WEIGHTS_NPZ"):
    np.savez(os.environ["WEIGHTS_NPZ"], *weights)
digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights)).hexdigest()
print(
    json.dumps(
        {
            "flags": rec.flags,
            "losses": rec.losses,
            "counters": model.counters(),
            "digest": digest,
            "replicas": strategy.num_replicas_in_sync,
        }
    )
)
