"""The engine: `MotivatedModel`, Algorithm 1 inside one `keras.Model.fit`, for a pair or a ladder.

The base model trains on every batch except while the motivation condition
holds; then a bigger model, which contains the base, trains instead. On every
switch the weights, optimizer slots (and, with shared statistics, BatchNorm
statistics) of the mapped slices are copied through the weights maps, and
every epoch ends on the base model. A pair is the ladder of two models.

- `model.py`: the class: construction, compile, `train_step` (the one step
  every execution path calls), the test step, `fit`, the config.
- `ladder.py`: the rungs: models, neighbouring maps, per-rung optimizers and
  metrics.
- `switching.py`: which rung holds the live weights: the state variables,
  the copy lists, the switch ops (composed through the rungs between), the
  counters, `time_switch`.
- `train_function.py`: the loops around `train_step`, one per execution path
  (one step per call, the on-device loop of several steps, the host loop of
  several workers).
- `statistics.py`: the `bn_statistics` option as objects, and what reads the
  statistics.
- `joint.py`: the joint step (a model and every smaller rung on one batch);
  `shared_forward.py`: its shared forward pass where two passes share a trunk.
- `keras_habits.py`: what Keras asks of any model, for the models together
  (`summary`, `get_weights`, `metrics`, the config, what a saved file holds).
- `epoch.py`: `EpochBoundary`, the epoch boundary that `fit` puts first
  among the callbacks, and the model's epoch hooks (the engine imports
  nothing of the trainer).

What a mode is, and where one plugs in. A mode is a rung index: the model
that trains the next batch, whose variables are live while it does (it holds
every smaller rung's slices). While tracing a path that knows the mode
(`MotivatedModel._train_step_in_mode`) gives it as a Python int, so each
mode's step is its own graph with no branch on the mode; elsewhere
`train_step` branches on the state (a `tf.cond` for a pair, a
`tf.switch_case` for a ladder). A mode is three pieces:
- its update in `model.py` (`_mode_update(mode, data)`): one optimizer update
  on every replica, returning the raw loss and the condition's signals;
- its place in `model.modes`: `train_function.device_loop` runs one
  `tf.while_loop` per mode in that order, and the one-step paths build one
  function per mode from it (only the modes the condition can choose,
  `Condition.reachable_modes`: a growth with one join point traces no step
  of the rungs between);
- its switch in `switching.py`: what `_switch_ops(current, target)` copies.
The condition's answers are modes, for a pair as for a ladder: its choice
before a step (`select`, for the conditions that make one), which
`train_step` switches to on every path, and its verdict after it. The joint step
needed no new mode: it is a bigger mode's update when `joint` is set, since
that model holds every smaller rung's live weights then.

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
