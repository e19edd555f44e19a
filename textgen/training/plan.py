"""Training to a time budget: a plan made once from measured steps, then followed by steps.

`textgen train --minutes N` times a few real steps and a slice of validation, then plans
the run to fill the budget: how many steps, in how many epochs (validation and checkpoint
cadence), the learning rate held at its peak over the timed steps and then decayed along a
cosine to its floor at the last planned step. The plan is recorded in the run's config
(`RunConfig.plan`), so a resumed run follows it rather than a new clock, and a run given a
recorded plan trains the same steps with the same rates.

The machine's speed swings by about 10% over minutes, more than a few timed steps can
foresee, so at each epoch's end but the last the run is re-timed over the steps it has
trained and the last epoch lengthened or shortened to end at the budget's end, the cosine
going on from where it is to its floor at the new last step (`replan`). Each re-plan is
recorded in the plan before that epoch's checkpoint, and a run that finds one recorded
(resumed, or given the plan) follows it instead of its own clock. A slower spell than
foreseen makes the run end later than planned, not cut short at a high learning rate;
`GUARD` times the budget is the hard stop (validate, save), as `max_minutes` is, for a run
that keeps its own time; one that follows a whole recorded plan trains its steps.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace

import keras
import tensorflow as tf

from textgen.model.sizes import peak_memory_bytes, training_memory_bytes

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
# A validation's tokens unless set (`val_tokens`); under a budget, its validations take at
# most VALIDATION_SHARE of it, on no fewer than FEWEST_VALIDATION_TOKENS: 1M tokens took
# 40% of a 2-minute run of 2 x GRU(128) on a 10 MB corpus (docs/experiments.md, "Sizing a
# run for its budget"); 200k hold a 1 MB corpus's tenth whole.
DEFAULT_VALIDATION_TOKENS = 1_000_000
VALIDATION_SHARE, FEWEST_VALIDATION_TOKENS = 0.05, 200_000


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
    # at epoch ends: {"epoch", "step", "steps" (the new total), "progress" (the cosine's, at
    # "step"), "seconds_per_step" (as trained so far), "used_seconds" (of the budget)}
    replans: tuple[dict, ...] = ()
    most_steps: int | None = None  # the steps the run stops at, if fewer than fit

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Plan:
        return cls(**{**values, "replans": tuple(map(dict, values.get("replans", ())))})

    @property
    def total_steps(self) -> int:
        """The steps in all, as last re-planned."""
        return self.replans[-1]["steps"] if self.replans else self.steps

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
    most_steps: int | None = None,
) -> Plan:
    """The plan that fills what is left of `minutes` after `spent_seconds` (start-up and
    timing): epochs of equal steps, each ending in a validation; or, if fewer, the time
    `most_steps` take (the steps in all, rounded down to whole epochs)."""
    left = max(0.0, 60 * minutes - spent_seconds - END_SECONDS)
    if most_steps:
        needed = max(0, most_steps - measured_steps) * seconds_per_step
        left = min(left, needed + plan_epochs(needed) * validation_seconds)
    epochs = plan_epochs(left)
    trainable = max(0.0, left - epochs * validation_seconds)
    steps = max(epochs, measured_steps + int(trainable / seconds_per_step))
    steps = min(steps, most_steps or steps)
    per_epoch = max(1, steps // epochs if most_steps else math.ceil(steps / epochs))
    steps = per_epoch * epochs
    passes = steps / max(1, windows_per_pass)
    return Plan(
        minutes, spent_seconds, seconds_per_step, validation_seconds, measured_steps, steps,
        epochs, per_epoch, passes, most_steps=most_steps,
    )  # fmt: skip


def validation_tokens(train, available: int) -> int:
    """The tokens a validation reads of the `available` ones (`train`: a TrainConfig)."""
    cap = DEFAULT_VALIDATION_TOKENS if train.val_tokens is None else train.val_tokens
    return min(cap or available, available)


def budget_validation_tokens(left: float, seconds_per_token: float, available: int) -> int:
    """A budget run's validation tokens: its validations in `left` seconds of training
    (one an epoch) take `VALIDATION_SHARE` of them, at `seconds_per_token`."""
    allowed = VALIDATION_SHARE * left / plan_epochs(left)
    tokens = int(allowed / seconds_per_token) if seconds_per_token > 0 else available
    return min(available, DEFAULT_VALIDATION_TOKENS, max(FEWEST_VALIDATION_TOKENS, tokens))


def plan_epochs(seconds: float) -> int:
    """The epochs `seconds` of training are split into."""
    return int(min(MOST_EPOCHS, max(FEWEST_EPOCHS, seconds // SECONDS_PER_EPOCH)))


def plan_lines(plan: Plan, memory_bytes: int, started: float) -> list[str]:
    """The block printed before training goes on: the plan, memory, and a warning when
    the model would see its text less than once or very many times."""
    ends = plan.spent_seconds + plan.estimated_seconds if plan.most_steps else 60 * plan.minutes
    finish = time.strftime("%H:%M", time.localtime(started + ends))
    lines = [
        f"Plan for {plan.minutes:g} minutes: {plan.steps:,} steps ({plan.epochs} epochs of "
        f"{plan.steps_per_epoch:,}, {plan.seconds_per_step * 1000:.0f} ms a step as measured), "
        f"{plan.passes:.1f} passes over the text, done about {finish}",
        f"Memory at the peak about {memory_bytes / 2**20:,.0f} MiB (as measured while timing)",
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
    """The peak rate until step `start`, then a cosine to `FLOOR` x peak at step `total`,
    its progress going on from `progress` at `start`: variables, set from the plan (the
    timed steps, then each re-plan) and until then at the peak."""

    def __init__(self, peak: float):
        self.peak = peak
        self.start = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.progress = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.total = tf.Variable(0.0, trainable=False, dtype=tf.float32)

    def set(self, plan: Plan, step: int = 0) -> None:
        """The stretch of the plan that `step` is in (its last re-plan at or before it)."""
        start, progress, total = plan.measured_steps, 0.0, plan.steps
        for again in plan.replans:
            if again["step"] <= step:
                start, progress, total = again["step"], again["progress"], again["steps"]
        self.start.assign(start)
        self.progress.assign(progress)
        self.total.assign(total)

    def done(self, step):
        """The cosine's progress at `step`, 0 to 1."""
        step = tf.cast(step, tf.float32)
        span = tf.maximum(self.total - self.start, 1.0)
        return tf.clip_by_value(
            self.progress + (1.0 - self.progress) * (step - self.start) / span, 0.0, 1.0
        )

    def __call__(self, step):
        cosine = 0.5 * (1.0 + tf.cos(math.pi * self.done(step)))
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
    for _ in range(TIMED_STEPS):  # each waited for, as the loop does (it checks the loss)
        float(trainer._train_step(trainer.iterator))
    per_step = (time.perf_counter() - started) / TIMED_STEPS
    each_epoch = epoch_end_seconds(trainer, time.perf_counter() - trainer.started)
    plan = make_plan(
        config.train.minutes, time.perf_counter() - trainer.started, per_step, each_epoch,
        UNTIMED_STEPS + TIMED_STEPS, trainer.windows_per_pass, config.train.max_steps,
    )  # fmt: skip
    config.train.epochs, config.train.steps_per_epoch = plan.epochs, plan.steps_per_epoch
    config.plan = plan.to_dict()
    trainer.steps_per_epoch = plan.steps_per_epoch
    trainer.schedule.set(plan)
    trainer.folder.save_config(config)
    memory = peak_memory_bytes() or training_memory_bytes(
        trainer.data.vocab.size, config.model, config.train.batch_size, config.data.seq_len
    )
    wall_start = time.time() - (time.perf_counter() - trainer.started)
    for line in plan_lines(plan, memory, wall_start):
        trainer.log(line)
    return plan


def epoch_end_seconds(trainer, spent_seconds: float = 0.0) -> float:
    """An epoch's end as timed here: validation, the sample and the checkpoint. A budget
    run's validation tokens, unless set, are first chosen for what is left of its budget
    after `spent_seconds` (`budget_validation_tokens`) and set in its config."""
    train, available = trainer.config.train, len(trainer.data.val_ids) - 1
    per_token = _validation_seconds_per_token(trainer)
    if train.minutes and train.val_tokens is None and trainer.has_validation:
        left = max(0.0, 60 * train.minutes - spent_seconds - END_SECONDS)
        train.val_tokens = budget_validation_tokens(left, per_token, available)
    validation = per_token * validation_tokens(train, available)
    return validation + _sample_seconds(trainer) + CHECKPOINT_SECONDS


def _validation_seconds_per_token(trainer) -> float:
    """A validation's time a token: a slice of two batches timed (after a call that
    compiles)."""
    if not trainer.has_validation:
        return 0.0
    data, train = trainer.config.data, trainer.config.train
    window = min(2 * data.seq_len * train.batch_size, len(trainer.data.val_ids) - 1)
    piece = trainer.data.val_ids[: window + 1]
    trainer.window_loss(piece)  # compiles
    started = time.perf_counter()
    trainer.window_loss(piece)
    return (time.perf_counter() - started) / window


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
    again = f", re-planned to {plan.total_steps:,} steps" if plan.replans else ""
    return (
        f"Trained for {seconds / 60:.2f} minutes of a {plan.minutes:g}-minute budget "
        f"(first plan: {estimate:.2f} minutes for {plan.steps:,} steps{again})"
    )


def epoch_start(plan: Plan | None, steps_per_epoch: int, epoch: int) -> int:
    """The step `epoch` starts at (an epoch past the last: the step the run ends at):
    equal epochs, but a plan's last epoch ends at its last re-planned step, and epochs
    given beyond a plan's follow it."""
    start = epoch * steps_per_epoch
    if plan is not None and epoch >= plan.epochs:
        start += plan.total_steps - plan.epochs * steps_per_epoch
    return start


def epoch_of(plan: Plan | None, steps_per_epoch: int, step: int) -> int:
    """The epoch `step` is in (the step an epoch ends at: the next one)."""
    epoch = step // steps_per_epoch
    if plan is not None and epoch >= plan.epochs - 1:  # in or after a re-planned last epoch
        beyond = step - plan.total_steps
        epoch = plan.epochs - 1 if beyond < 0 else plan.epochs + beyond // steps_per_epoch
    return epoch


# The shortest last epoch a re-plan leaves: a first plan timed 12% fast (a 20-minute bfloat16
# run: 291 ms a step timed, 328 run) needs a tenth of an epoch to end in time; half an
# epoch made it end 0.9 minutes late.
LAST_EPOCH_PARTS = 10


def replan(
    plan: Plan, epoch: int, step: int, used_seconds: float, seconds_per_step: float, progress
) -> dict:
    """The re-plan at the end of `epoch` (not the plan's last), at `step`, before its
    validation, with `used_seconds` of the budget gone and steps trained at
    `seconds_per_step`: the last epoch's length that ends the run at the budget's end, at
    least a tenth of an epoch (LAST_EPOCH_PARTS)."""
    left = 60 * plan.minutes - used_seconds - END_SECONDS
    ends_left = plan.epochs - epoch  # this epoch's end and the later ones: validations
    trainable = max(0.0, left - ends_left * plan.validation_seconds)
    shortest = max(1, plan.steps_per_epoch // LAST_EPOCH_PARTS)
    fewest = (plan.epochs - 1) * plan.steps_per_epoch + shortest
    steps = step + int(trainable / seconds_per_step)
    return {
        "epoch": epoch + 1,
        "step": step,
        "steps": max(fewest, min(steps, plan.most_steps or steps)),
        "progress": round(float(progress), 6),
        "seconds_per_step": round(seconds_per_step, 6),
        "used_seconds": round(used_seconds, 3),
    }


class Replanner:
    """A planned run's re-plans: at each epoch's end but the last, the one recorded for it
    or, if none is and the budget holds, one made from this process's steps and clock,
    recorded, and set."""

    def __init__(self, trainer, planned_now: bool):
        self.trainer = trainer
        plan, step = Plan.from_dict(trainer.config.plan), int(trainer.step)
        before = [again for again in plan.replans if again["step"] <= step]
        if planned_now or not step:  # the budget's clock: since the process started
            self.used, self.clock = 0.0, trainer.started
        else:  # resumed: the budget as used up to the checkpoint (as last recorded)
            since = before[-1] if before else {
                "step": plan.measured_steps, "used_seconds": plan.spent_seconds,
                "seconds_per_step": plan.seconds_per_step,
            }  # fmt: skip
            self.used = since["used_seconds"]
            self.used += (step - since["step"]) * since["seconds_per_step"]
            self.clock = time.perf_counter()
        self.seconds, self.steps = 0.0, 0  # trained in this process, as the loop timed it
        trainer.schedule.set(plan, step)
        # The guard (GUARD x the budget) stops a run that keeps its own time: planned in
        # this process, or with re-plans still to make. One whose steps are all recorded
        # (resumed after its last re-plan, or given a whole plan) trains them, whatever the
        # clock says, so that it ends as the run it repeats did.
        self.keeps_time = planned_now or len(plan.replans) < plan.epochs - 1

    def epoch_done(self, epoch: int, seconds: float, steps: int) -> None:
        """At `epoch`'s end, before its validation and checkpoint: re-plan (or follow the
        re-plan recorded for it) and set the schedule from it."""
        self.seconds, self.steps = self.seconds + seconds, self.steps + steps
        trainer = self.trainer
        plan, step = Plan.from_dict(trainer.config.plan), int(trainer.step)
        recorded = any(again["epoch"] == epoch + 1 for again in plan.replans)
        if epoch >= plan.epochs - 1 or recorded or not trainer.config.train.minutes:
            trainer.schedule.set(plan, step)  # (a plan kept with its budget given up: kept)
            return
        last = plan.replans[-1]["seconds_per_step"] if plan.replans else plan.seconds_per_step
        rate = self.seconds / self.steps if self.steps >= 10 else last
        used = self.used + time.perf_counter() - self.clock
        again = replan(plan, epoch, step, used, rate, trainer.schedule.done(step))
        plan = replace(plan, replans=(*plan.replans, again))
        trainer.config.plan = plan.to_dict()
        trainer.folder.save_config(trainer.config)
        trainer.schedule.set(plan, step)
        trainer.log(
            f"Re-planned: {again['steps']:,} steps in all ({rate * 1000:.0f} ms a step so "
            f"far, {used / 60:.1f} of {plan.minutes:g} minutes used)"
        )
