"""Per-image augmentations from core Keras layers, run inside `tf.data`: the names `make_pipeline` accepts and
AutoAugment's CIFAR-10 policy built from Keras' colour and geometry layers.
"""

import keras
import tensorflow as tf

# The names --augment accepts, applied in the order given; mixup and cutmix mix whole batches.
AUGMENTATIONS = ("crop_flip", "flip", "randaugment", "autoaugment_cifar10", "random_erasing", "mixup", "cutmix")

# AutoAugment's CIFAR-10 policy (Cubuk et al. 2019, Table 7): 25 sub-policies of
# two (operation, probability, magnitude 0-9) steps.
AUTOAUGMENT_CIFAR10 = (
    (("invert", 0.1, 7), ("contrast", 0.2, 6)),
    (("rotate", 0.7, 2), ("translate_x", 0.3, 9)),
    (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)),
    (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
    (("autocontrast", 0.5, 8), ("equalize", 0.9, 2)),
    (("shear_y", 0.2, 7), ("posterize", 0.3, 7)),
    (("color", 0.4, 3), ("brightness", 0.6, 7)),
    (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
    (("equalize", 0.6, 5), ("equalize", 0.5, 1)),
    (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
    (("color", 0.7, 7), ("translate_x", 0.5, 8)),
    (("equalize", 0.3, 7), ("autocontrast", 0.4, 8)),
    (("translate_y", 0.4, 3), ("sharpness", 0.2, 6)),
    (("brightness", 0.9, 6), ("color", 0.2, 8)),
    (("solarize", 0.5, 2), ("invert", 0.0, 3)),
    (("equalize", 0.2, 0), ("autocontrast", 0.6, 0)),
    (("equalize", 0.2, 8), ("equalize", 0.6, 4)),
    (("color", 0.9, 9), ("equalize", 0.6, 6)),
    (("autocontrast", 0.8, 4), ("solarize", 0.2, 8)),
    (("brightness", 0.1, 3), ("color", 0.7, 0)),
    (("solarize", 0.4, 5), ("autocontrast", 0.9, 3)),
    (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
    (("autocontrast", 0.9, 2), ("solarize", 0.8, 3)),
    (("equalize", 0.8, 8), ("invert", 0.1, 3)),
    (("translate_y", 0.7, 9), ("autocontrast", 0.9, 1)),
)


def _autoaugment_op(name, magnitude, seed):
    """One AutoAugment operation at a fixed magnitude, from core Keras layers (0-255 images)."""
    m = magnitude / 9.0
    vr = (0, 255)
    fixed = lambda v: (v, v)  # noqa: E731  a random layer with a fixed factor
    return {
        "invert": lambda: keras.layers.RandomInvert(factor=1.0, value_range=vr, seed=seed),
        "contrast": lambda: keras.layers.RandomContrast(factor=0.9 * m, value_range=vr, seed=seed),
        "rotate": lambda: keras.layers.RandomRotation(fixed(30 / 360 * m), seed=seed),
        "translate_x": lambda: keras.layers.RandomTranslation(0, fixed(150 / 331 * m), seed=seed),
        "translate_y": lambda: keras.layers.RandomTranslation(fixed(150 / 331 * m), 0, seed=seed),
        "shear_y": lambda: keras.layers.RandomShear(x_factor=0.0, y_factor=0.3 * m, seed=seed),
        "sharpness": lambda: keras.layers.RandomSharpness(factor=fixed(min(m, 1.0)), value_range=vr, seed=seed),
        "autocontrast": lambda: keras.layers.AutoContrast(value_range=vr),
        "equalize": lambda: keras.layers.Equalization(value_range=vr),
        "posterize": lambda: keras.layers.RandomPosterization(
            factor=(max(1, int(8 - 4 * m)), max(1, int(8 - 4 * m))), value_range=vr, seed=seed
        ),
        "color": lambda: keras.layers.RandomColorDegeneration(factor=fixed(0.9 * m), value_range=vr, seed=seed),
        "brightness": lambda: keras.layers.RandomBrightness(factor=fixed(0.9 * m), value_range=vr, seed=seed),
        "solarize": lambda: keras.layers.Solarization(
            addition_factor=0.0, threshold_factor=fixed(1 - m), value_range=vr, seed=seed
        ),
    }[name]()


class _AutoAugment:
    """Applies one random sub-policy per image (in tf.data, one image at a time)."""

    def __init__(self, seed=None):
        self.policies = [
            [(_autoaugment_op(name, mag, seed), prob) for name, prob, mag in sub] for sub in AUTOAUGMENT_CIFAR10
        ]
        self.seed = seed

    def __call__(self, image):
        def branch(steps):
            def apply():
                x = image
                for layer, prob in steps:
                    x = tf.cond(
                        tf.random.uniform(()) < prob,
                        lambda layer=layer, x=x: tf.cast(layer(x), tf.float32),
                        lambda x=x: x,
                    )
                return x

            return apply

        index = tf.random.uniform((), 0, len(self.policies), dtype=tf.int32)
        return tf.switch_case(index, [branch(p) for p in self.policies])


def image_augmenters(augment, image_shape, seed):
    """Per-image augmentations (float 0-255 images), in the order given."""
    h, w = image_shape[:2]
    steps = []
    for name in augment:
        if name == "crop_flip":
            pad = max(1, h // 8)  # 4 px at 32 px, the CIFAR standard
            pad_layer = keras.layers.ZeroPadding2D(pad)
            crop = keras.layers.RandomCrop(h, w, seed=seed)
            flip = keras.layers.RandomFlip("horizontal", seed=seed)
            steps.append(lambda x, p=pad_layer, c=crop, f=flip: f(c(p(x[None]))[0]))
        elif name == "flip":
            flip = keras.layers.RandomFlip("horizontal", seed=seed)
            steps.append(lambda x, f=flip: f(x))
        elif name == "randaugment":
            ra = keras.layers.RandAugment(value_range=(0, 255), seed=seed)
            steps.append(lambda x, r=ra: tf.cast(r(x), tf.float32))
        elif name == "autoaugment_cifar10":
            steps.append(_AutoAugment(seed))
        elif name == "random_erasing":
            erase = keras.layers.RandomErasing(value_range=(0, 255), seed=seed)
            steps.append(lambda x, e=erase: tf.cast(e(x), tf.float32))
    return steps
