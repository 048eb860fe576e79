"""Where each base variable sits inside the motivated model, and the copies.

A `WeightsMap` is a list of entries `(base variable, motivated variable,
start)`: the base variable occupies the block of the motivated variable that
begins at `start` and has the base variable's shape. The paper always uses
the first channels / features / layers, so `start` is all zeros for every map
this package derives; other offsets are allowed for hand-written maps.

`derive()` builds a map for two models from the paths of their variables
(nested models and layers that hold layers included): layers outside
residual blocks map to the layer of the same name, layers inside blocks map
block to block by a depth rule (`"first"` or `"last_to_last"`), and every
tensor takes the first entries of each axis (the width rule).

`identity_start()` (opt-in) makes the motivated model's parts that no base
variable maps to start as no-ops (start.py says how).

- `mapping.py`: `WeightsMap`, its entries and the copies through it.
- `derivation.py`: `derive()`, the block patterns and the depth rules.
- `rules.py`: the paper's map rules by family (`RULES`) and `get`.
- `start.py`: `identity_start()`, `differential_blocks()`, `branch_gammas()`.

This package's names are its public API (importable from
`keras_motivation.weights_map` as before the split).
"""

from keras_motivation.weights_map.derivation import DEFAULT_BLOCK_PATTERNS  # noqa: F401
from keras_motivation.weights_map.derivation import depth_rule  # noqa: F401
from keras_motivation.weights_map.derivation import derive  # noqa: F401
from keras_motivation.weights_map.mapping import Entry  # noqa: F401
from keras_motivation.weights_map.mapping import WeightsMap  # noqa: F401
from keras_motivation.weights_map.mapping import compose  # noqa: F401
from keras_motivation.weights_map.mapping import copy_to_base  # noqa: F401
from keras_motivation.weights_map.mapping import copy_to_motivated  # noqa: F401
from keras_motivation.weights_map.mapping import mapped_variables  # noqa: F401
from keras_motivation.weights_map.rules import RULES  # noqa: F401
from keras_motivation.weights_map.rules import efficientnet_map  # noqa: F401
from keras_motivation.weights_map.rules import get  # noqa: F401
from keras_motivation.weights_map.rules import resnet_depth_map  # noqa: F401
from keras_motivation.weights_map.rules import width_map  # noqa: F401
from keras_motivation.weights_map.start import branch_gammas  # noqa: F401
from keras_motivation.weights_map.start import differential_blocks  # noqa: F401
from keras_motivation.weights_map.start import identity_start  # noqa: F401
