"""Sizing a budget run on this machine: candidate sizes timed, the rule asked, the answer
applied (`textgen train --minutes N` with no preset and no model flags; the rule:
`textgen.training.sizing`).

Each candidate is timed as the planner times a run (`textgen.training.plan`): real
training steps of a trainer built for it (in a scratch folder), after untimed ones that
compile. Timing every size would eat a short budget, so the rule is asked with the
sizes not yet timed scaled from the timed ones, and the sizes it picks and weighs are
timed in turn until the choice and its neighbours are all measured (three or four
sizes, about 2 seconds each for a small one).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field

import keras

from textgen.core.config import RunConfig
from textgen.core.errors import ConfigError
from textgen.data.corpus import load_corpus
from textgen.data.levels import level_class
from textgen.model.sizes import available_memory_bytes, peak_memory_bytes, training_memory_bytes
from textgen.runs.folder import RunFolder
from textgen.training import sizing
from textgen.training.plan import (
    END_SECONDS,
    MOST_EPOCHS,
    budget_validation_tokens,
    epoch_end_seconds,
    make_plan,
    plan_epochs,
    plan_lines,
    validation_tokens,
)

LN2 = math.log(2)
UNTIMED, TIMED = 3, 5  # steps of each candidate: the first compiles, the next warm up
# ... the timed ones stop once they took this long (2 at least): a word step with a
# 10,000-wide softmax takes 0.2-0.6 s, and four candidates timed 5 steps each took 19 s
# of a 2-minute budget.
TIMING_SECONDS = 1.0
FIRST = (128, 256)  # the sizes timed first
MOST_TIMED = 4  # sizes timed at most; the rest scaled from them
PLANNER_STEPS = 13  # the steps the planner times again (textgen.training.plan)
# A validation batch's time as a share of a training step's: 0.78 on the grid's 10 MB
# corpus (2 x GRU(256), 312 batches in 24.2 s at 99 ms a step).
VALIDATION_SHARE = 0.8
EPOCH_END_SECONDS = 1.5  # an epoch's sample and checkpoint, about


@dataclass
class Sizing:
    """The rule's answer for one run, as recorded in its config (`RunConfig.sizing`)."""

    chosen: sizing.Option
    runners_up: list[sizing.Option]
    options: list[sizing.Option] = field(default_factory=list)
    corpus_tokens: int = 0
    seconds: float = 0.0  # the training seconds the options were weighed for

    def to_dict(self) -> dict:
        def row(option):
            return {**option.__dict__, "regularisation": option.regularisation}

        return {
            "chosen": self.chosen.units, "steps": self.chosen.steps,
            "passes": round(self.chosen.passes, 2), "corpus_tokens": self.corpus_tokens,
            "seconds": round(self.seconds, 1), "options": [row(o) for o in self.options],
        }  # fmt: skip


@dataclass(frozen=True)
class Timing:
    """A config's training as timed here."""

    seconds_per_step: float
    epoch_end_seconds: float  # validation, sample and checkpoint (0: not timed)
    peak_bytes: int | None  # resident memory at the peak while timing (None: unknown)


def time_training(config: RunConfig, prepared, epoch_end: bool = False) -> Timing:
    """`config`'s training timed here: a trainer built in a scratch folder, `UNTIMED`
    steps run, up to `TIMED` timed (each waited for, as training does; `timed_steps`), and
    with `epoch_end` an epoch's end (as the planner times it); the memory's peak counted
    from the start."""
    from textgen.training.trainer import Trainer

    peak_memory_bytes(reset=True)
    with tempfile.TemporaryDirectory(prefix="textgen-timing-") as scratch:
        trainer = Trainer(config, RunFolder(scratch), prepared, log=lambda _: None, verbose=0)
        for _ in range(UNTIMED):
            float(trainer._train_step(trainer.iterator))
        started, steps = time.perf_counter(), 0
        while steps < timed_steps((time.perf_counter() - started) / max(1, steps)):
            float(trainer._train_step(trainer.iterator))
            steps += 1
        seconds = (time.perf_counter() - started) / steps
        ends = epoch_end_seconds(trainer) if epoch_end else 0.0
        peak = peak_memory_bytes()
    del trainer
    keras.backend.clear_session()
    return Timing(seconds, ends, peak)


def timed_steps(seconds_per_step: float) -> int:
    """Steps timed for a step of `seconds_per_step` (0: not yet known): `TIMED`, or as
    many as take `TIMING_SECONDS`, 2 at least."""
    if seconds_per_step <= 0:
        return TIMED
    return max(2, min(TIMED, math.ceil(TIMING_SECONDS / seconds_per_step)))


def dry_run_lines(config: RunConfig, prepared, started: float) -> list[str]:
    """What `textgen train --dry-run` prints after any sizing: the plan the run would
    follow (its steps and an epoch's end timed here) and its memory at the peak."""
    timing = time_training(config, prepared, epoch_end=True)
    train = config.train
    windows = prepared.num_windows // train.batch_size
    memory = timing.peak_bytes or 0
    if train.minutes:
        plan = make_plan(
            train.minutes, time.perf_counter() - started, timing.seconds_per_step,
            timing.epoch_end_seconds, 0, windows, train.max_steps,
        )  # fmt: skip
        lines = plan_lines(plan, memory, time.time())
    else:
        per_epoch = train.steps_per_epoch or windows
        seconds = train.epochs * (per_epoch * timing.seconds_per_step + timing.epoch_end_seconds)
        lines = [
            f"Plan: {train.epochs} epochs of {per_epoch:,} steps "
            f"({timing.seconds_per_step * 1000:.0f} ms a step as measured), "
            f"{train.epochs * per_epoch / max(1, windows):.1f} passes over the text, about "
            f"{seconds / 60:.1f} minutes",
            f"Memory at the peak about {memory / 2**20:,.0f} MiB (as measured while timing)",
        ]
    return [*lines, "Dry run: nothing trained, no run folder written"]


def scaled(units: int, timed: dict[int, float]) -> float:
    """A step time for `units` from the timed sizes: along the log-log line through the
    two timed sizes nearest it."""
    if units in timed:
        return timed[units]
    near = sorted(timed, key=lambda u: abs(math.log(u / units)))[:2]
    if len(near) == 1:
        return timed[near[0]] * (units / near[0]) ** 2
    (a, sa), (b, sb) = sorted((u, timed[u]) for u in near)
    slope = math.log(sb / sa) / math.log(b / a)
    return sa * (units / a) ** max(0.5, slope)


def recipe(config: RunConfig, given: dict[str, dict]) -> RunConfig:
    """`config` with the rule's recipe (batch, window, cell...; its size not yet chosen),
    what `given` sets kept: what the corpus is checked against before sizing."""
    return _candidate(config, config.model.units if _fixed(given, "units") else FIRST[0], given)


def _fixed(given: dict[str, dict], key: str) -> bool:
    return any(key in values for values in given.values())


def size_run(config: RunConfig, prepared, given: dict[str, dict], started: float, log) -> RunConfig:
    """`config` with the rule's size and regularisation (what `given` sets, by section,
    kept) for the budget left after `started`, its sizing recorded and logged; a
    ConfigError if the budget is too short for any size."""
    sizes = (config.model.units,) if _fixed(given, "units") else sizing.CANDIDATE_UNITS
    candidates = {u: _candidate(config, u, given) for u in sizes}
    candidates = {u: c for u, c in candidates.items() if _fits(c, prepared)} or candidates
    units = tuple(candidates)
    tokens = len(prepared.train_ids)
    timed: dict[int, float] = {}
    log(f"Sizing the model for {config.train.minutes:g} minutes: timing candidate sizes ...")
    while True:
        left = _seconds_left(config, started, timed)
        options = [
            sizing.weigh(
                c.model, scaled(u, timed) if timed else 1.0, u in timed,
                _training_seconds(c, prepared, left, scaled(u, timed) if timed else 1.0),
                tokens, prepared.vocab.size, config.data.level,
                c.train.batch_size * c.data.seq_len,
            )
            for u, c in candidates.items()
        ]  # fmt: skip
        chosen = sizing.choose(options)
        wanted = [chosen, *sizing.runners_up(options, chosen)] if timed else []
        untimed = [o.units for o in wanted if o.units not in timed]
        if not timed:
            untimed = [u for u in FIRST if u in units] or [units[0]]
        untimed = untimed[: MOST_TIMED - len(timed)]
        if not untimed:
            break
        for u in untimed:
            timed[u] = time_training(candidates[u], prepared).seconds_per_step
    full = next(o for o in options if o.units == chosen.units)  # before the text's cut
    if full.steps < sizing.FEWEST_STEPS:
        raise _too_short(config, chosen, started)
    seconds = chosen.steps * chosen.seconds_per_step
    result = Sizing(chosen, sizing.runners_up(options, chosen), options, tokens, seconds)
    cut = chosen.steps < full.steps  # the text limits the run
    needed = _minutes_needed(config.train.minutes, chosen, full) if cut else None
    epochs = plan_epochs(60 * (needed or config.train.minutes) - (time.perf_counter() - started))
    config = _candidate(config, chosen.units, given, chosen, epochs)
    if cut and not _fixed(given, "max_steps"):
        config.train.max_steps = max(chosen.steps, PLANNER_STEPS + 1)  # the planner's included
    config.sizing = result.to_dict()
    for line in sizing.choice_lines(result.chosen, result.runners_up, config, needed):
        log(line)
    log(_expected_line(config, needed or config.train.minutes))
    return config


def _expected_line(config: RunConfig, minutes: float) -> str:
    """The held-out loss to expect, as a range from what xz makes of the text (recorded),
    where the level reads every character (a word run leaves [UNK]'s letters unscored)."""
    if not level_class(config.data.level).reads_every_character:
        return (
            f"Expected held-out loss: not estimated for {config.data.level}s (a token outside "
            "the vocabulary reads as [UNK], its letters unscored)"
        )
    xz = sizing.xz_bits_per_character(_sample(config))
    low, high = sizing.expected_bits(xz, minutes)
    config.sizing["expected_bits"] = [round(low, 3), round(high, 3)]
    share = "-".join(f"{x:.2f}" for x in sizing.XZ_SHARE_AT_2_MINUTES)
    return (
        f"Expected held-out loss: {low:.2f}-{high:.2f} bits per character ({low * LN2:.2f}-"
        f"{high * LN2:.2f} nats; xz makes {xz:.2f} of this text, the grid's 2-minute runs "
        f"{share} of xz's)"
    )


def _too_short(config: RunConfig, chosen: sizing.Option, started: float) -> ConfigError:
    """The error of a budget too short for `sizing.FEWEST_STEPS` steps of any size."""
    spent = time.perf_counter() - started  # start-up and sizing: about as long again
    steps = 2 * (sizing.FEWEST_STEPS + PLANNER_STEPS)  # the steps and their validations
    needed = max(60 * config.train.minutes, 2 * spent) + steps * chosen.seconds_per_step
    minutes = math.ceil(needed / 6) / 10
    return ConfigError(
        f"--minutes {config.train.minutes:g} is too short to train on this machine: "
        f"2 x {config.model.cell.upper()}({chosen.units}) would make {chosen.steps} steps "
        f"(at least {sizing.FEWEST_STEPS}); give --minutes {minutes:g} or more"
    )


def _minutes_needed(minutes: float, chosen: sizing.Option, full: sizing.Option) -> float:
    """The budget `chosen` needs: `minutes`, less the steps the text cut from `full` (its
    size as the budget alone would train it), to the tenth of a minute above."""
    unused = (full.steps - chosen.steps) * chosen.seconds_per_step
    return min(minutes, math.ceil((60 * minutes - unused) / 6) / 10)


def _candidate(config, units, given, option=None, epochs=MOST_EPOCHS) -> RunConfig:
    """`config` sized to `units` (with `option`'s regularisation if given), what the user
    gave kept."""
    option = option or sizing.Option(units, 1.0, False, 0, 0.0, 1, 0, 1, config.data.level)
    sections = sizing.settings_of(option, epochs)
    for section, values in sections.items():
        for key in given.get(section, {}):
            values.pop(key, None)
    return config.with_overrides(**sections)


def _sample(config: RunConfig) -> str:
    """The training text's first `XZ_SAMPLE_CHARACTERS` characters."""
    parts, size = [], 0
    for chunk in load_corpus(config.data).train_chunks():
        parts.append(chunk)
        size += len(chunk)
        if size >= sizing.XZ_SAMPLE_CHARACTERS:
            break
    return "".join(parts)[: sizing.XZ_SAMPLE_CHARACTERS]


def _seconds_left(config, started: float, timed: dict[int, float]) -> float:
    """The budget's seconds left after the timing still to come (two more sizes, as long
    as the slowest timed) and the planner's own timing."""
    slowest = max(timed.values(), default=0.0)
    timing = 2 * (UNTIMED + timed_steps(slowest)) + PLANNER_STEPS
    spent = time.perf_counter() - started + timing * slowest
    return max(0.0, 60 * config.train.minutes - spent - END_SECONDS)


def _training_seconds(config, prepared, left: float, seconds_per_step: float) -> float:
    """Of `left` seconds, those a candidate trains in: its epochs' ends taken off (the
    validation read at `VALIDATION_SHARE` of a step's time a batch, a sample and a
    checkpoint)."""
    train, window = config.train, config.data.seq_len * config.train.batch_size
    per_token, available = seconds_per_step * VALIDATION_SHARE / window, len(prepared.val_ids) - 1
    if train.val_tokens is None:  # as the planner will choose them
        tokens = budget_validation_tokens(left, per_token, available)
    else:
        tokens = validation_tokens(train, available)
    validation = math.ceil(max(0, tokens) / window) * window * per_token
    return max(0.0, left - plan_epochs(left) * (validation + EPOCH_END_SECONDS))


def _fits(config: RunConfig, prepared) -> bool:
    available = available_memory_bytes()
    needed = training_memory_bytes(
        prepared.vocab.size, config.model, config.train.batch_size, config.data.seq_len
    )
    return not available or needed <= available
