"""The tf.distribute strategy of a run, by the name `--strategy` gives.

`STRATEGIES` is the one list of names: the config validates against it and
the flag's help is written from it.
"""

import os

import tensorflow as tf


def _default(config):
    return tf.distribute.get_strategy()


def _mirrored(config):
    return tf.distribute.MirroredStrategy()


def _multi_worker(config):
    resolver = None
    if "TF_CONFIG" not in os.environ and "SLURM_JOB_ID" in os.environ:
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver()
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def _tpu(config):
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="" if config.tpu == "local" else config.tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


# name -> builder(config); the help of --strategy says what each needs.
STRATEGIES = {"default": _default, "mirrored": _mirrored, "multi_worker": _multi_worker, "tpu": _tpu}


def make_strategy(config):
    """The strategy `config.strategy` names (ValueError for an unknown name)."""
    if config.strategy not in STRATEGIES:
        raise ValueError(f"Unknown --strategy {config.strategy!r}: use one of {', '.join(STRATEGIES)}.")
    return STRATEGIES[config.strategy](config)


def is_chief(strategy):
    """Whether this process writes the workdir (the chief, or worker 0 of a chief-less cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


def agreement(strategy):
    """For host decisions every worker must take together (stop at this step, write a backup now):
    `agree(values) -> [sum of each value over the replicas]`, an all-reduce, under
    MultiWorkerMirroredStrategy; None for a strategy within one process (nothing to agree on).

    Every worker must call it at the same points, in the same order, as for the training steps.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None

    @tf.function(reduce_retracing=True)
    def total(values):
        # Every replica adds its worker's values: a worker with several devices counts as many times, so
        # callers test the sums for > 0.
        return strategy.reduce("SUM", strategy.run(tf.identity, args=(values,)), axis=None)

    def agree(values):
        return [float(v) for v in total(tf.constant(values, tf.float32)).numpy()]

    return agree
