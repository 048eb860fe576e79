"""Every rung from one forward pass, where the largest model's pass gives them all: evaluation and statistics.

In a prefix family (each model the next one's first layers: `resnet8:resnet8p14`, a prefix ladder) every
smaller rung's output comes out of the largest model's forward pass: the smaller rung's *trunk* (the layers it
shares with the largest model, `shared_forward.find`) computes what the largest model's same layers compute,
and only its own *tail* (a prefix pair: the head) is left to run on the largest model's tensors (its *cut*).

- Evaluation (`evaluate`, the validation inside `fit`, `test_on_batch`) and `predict_every_rung` run the
  largest model once and each smaller rung's tail on its cut, in inference mode, for the rungs whose trunk
  holds the same weights and BatchNorm statistics as the largest model's (`sharing_rungs`, checked on the
  device at each read: then the outputs are those of separate passes); any other rung runs its own pass.
- Recomputing BatchNorm statistics (`recompute_family`): the largest model's pass and the smaller rungs'
  tails in one training-mode pass (`family_model`); a smaller rung's trunk statistics are the largest
  model's (the same batches through the same weights, batch statistics in training mode), copied. After
  that every rung's trunk statistics are the same, and the joint step keeps them so (`shared_forward.py`:
  `base' = motivated' + momentum * (base - motivated)`), so evaluation takes one pass from then on.

Where there is no shared trunk (a width pair, a subclassed model) everything runs per rung, as before.
"""

import keras
import tensorflow as tf

from keras_motivation import batch_norm
from keras_motivation import weights_map as weights_map_lib
from keras_motivation.engine import shared_forward as shared_forward_lib


class Family:
    """The largest rung's pass with every smaller rung's tail (built by `family`).

    Attributes:
        plan: the `SharedForward` of the largest model (one `Tail` per smaller rung, smallest first).
        weights: per smaller rung, the (its variable, the largest model's) pairs of its trunk's weights.
        statistics: the same of its trunk's BatchNorm moving statistics.
        model: the largest model's inputs -> [its output, each smaller rung's output through its tail] (what a
            recomputation of every rung's statistics runs).
    """

    def __init__(self, plan, weights, statistics, model):
        self.plan, self.weights, self.statistics, self.model = plan, weights, statistics, model
        self._equal = None

    def equal_trunks(self, strategy, with_statistics=True):
        """The smaller rungs (indices) whose trunk variables hold the largest model's values: the weights (and,
        `with_statistics`, the moving statistics). One compiled comparison on the device, one bool per rung."""
        if self._equal is None:
            pairs = [(w, s) for w, s in zip(self.weights, self.statistics)]

            def same(pairs):
                return tf.reduce_all([tf.reduce_all(tf.equal(a.value, b.value)) for a, b in pairs]) if pairs else True

            self._equal = tf.function(
                lambda: [(same(w), same(s)) for w, s in pairs], autograph=False, reduce_retracing=True
            )
        with strategy.scope():
            flags = self._equal()
        return frozenset(j for j, (w, s) in enumerate(flags) if bool(w) and (not with_statistics or bool(s)))

    def inference_pass(self, x):
        """The largest model's output and each tail's cut tensors, in inference mode."""
        outputs = self.plan.trunk(x, training=False)
        by_name = dict(zip(self.plan.cut, outputs[1:]))
        return outputs[0], [[by_name[n] for n in t.cut] for t in self.plan.tails]


class State:
    """What a model knows of its family and of the test and predict functions it traced (a plain object)."""

    def __init__(self):
        self.family = None  # a Family, False where there is none, None before it was looked for
        self.test_sharing = frozenset()  # the rungs the test function was traced to take from the largest pass
        self.predict_sharing = None  # the same of the every-rung predict function (None: none traced)
        self.predict_function = None  # the every-rung predict function
        self.every_rung = False  # predict returns every rung's output (predict_every_rung)


def state(model):
    found = model.__dict__.get("motivated_evaluation_state")
    if found is None:
        found = State()
        object.__setattr__(model, "motivated_evaluation_state", found)
    return found


def family(model):
    """The model's `Family`, or None where a smaller rung shares no trunk with the largest model (found once)."""
    own = state(model)
    if own.family is None:
        own.family = _find(model) or False
    return own.family or None


def _find(model):
    rungs, maps = model.rungs, model.weights_maps
    top = len(rungs) - 1
    plan = model._ladder.plans.get(top)
    composed = None
    if plan is None:
        try:
            composed = [weights_map_lib.compose(maps[j:top]) for j in range(top)]
        except ValueError:
            return None
        plan, _ = shared_forward_lib.find(composed)
        if plan is None:
            return None
    largest = rungs[top]
    top_level = {layer.name for layer in largest.layers}
    if any(name not in top_level for tail in plan.tails for name in tail.cut):
        # The trunk ends inside a nested model (a keras-hub backbone): each rung takes its own pass.
        return None
    composed = composed or [weights_map_lib.compose(maps[j:top]) for j in range(top)]
    weights, statistics = [], []
    for j, tail in enumerate(plan.tails):
        by_base = {id(e.base): e.motivated for e in composed[j].entries}
        own_layers = {layer.name for layer in tail.model.layers}
        w, s = [], []
        for layer in rungs[j].layers:
            if layer.name in own_layers or isinstance(layer, keras.layers.InputLayer):
                continue
            for variable in layer.weights:
                pair = (variable, by_base[id(variable)])
                moving = isinstance(layer, keras.layers.BatchNormalization) and not variable.trainable
                (s if moving else w).append(pair)
        weights.append(w)
        statistics.append(s)
    outputs = [largest.outputs[0]] + [
        tail.model([largest.get_layer(n).output for n in tail.cut]) for tail in plan.tails
    ]
    return Family(plan, weights, statistics, keras.Model(largest.inputs, outputs, name="family"))


def sharing_rungs(model):
    """The smaller rungs that evaluation takes from the largest model's pass now (their trunk's weights and
    statistics are the largest model's): empty where there is no family."""
    found = family(model)
    if found is None:
        return frozenset()
    return found.equal_trunks(model.distribute_strategy)


def recompute_family(model, data, batches):
    """Every rung's BatchNorm statistics from one pass per batch (module docstring), when every smaller rung's
    trunk holds the largest model's weights; returns (batches used, the models that ran: the largest and each
    smaller rung's tail), or None (no family, or a trunk that differs: recompute each rung on its own)."""
    found = family(model)
    if found is None or len(found.equal_trunks(model.distribute_strategy, False)) < len(found.weights):
        return None
    used = batch_norm.recalibrate(found.model, data, batches)
    for pairs in found.statistics:
        for own, largest in pairs:
            own.assign(largest.value)
    return used, (model.rungs[-1], *(t.model for t in found.plan.tails))


def test_sharing_changed(model):
    """Whether the rungs evaluation can take from the largest model's pass changed since the test function was
    traced (then `make_test_function` traces it again); records them."""
    own, sharing = state(model), sharing_rungs(model)
    changed, own.test_sharing = sharing != own.test_sharing, sharing
    return changed


def rung_outputs(model, x, sharing):
    """Each rung's inference output for `x`, smallest first: the rungs in `sharing` (and then the largest) from one
    pass of the largest model, the others from their own."""
    top = len(model.rungs) - 1
    shared = {}
    if sharing:
        found = family(model)
        y_top, cuts = found.inference_pass(x)
        shared = {j: found.plan.tails[j].model(cuts[j], training=False) for j in sorted(sharing)}
        shared[top] = y_top
    return [shared[r] if r in shared else m(x, training=False) for r, m in enumerate(model.rungs)]


class OnePassReads:
    """Evaluation and prediction of every rung, mixed into `MotivatedModel`: one pass where the family allows
    (module docstring)."""

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        outputs = rung_outputs(self, x, state(self).test_sharing)
        for rung, (model, y_pred) in enumerate(zip(self.rungs, outputs)):
            self._track(rung, x, y, y_pred, self._loss(model, y, y_pred, sample_weight), sample_weight)
        return self.get_metrics_result()

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        own = state(self)
        if own.every_rung:
            return tuple(rung_outputs(self, x, own.predict_sharing))
        return self(x, training=False)

    def predict_every_rung(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Every rung's predictions for `x` (as `predict` takes it), smallest first: one forward pass of the
        largest model per batch where every smaller rung's output comes out of it, else a pass per rung.
        BatchNorm statistics are recomputed first when stale, as for `predict`."""
        own = state(self)
        plain = self.predict_function
        self.predict_function, own.every_rung = None, True
        try:
            self.refresh_statistics()
            sharing = sharing_rungs(self)
            if sharing == own.predict_sharing:
                self.predict_function = own.predict_function
            own.predict_sharing = sharing
            outputs = self.predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)
            own.predict_function = self.predict_function
        finally:
            self.predict_function, own.every_rung = plain, False
        return list(outputs)
