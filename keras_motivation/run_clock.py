"""Where a run's time goes: the breakdown that summary.json records under `time_breakdown`.

`RunClock` splits a run, from `trainer.run`'s start to its summary, into
phases, each in wall-clock and in CPU time of the process (all threads):

    startup                 data, models, compile: from the run's start to the first training step
    tracing                 the first training step and the first validation batch, over the mean of the others
                            (tracing and compiling their functions)
    train_steps             the training steps (the train function's calls), the first one's mean share included
    validation              the validation passes inside fit (the first batch's mean share included)
    statistics              BatchNorm statistics recomputed (option "recalibrated", the first recomputation's
                            tracing included), in fit and after it
    callbacks_and_backups   the callbacks' batch and epoch hooks (logs, TensorBoard, backups)
    fit_other               the rest of fit (Keras' loop, the iterators, the epoch boundary)
    finish                  after fit: the final evaluation, the saved models, the summary, the export

The phases add up to `total`. `process_cpu_before_run_s` is the CPU time the
process spent before the run started (Python and TensorFlow's imports). A
resumed run's breakdown is that of its own process.

Its two callbacks go first and last among the run's callbacks
(`callbacks(...)`): a training step is the time from the last callback's
batch start to the first one's batch end (TensorFlow runs a step before its
call returns), and the callbacks' time is what lies between the two.
"""

import time

import keras

PHASES = (
    "startup",
    "tracing",
    "train_steps",
    "validation",
    "statistics",
    "callbacks_and_backups",
    "fit_other",
    "finish",
)


def _now():
    return time.perf_counter(), time.process_time()


def _since(start):
    wall, cpu = _now()
    return wall - start[0], cpu - start[1]


class _Span:
    """Summed (wall, CPU) seconds of one kind of interval, and its count."""

    def __init__(self):
        self.wall, self.cpu, self.count = 0.0, 0.0, 0
        self.first = None  # (wall, CPU) of the first interval

    def add(self, seconds):
        if self.first is None:
            self.first = seconds
        self.wall += seconds[0]
        self.cpu += seconds[1]
        self.count += 1

    def first_excess(self):
        """(wall, CPU) by which the first interval exceeds the mean of the others (tracing), at least 0."""
        if self.count < 2:
            return 0.0, 0.0
        rest = self.count - 1
        return tuple(max(0.0, f - (total - f) / rest) for f, total in zip(self.first, (self.wall, self.cpu)))


class RunClock:
    """The phases of one run (module docstring), from its creation. `model`: the run's `MotivatedModel`
    (set once built), whose `recalibration_seconds` are the statistics phase."""

    def __init__(self):
        self.cpu_before_run = time.process_time()
        self._start = _now()
        self.model = None
        self.steps, self.test_batches = _Span(), _Span()
        self.validation, self.callbacks_time, self.fit = _Span(), _Span(), _Span()
        self._fit_statistics = [0.0, 0.0]
        self._fit_begin = self.step_started = self.hook_started = self.test_started = self.test_batch_started = None
        self._startup = self._finish = None
        self.first, self.last = _Opening(self), _Closing(self)

    def _statistics_seconds(self):
        return getattr(self.model, "recalibration_seconds", (0.0, 0.0))

    def callbacks(self, others):
        """`others` between the clock's two callbacks."""
        return [self.first, *others, self.last]

    def begin_fit(self):
        self._fit_begin = _now()
        self._fit_statistics_begin = self._statistics_seconds()
        if self._startup is None:
            self._startup = _since(self._start)

    def end_fit(self):
        self.fit.add(_since(self._fit_begin))
        now = self._statistics_seconds()
        for i in range(2):
            self._fit_statistics[i] += now[i] - self._fit_statistics_begin[i]

    def finish(self):
        """Marks the end of the run (before its summary is written)."""
        self._finish = _now()

    def breakdown(self):
        """{"wall_clock_s": {phase: seconds, "total": ...}, "cpu_time_s": {...}, "process_cpu_before_run_s": ...}."""
        end = self._finish or _now()
        total = (end[0] - self._start[0], end[1] - self._start[1])
        startup = self._startup or total
        statistics = self._statistics_seconds()
        tracing = tuple(a + b for a, b in zip(self.steps.first_excess(), self.test_batches.first_excess()))
        out = {}
        for i, clock in enumerate(("wall_clock_s", "cpu_time_s")):
            steps = (self.steps.wall, self.steps.cpu)[i] - self.steps.first_excess()[i]
            validation = (self.validation.wall, self.validation.cpu)[i] - self.test_batches.first_excess()[i]
            callbacks = (self.callbacks_time.wall, self.callbacks_time.cpu)[i]
            fit = (self.fit.wall, self.fit.cpu)[i]
            phases = {
                "startup": startup[i],
                "tracing": tracing[i],
                "train_steps": steps,
                "validation": validation,
                "statistics": statistics[i],
                "callbacks_and_backups": callbacks,
                "fit_other": fit - steps - tracing[i] - validation - callbacks - self._fit_statistics[i],
            }
            phases["finish"] = total[i] - sum(phases.values())
            out[clock] = {**{p: round(phases[p], 3) for p in PHASES}, "total": round(total[i], 3)}
        out["process_cpu_before_run_s"] = round(self.cpu_before_run, 3)
        out["steps"] = self.steps.count
        return out


class _Opening(keras.callbacks.Callback):
    """The clock's first callback: the start of the callbacks' batch hooks, the end of a step."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_train_begin(self, logs=None):
        self.clock.begin_fit()

    def on_train_batch_begin(self, batch, logs=None):
        self.clock.hook_started = _now()

    def on_train_batch_end(self, batch, logs=None):
        self.clock.steps.add(_since(self.clock.step_started))
        self.clock.hook_started = _now()

    def on_epoch_end(self, epoch, logs=None):
        self.clock.hook_started = _now()

    def on_test_begin(self, logs=None):
        self.clock.test_started = _now()

    def on_test_batch_end(self, batch, logs=None):
        self.clock.test_batches.add(_since(self.clock.test_batch_started))


class _Closing(keras.callbacks.Callback):
    """The clock's last callback: the end of the callbacks' batch hooks, the start of a step."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_train_batch_begin(self, batch, logs=None):
        self.clock.callbacks_time.add(_since(self.clock.hook_started))
        self.clock.step_started = _now()

    def on_train_batch_end(self, batch, logs=None):
        self.clock.callbacks_time.add(_since(self.clock.hook_started))

    def on_epoch_end(self, epoch, logs=None):
        self.clock.callbacks_time.add(_since(self.clock.hook_started))

    def on_test_batch_begin(self, batch, logs=None):
        self.clock.test_batch_started = _now()

    def on_test_end(self, logs=None):
        self.clock.validation.add(_since(self.clock.test_started))

    def on_train_end(self, logs=None):
        self.clock.end_fit()
