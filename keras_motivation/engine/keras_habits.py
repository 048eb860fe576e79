"""What Keras asks of any model, answered for a pair or a ladder of them: `KerasHabits`, mixed into `MotivatedModel`.

- `summary()` lists the models, smallest first, with their own parameters.
- `get_weights()` / `set_weights()` are the models' weights, smallest first.
- `metrics`: every model's loss tracker and compiled metrics.
- The config (`get_config`, `from_config`), the compile config (a second
  optimizer) and the variables a saved file holds (`load_own_variables`).

The engine's state (which model holds the live weights, the counters, the
condition's streak) and the optimizers' slots are variables of the
`MotivatedModel` too, so Keras would count them among its weights and
parameters; they are the training run's, not any model's, and `save`,
`save_weights` and `BackupAndRestore` keep them.
"""

import keras

from keras_motivation import keras_internals
from keras_motivation.engine import ladder as ladder_lib
from keras_motivation.engine import switching


class _Models(keras.Model):
    """The models as one container's layers, in order: what `summary()` shows (a throwaway view; it shares
    their variables and holds nothing else)."""

    def __init__(self, models, name):
        super().__init__(name=name)
        for i, model in enumerate(models):
            setattr(self, f"model_{i}", model)
        self.built = True


class KerasHabits:
    """The Keras-facing overrides of `MotivatedModel` (module docstring)."""

    def summary(
        self,
        line_length=None,
        positions=None,
        print_fn=None,
        expand_nested=False,
        show_trainable=False,
        layer_range=None,
    ):
        """`keras.Model.summary` of the models, smallest first (`model.rungs`): one row each with its own
        parameters, and their total. The engine's state and the optimizers' slots are not counted."""
        _Models(self.rungs, self.name).summary(
            line_length=line_length,
            positions=positions,
            print_fn=print_fn,
            expand_nested=expand_nested,
            show_trainable=show_trainable,
            layer_range=layer_range,
        )

    def get_weights(self):
        """Every model's weights, smallest first: `[*model.base.get_weights(), ..., *model.motivated.get_weights()]`
        (a bigger model holds the live slices mid-epoch; at an epoch's end every model holds its own). The
        engine's state and the optimizers' slots are not weights: `save_weights` keeps them."""
        return [w for model in self.rungs for w in model.get_weights()]

    def set_weights(self, weights):
        """Sets every model's weights from `get_weights()`'s list (of this model or an uncompiled copy)."""
        weights = list(weights)
        expected = sum(len(model.weights) for model in self.rungs)
        if len(weights) != expected:
            raise ValueError(
                f"set_weights on {self.name!r} needs {expected} arrays (the models' weights, smallest first, as "
                f"get_weights() gives them), got {len(weights)}."
            )
        for model in self.rungs:
            n = len(model.weights)
            model.set_weights(weights[:n])
            weights = weights[n:]

    @property
    def metrics(self):
        metrics = super().metrics
        if self.compiled and getattr(self, "_ladder", None) is not None and self._ladder.metrics is not None:
            metrics += [m for rung in self._ladder.metrics[1:] for m in rung if m is not None]
        return metrics

    # -- saving ----------------------------------------------------------------------

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return keras_internals.serialized_compile_config(self)

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)

    def load_own_variables(self, store):
        # Compiled, the copy lists are attributes, so `save` writes the mapped
        # weights they hold (trainable, first), then the state variables, then
        # the optimizers' slots (see `compile`). `load_model(..., compile=False)`
        # has no copy lists: take the state variables from their place.
        own = keras_internals.own_variable_count(self)
        if not self.compiled and len(store.keys()) > own:
            copied = {
                id(v)
                for m in self.weights_maps
                for e in self._statistics.copies(m.base, m.entries)
                for v in (e.base, e.motivated)
            }
            first = sum(1 for v in self.weights if id(v) in copied and v.trainable)
            store = {str(i): store[str(first + i)] for i in range(own)}
        # Files from before ladders hold the mode as a bool (motivated_active).
        index = next(i for i, v in enumerate(keras_internals.own_variables(self)) if v is self._mode)
        super().load_own_variables(switching.ModeAsInt(store, index))

    def get_config(self):
        config = {"name": self.name}
        if len(self.rungs) == 2:
            config["base"] = keras.saving.serialize_keras_object(self.base)
            config["motivated"] = keras.saving.serialize_keras_object(self.motivated)
            config["weights_map"] = self.weights_map.get_config()
        else:
            config["models"] = [keras.saving.serialize_keras_object(m) for m in self.rungs]
            config["weights_map"] = [m.get_config() for m in self.weights_maps]
        return {
            **config,
            "condition": keras.saving.serialize_keras_object(self.condition),
            "bn_statistics": self.bn_statistics,
            "recalibration_batches": self.recalibration_batches,
            "joint": None if self.joint is None else keras.saving.serialize_keras_object(self.joint),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        models, maps = ladder_lib.rungs_from_config(config, custom_objects)
        condition = keras.saving.deserialize_keras_object(config.pop("condition"), custom_objects=custom_objects)
        if config.get("joint") is not None:
            config["joint"] = keras.saving.deserialize_keras_object(config["joint"], custom_objects=custom_objects)
        return cls(models=models, weights_map=maps, condition=condition, **config)
