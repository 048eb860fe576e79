"""Motivation conditions: when the motivated model trains instead of the base.

A condition is a Keras layer that is never called: it only holds its state in
non-trainable variables (so the state runs inside the compiled train step on
any device, is identical on every replica, and is saved with the model) and
answers two questions inside the train function:

- `select(mode)`, before a step: which model trains this batch. Only
  conditions with `selects_before_step = True` are asked (random schedules,
  `Growth`, `Always`); the others keep the current state.
- `update(loss, mode, signals)`, after the step, with the
  replica-averaged raw batch loss of the model that trained: which model
  trains the next batch.

A mode is a rung index, for a pair as for a ladder (0: the base, 1: a pair's
motivated model), and every answer is one. `signals` holds what `replica_signals` computed in
  the step (a gradient norm, a held-out batch's loss), averaged over replicas.

`on_epoch_begin(epoch, steps_per_epoch)` runs on the host at each epoch start.

Each condition also describes itself in class attributes (see `Condition`):
its `--condition` name, its arguments, what the run fills in, its label in
reports. `BY_NAME` lists them; `ConditionSpec.parse` reads a `--condition`
spec (once, for the config, the recipes, the summary and the reports),
`from_flag` builds one from it, `flag_help` writes the flag's help,
tools/report.py names arms with `report_label`. A new condition is a class in
one of the modules below, with those attributes, in `BY_NAME` (spec.py).

- `base.py`: `Condition`, the base class.
- `consecutive.py`: the paper's rule (`ConsecutiveDecrease`) and its variants
  on another signal (`EmaDecrease`, `GradientNormSlope`, `ValidationBatch`).
- `controls.py`: `Never` (the base alone), `Always` (the motivated model alone) and the random controls
  (`RandomActivation`, `MatchedRandom`, `RandomShare`).
- `growth.py`: `Growth`.
- `spec.py`: `ConditionSpec`, `BY_NAME`, `from_flag`, `from_spec`, `get`,
  `flag_help`.

This package's names are its public API; the saved-model names stay
`keras_motivation>ClassName`, so `.keras` files written before the split load.
"""

from keras_motivation.conditions.base import Condition  # noqa: F401
from keras_motivation.conditions.consecutive import ConsecutiveDecrease  # noqa: F401
from keras_motivation.conditions.consecutive import EmaDecrease  # noqa: F401
from keras_motivation.conditions.consecutive import GradientNormSlope  # noqa: F401
from keras_motivation.conditions.consecutive import ValidationBatch  # noqa: F401
from keras_motivation.conditions.controls import MAX_STEPS_PER_EPOCH  # noqa: F401
from keras_motivation.conditions.controls import Always  # noqa: F401
from keras_motivation.conditions.controls import MatchedRandom  # noqa: F401
from keras_motivation.conditions.controls import Never  # noqa: F401
from keras_motivation.conditions.controls import RandomActivation  # noqa: F401
from keras_motivation.conditions.controls import RandomShare  # noqa: F401
from keras_motivation.conditions.growth import Growth  # noqa: F401
from keras_motivation.conditions.spec import BY_NAME  # noqa: F401
from keras_motivation.conditions.spec import ConditionSpec  # noqa: F401
from keras_motivation.conditions.spec import flag_help  # noqa: F401
from keras_motivation.conditions.spec import from_flag  # noqa: F401
from keras_motivation.conditions.spec import from_spec  # noqa: F401
from keras_motivation.conditions.spec import get  # noqa: F401
