"""Training to a time budget: a plan made once from measured steps, then followed by steps.

`textgen train --minutes N` times a few real steps and a slice of validation, then plans
the run to fill the budget: how many steps, in how many epochs (validation and checkpoint
cadence), the learning rate held at its peak over the timed steps and then decayed along a
cosine to its floor at the last planned step. The plan is recorded in the run's config
(`RunConfig.plan`), so a resumed run follows it rather than a new clock, and a run given a
recorded plan trains the same steps with the same rates.

A slower or busier spell than the one measured makes the run end later than planned, not
cut short at a high learning rate; `GUARD` times the budget is the hard stop (validate,
save), as `max_minutes` is.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import keras
import tensorflow as tf

from textgen.model.sizes import training_memory_bytes

# Epochs (validations and checkpoints) a budget is split into, at most and at least.
MOST_EPOCHS, FEWEST_EPOCHS = 10, 2
# Seconds between validations at least: short budgets validate less often.
SECONDS_PER_EPOCH = 60.0
# Steps run untimed before planning (the first compiles, the next warm up) and then timed,
# and the seconds kept free at the end.
UNTIMED_STEPS, TIMED_STEPS, END_SECONDS = 3, 10, 2.0
GUARD = 1.25  # the hard stop, as a multiple of the budget
FLOOR = 0.1  # the learning rate's floor, as a fraction of its peak (the cosine presets')
# Passes over the training text outside which the plan warns (too big / too small a model).
FEWEST_PASSES, MOST_PASSES = 1.0, 50.0


@dataclass(frozen=True)
class Plan:
    """A budget's plan: what was measured and what follows from it."""

    minutes: float
    spent_seconds: float  # start-up and timing, before the plan
    seconds_per_step: float  # measured
    validation_seconds: float  # an epoch's end: validation, sample and checkpoint
    measured_steps: int  # trained while timing, at the peak learning rate
    steps: int  # in all, measured ones included
    epochs: int
    steps_per_epoch: int
    passes: float  # over the training windows

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Plan:
        return cls(**values)

    @property
    def estimated_seconds(self) -> float:
        """From the plan to the last checkpoint, at the measured speed."""
        steps = self.steps - self.measured_steps
        return steps * self.seconds_per_step + self.epochs * self.validation_seconds


def make_plan(
    minutes: float,
    spent_seconds: float,
    seconds_per_step: float,
    validation_seconds: float,
    measured_steps: int,
    windows_per_pass: int,
) -> Plan:
    """The plan that fills what is left of `minutes` after `spent_seconds` (start-up and
    timing): epochs of equal steps, each ending in a validation."""
    left = max(0.0, 60 * minutes - spent_seconds - END_SECONDS)
    epochs = int(min(MOST_EPOCHS, max(FEWEST_EPOCHS, left // SECONDS_PER_EPOCH)))
    trainable = max(0.0, left - epochs * validation_seconds)
    steps = max(epochs, measured_steps + int(trainable / seconds_per_step))
    per_epoch = max(1, math.ceil(steps / epochs))
    steps = per_epoch * epochs
    passes = steps / max(1, windows_per_pass)
    return Plan(
        minutes, spent_seconds, seconds_per_step, validation_seconds, measured_steps, steps,
        epochs, per_epoch, passes,
    )  # fmt: skip


def plan_lines(plan: Plan, memory_bytes: int, started: float) -> list[str]:
    """The block printed before training goes on: the plan, memory, and a warning when
    the model would see its text less than once or very many times."""
    finish = time.strftime("%H:%M", time.localtime(started + 60 * plan.minutes))
    lines = [
        f"Plan for {plan.minutes:g} minutes: {plan.steps:,} steps ({plan.epochs} epochs of "
        f"{plan.steps_per_epoch:,}, {plan.seconds_per_step * 1000:.0f} ms a step as measured), "
        f"{plan.passes:.1f} passes over the text, done about {finish}",
        f"Memory to train about {memory_bytes / 2**20:,.0f} MiB (weights, Adam, activations)",
    ]
    if plan.passes < FEWEST_PASSES:
        lines.append(
            f"Warning: the model sees its text only {plan.passes:.2f} times in this budget; "
            "a smaller model (--units, --layers) or more --minutes would learn more of it"
        )
    elif plan.passes > MOST_PASSES:
        lines.append(
            f"Warning: the model sees its text {plan.passes:.0f} times and will learn it by "
            "heart; a larger model (--units, --layers), more text or fewer --minutes"
        )
    return lines


class PlannedDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The peak rate for the first `hold` steps, then a cosine to `FLOOR` x peak at step
    `total`; both are variables, set once the plan is made (until then: the peak)."""

    def __init__(self, peak: float, hold: int = 0, total: int = 0):
        self.peak = peak
        self.hold = tf.Variable(float(hold), trainable=False, dtype=tf.float32)
        self.total = tf.Variable(float(total), trainable=False, dtype=tf.float32)

    def set(self, plan: Plan) -> None:
        self.hold.assign(plan.measured_steps)
        self.total.assign(plan.steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        span = tf.maximum(self.total - self.hold, 1.0)
        done = tf.clip_by_value((step - self.hold) / span, 0.0, 1.0)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * done))
        decayed = self.peak * (FLOOR + (1 - FLOOR) * cosine)
        return tf.where(self.total > 0, decayed, self.peak)

    def get_config(self) -> dict:
        return {"peak": self.peak}


CHECKPOINT_SECONDS = 0.5  # a checkpoint's write, budgeted with each validation


def plan_run(trainer) -> Plan:
    """Time `TIMED_STEPS` real steps of `trainer` (after `UNTIMED_STEPS`) and a slice of
    its validation, plan its budget, and record the plan in its config and run folder."""
    config = trainer.config
    trainer.log(f"Timing {TIMED_STEPS} steps to plan {config.train.minutes:g} minutes ...")
    for _ in range(UNTIMED_STEPS):  # the first compiles
        float(trainer._train_step(trainer.iterator))
    started = time.perf_counter()
    for _ in range(TIMED_STEPS):
        loss = trainer._train_step(trainer.iterator)
    float(loss)
    per_step = (time.perf_counter() - started) / TIMED_STEPS
    each_epoch = _validation_seconds(trainer) + _sample_seconds(trainer) + CHECKPOINT_SECONDS
    plan = make_plan(
        config.train.minutes, time.perf_counter() - trainer.started, per_step, each_epoch,
        UNTIMED_STEPS + TIMED_STEPS, trainer.windows_per_pass,
    )  # fmt: skip
    config.train.epochs, config.train.steps_per_epoch = plan.epochs, plan.steps_per_epoch
    config.plan = plan.to_dict()
    trainer.steps_per_epoch = plan.steps_per_epoch
    trainer.schedule.set(plan)
    trainer.folder.save_config(config)
    memory = training_memory_bytes(
        trainer.data.vocab.size, config.model, config.train.batch_size, config.data.seq_len
    )
    wall_start = time.time() - (time.perf_counter() - trainer.started)
    for line in plan_lines(plan, memory, wall_start):
        trainer.log(line)
    return plan


def _validation_seconds(trainer) -> float:
    """One validation's time: a slice of two batches timed (after a call that compiles),
    scaled to the tokens a validation reads."""
    if not trainer.has_validation:
        return 0.0
    data, train = trainer.config.data, trainer.config.train
    tokens = min(len(trainer.data.val_ids) - 1, train.val_tokens or len(trainer.data.val_ids))
    window = 2 * data.seq_len * train.batch_size
    piece = trainer.data.val_ids[: window + 1]
    trainer.window_loss(piece)  # compiles
    started = time.perf_counter()
    trainer.window_loss(piece)
    return (time.perf_counter() - started) * max(1.0, tokens / window)


def _sample_seconds(trainer) -> float:
    """The end-of-epoch sample's time, timed after a draw that builds the generator."""
    length = trainer.config.train.sample_length
    if not length:
        return 0.0
    trainer.generator.generate([""], max_new_tokens=length, seed=0)  # builds its graph
    started = time.perf_counter()
    trainer.generator.generate([""], max_new_tokens=length, seed=0)
    return time.perf_counter() - started


def budget_report(plan: Plan, seconds: float) -> str:
    """The line that ends a budget run: the time it took against the budget and the plan."""
    estimate = (plan.spent_seconds + plan.estimated_seconds) / 60
    return (
        f"Trained for {seconds / 60:.2f} minutes of a {plan.minutes:g}-minute budget "
        f"(planned: {estimate:.2f})"
    )
