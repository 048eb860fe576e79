"""The engine: `MotivatedModel`, Algorithm 1 inside one `keras.Model.fit`.

The base model trains on every batch except while the motivation condition
holds; then the motivated model, which contains the base, trains instead.
On every switch the weights, optimizer slots (and, with shared statistics,
BatchNorm statistics) of the mapped slices are copied through the weights
map, and every epoch ends on the base model.

- `model.py`: the class: construction, compile, the steps, the test step,
  `fit`, `evaluate`, the epoch boundary's hooks, the config.
- `switching.py`: which model holds the live weights: the state variables,
  the copy lists, the switch ops, the counters, `time_switch`.
- `train_function.py`: the loops around the step, one per execution path
  (one step per call, the on-device loop of several steps, the host loop of
  several workers).
- `statistics.py`: the `bn_statistics` option as objects.
- `joint.py`: the joint step (both models trained on one batch).
- `epoch.py`: `EpochBoundary`, the epoch boundary that `fit` puts first
  among the callbacks (the engine imports nothing of the trainer).

What a mode is, and where one plugs in. A mode names what trains the next
batch and whose variables are live while it does: `BASE` (the base model,
its own variables) and `MOTIVATED` (the motivated model, which holds the
base's slices). While tracing a mode is a Python constant, so each mode's
step is its own graph with no branch on the mode. A mode is three pieces:
- its update in `model.py` (`_mode_update(mode, data)`): one optimizer update
  on every replica, returning the raw loss and the condition's signals;
- its place in `switching.MODES`: `train_function.device_loop` runs one
  `tf.while_loop` per mode in that order, and the one-step paths build one
  function per mode from it;
- its switch in `switching.py`: what `_switch_ops(mode)` copies entering it.
The condition's verdict is the next mode. The joint step (`joint.py`: both
models on one batch) needed no new mode: it is the motivated mode's update
when `joint` is set, since the motivated model holds every live weight
then. A ladder of more than two models adds one mode per model and one
weights map per neighbouring pair; the verdict then becomes a mode index.

Several replicas: an optimizer step inside `tf.cond` in replica context
fails under MirroredStrategy (`merge_call` inside control flow), so the mode
is chosen in cross-replica context, each mode's step is a `strategy.run`, and
the condition update and the copies follow there, on the loss all-reduced
across replicas, so every replica takes the same branch. All state (the mode
flag, the condition's streak, the counters) lives in non-trainable variables:
it stays on the device and is saved by `save`, `save_weights` and
`BackupAndRestore`.
"""

from keras_motivation.engine.joint import JointStep  # noqa: F401
from keras_motivation.engine.model import MotivatedModel  # noqa: F401
from keras_motivation.engine.switching import MOTIVATED_PREFIX  # noqa: F401
