"""The base class of motivation conditions, and the check their arguments share."""

import keras

from keras_motivation.state import state_variable


def check_argument(ok, message):
    """A condition's argument check: ValueError(message) unless ok."""
    if not ok:
        raise ValueError(message)


class Condition(keras.layers.Layer):
    """Base class of motivation conditions.

    What a condition says about itself (class attributes; each condition in
    `BY_NAME` sets its own):

    - `flag`: its name in `--condition` ("consecutive").
    - `flag_help`: what it does, in a few words of the flag's help.
    - `parameters`: {argument: help} of the key=value arguments its spec takes.
    - `takes_k`, `takes_seed`: the run's --k / --seed fill in `k` / `seed`
      when the spec does not set them.
    - `takes_heldout`: it needs a held-out training batch, which the trainer
      takes out of the training data.
    - `label`: its arm in reports, a `str.format` template of the spec's
      arguments (as written), `k` (the run's --k) and `flag`;
      `label_defaults` fills in the arguments a spec leaves out.
    - `classical`: it trains one model alone (the paper's X-C, Y-C), so a report
      names the arm without the dual run's start and BatchNorm option.
    - `report_order`: where its arms come in a report's table (then by label).
    - `noise_level`: summary.json gives the noise level of the paper's rule,
      1/(k+1)!, beside its motivated share.
    - `ladders`: it can drive a ladder of more than two models (a pair is
      the ladder of two).

    A mode is a rung index (0: the base; `rungs - 1`, which `MotivatedModel`
    sets, the largest model; a pair's motivated model is 1): `select` and
    `update` read the mode as an int32 (a Python int where it is known when
    tracing) and answer one. A rule for a pair is its rule for two rungs.
    """

    selects_before_step = False
    flag = None
    flag_help = ""
    parameters = {}
    takes_k = takes_seed = takes_heldout = False
    label = "X-Y {flag}"
    label_defaults = {}
    classical = False
    report_order = 1
    noise_level = False
    ladders = False
    rungs = 2

    @classmethod
    def report_label(cls, arguments, k):
        """The arm in reports (without the dual run's start and BatchNorm option): `arguments` are the
        spec's {argument: text as written}, `k` the run's --k."""
        return cls.label.format_map({**cls.label_defaults, **arguments, "flag": cls.flag, "k": k})

    @classmethod
    def from_arguments(cls, arguments, heldout=None):
        """The condition from its spec's parsed arguments (and the held-out batch, when it takes one)."""
        return cls(**arguments)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def set_rungs(self, rungs):
        """Called by `MotivatedModel` with its number of models; a one-line ValueError where this
        condition cannot drive them."""
        check_argument(
            rungs == 2 or self.ladders,
            f"{type(self).__name__} drives a pair, not a ladder of {rungs} models: use consecutive, growth, "
            "never or always.",
        )
        self.rungs = rungs

    def _state(self, name, dtype, value):
        return state_variable(self, name, dtype, value)

    def select(self, mode):
        """The rung that trains the next batch, asked before the step (`selects_before_step`)."""
        return mode

    def reachable_modes(self):
        """The modes this condition can choose, the base's first (every epoch starts on it): the engine traces
        the steps of these only. Every rung, unless a rule never chooses some."""
        return tuple(range(self.rungs))

    def replica_signals(self, model, loss_fn, gradients):
        """Extra inputs of `update`, computed in each replica after the step."""
        return {}

    def update(self, loss, mode, signals=None):
        """The rung that trains the next batch, after rung `mode`'s step on a batch of raw loss `loss`."""
        raise NotImplementedError

    def on_epoch_begin(self, epoch, steps_per_epoch):
        pass

    def call(self, inputs):
        raise TypeError(f"{type(self).__name__} is not called on data; MotivatedModel drives it.")
