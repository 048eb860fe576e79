"""Learning-rate schedules of the recipes: the re-warm-up at a growth point."""

import keras
import numpy as np

from keras_motivation import recipes


def test_rewarmed_follows_the_schedule_then_ramps_up_again_from_the_growth_point():
    cosine = keras.optimizers.schedules.CosineDecay(0.2, decay_steps=100)
    schedule = recipes.Rewarmed(cosine, at_step=30, warmup_steps=10)
    lr = np.array([float(schedule(s)) for s in range(100)])
    plain = np.array([float(cosine(s)) for s in range(100)])
    np.testing.assert_allclose(lr[:30], plain[:30], rtol=1e-6)
    np.testing.assert_allclose(lr[30:40], plain[30:40] * np.arange(1, 11) / 10, rtol=1e-5)
    np.testing.assert_allclose(lr[40:], plain[40:], rtol=1e-6)


def test_rewarmed_round_trips_its_config_and_takes_a_constant_rate():
    schedule = recipes.Rewarmed(keras.optimizers.schedules.CosineDecay(0.1, decay_steps=50), 5, 4)
    again = recipes.Rewarmed.from_config(schedule.get_config())
    assert [float(again(s)) for s in range(20)] == [float(schedule(s)) for s in range(20)]
    constant = recipes.Rewarmed(0.1, at_step=2, warmup_steps=2)
    np.testing.assert_allclose([float(constant(s)) for s in range(5)], [0.1, 0.1, 0.05, 0.1, 0.1], rtol=1e-6)


def test_the_trainer_rewarms_at_the_growth_step_of_its_condition():
    from keras_motivation.config import TrainConfig

    config = TrainConfig(
        condition="growth:epochs=0.5", rewarm_epochs=0.25, epochs=2, learning_rate=0.1, schedule="constant"
    ).validate()
    schedule = recipes.learning_rate(config, steps_per_epoch=20)
    assert isinstance(schedule, recipes.Rewarmed) and schedule.at_step == 10 and schedule.warmup_steps == 5
    np.testing.assert_allclose([float(schedule(s)) for s in (9, 10, 14, 15)], [0.1, 0.02, 0.1, 0.1], rtol=1e-6)
