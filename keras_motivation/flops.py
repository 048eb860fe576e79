"""Forward FLOPs per image, and the paper's accounting (Eqs. 1-3).

Convention, pinned here: `count_macs` is the number of multiply-adds of one
forward pass of one image, as TensorFlow's profiler counts them on the frozen
inference graph (it reports 2 FLOPs per multiply-add for convolutions and
matmuls and 1 per element for elementwise ops; we report half its total).
FLOPs = 2 x MACs. The paper mixes the two: its ResNet-20 "82.82M FLOPs" are
41.4M MACs x 2, its EfficientNet-B0 "0.39G" are MACs.
"""

import tensorflow as tf

from keras_motivation import keras_internals


def count_macs(model, input_shape=None):
    """Forward multiply-adds per image (batch 1) of a built Keras model."""
    shape = tuple(input_shape or model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"count_macs needs a fixed input shape, got {shape}: pass input_shape=(h, w, c).")
    dtype = model.inputs[0].dtype if getattr(model, "inputs", None) else "float32"
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec((1, *shape), dtype))
    graph = keras_internals.frozen_graph(fn)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    # The v1 profiler calls a deprecated TF helper, which warns on every call
    # (twice under absl); the warning is TensorFlow's own business.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        profile = tf.compat.v1.profiler.profile(
            graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options
        )
    finally:
        logger.setLevel(level)
    return profile.total_float_ops // 2


def count_flops(model, input_shape=None):
    """Forward FLOPs per image = 2 x multiply-adds."""
    return 2 * count_macs(model, input_shape)


def dual_training_flops(base_flops, motivated_flops, base_steps, motivated_steps):
    """The paper's F_{X-Y}: average forward FLOPs per pass during dual training."""
    steps = base_steps + motivated_steps
    if steps <= 0:
        raise ValueError("dual_training_flops needs at least one step.")
    return (base_flops * base_steps + motivated_flops * motivated_steps) / steps


def training_flops(forward_flops, examples, backward_factor=2.0):
    """Training cost of `examples` trained examples: forward + backward (about 2x forward)."""
    return forward_flops * examples * (1.0 + backward_factor)


def acc_per_flops(acc, acc_ref, flops, flops_ref):
    """ACC/FLOPs (paper Eqs. 1-2): accuracy gained per FLOP over the reference X-C."""
    if flops == flops_ref:
        raise ValueError("ACC/FLOPs is undefined when the FLOPs equal the reference's.")
    return (acc - acc_ref) / (flops - flops_ref)


def acc_flops_ratio(acc_xyb, acc_xc, acc_yc, f_xy, f_xc, f_yc):
    """ACC/F_Ratio_{X-Y} (paper Eq. 3) = ACC/FLOPs_{X-Y-B} / ACC/FLOPs_{Y-C}."""
    y_rate = acc_per_flops(acc_yc, acc_xc, f_yc, f_xc)
    if y_rate == 0:
        raise ValueError("ACC/F_Ratio is undefined when Y-C gains nothing over X-C.")
    return acc_per_flops(acc_xyb, acc_xc, f_xy, f_xc) / y_rate
