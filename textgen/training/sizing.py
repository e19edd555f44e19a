"""The sizing rule: from a corpus, a budget and this machine's step times to a run's size.

`textgen train --minutes N` with no preset and no model flags asks this module which
model to train (`textgen.training.auto_size` times the candidates and applies the answer).
The rule is compute-optimal training's, for small recurrent models on a CPU:

- **Size.** Each candidate is 2 x GRU(units) with the `quick` preset's recipe (batch 32,
  windows of 100, a cosine learning rate, skip connections). In the budget it trains
  `steps = seconds / seconds_per_step` steps and reads `steps x 32 x 100` tokens. Too
  large a model reads too few tokens per parameter to learn what its size could; too
  small a one learns less than the budget allows: the rule picks the largest candidate
  that reads `TOKENS_PER_PARAMETER` tokens per parameter in at least
  `FEWEST_CHOSEN_STEPS` steps, at the level's learning rate (`learning_rate`: higher
  for words).
- **Parameters** are the recurrent layers' (`recurrent_parameter_count`): the embedding
  and the logits layer grow with the vocabulary, not with what the model can learn, as
  compute-optimal scaling counts non-embedding parameters (Kaplan et al., 2020). With
  characters they are 3-10% of the model, with 2,000 subword pieces 50-90%: counted, they
  made every subword size look too big for its budget and regularised runs that lose by
  it (Tiny Shakespeare, 2 minutes: 2 x GRU(96) regularised 3.828 nats a piece, 2 x
  GRU(128) without 3.741).
- **More budget than text.** If that size would read the text `DATA_BOUND_PASSES`
  times or more, the text (not the budget) is what limits the run: no size reads it more
  than `DATA_BOUND_MOST_PASSES` times (the run stops there, early: more passes learn it
  by heart), and a larger model, regularised, learns more from the same text up to an
  exposure of `MOST_EXPOSURE`: the rule takes the largest size that still reads it
  `DATA_BOUND_PASSES` times within that.
- **Regularisation** follows the exposure, passes x parameters / corpus tokens (how many
  times over the model could have stored the text it read): none below
  `FULL_EXPOSURE`, variational dropout 0.3 and weight decay 0.2 from there (the
  `shakespeare` preset's), the last 2 epochs' weights averaged when there are 6 or more.
  Words are regularised by their passes instead (`WORD_FULL_PASSES`): what a word model
  learns by heart sits in its embedding and logits layer, which the vocabulary sizes.

Where the constants came from: the grid of docs/experiments.md, "Sizing a run for its
budget" (data: docs/data/sizing.jsonl), 2-minute runs of 7 configurations on each of
three corpora (100 KB of technical prose, Tiny Shakespeare's 1 MB, 10 MB of Python
source) on a 2-core AMD EPYC (AVX-512), 10-minute runs on the first two, and the
presets' 5-, 10- and 20-minute runs; for subword pieces, 2-minute grids of 8 and 10
configurations on Tiny Shakespeare and the 100 KB of prose, which the same rule, counting
recurrent parameters, meets; for words, grids of 2 and 5 minutes on Tiny Shakespeare and
2 minutes on the pydoc topics (465 KB), which set their learning rate and regularisation
(the grid's test holds each level to its grids).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from textgen.core.config import ModelConfig
from textgen.model.sizes import parameter_count, recurrent_parameter_count

CANDIDATE_UNITS = (64, 96, 128, 192, 256, 384, 512, 768, 1024)
# The quick preset's (docs/experiments.md, "Presets"); the rule sizing for windows of 50
# or 200, batches of 16 or 64 scored worse on Tiny Shakespeare and the 100 KB of prose at
# 2 minutes (16: within 0.4%; "Windows and batches").
BATCH, WINDOW = 32, 100
# Tokens read per (recurrent) parameter the chosen size gets at least. On Tiny Shakespeare
# at 2 minutes 2 x GRU(256) read 4.9 per parameter and scored best (1.542); 2 x GRU(384)
# read 1.4 and scored 1.641, worse than 2 x GRU(128)'s 1.555 at 36. The shakespeare
# preset's 2 x GRU(512) reads 3.7 in its 20 minutes.
TOKENS_PER_PARAMETER = 3.0
# Optimizer steps the chosen size gets at least: early on, updates count (the quick
# preset's batch 32 x 1000 steps beat 64 x 800). On the 10 MB of Python source at 2
# minutes 2 x GRU(128) trained 1,740 steps (1.426), 2 x GRU(192) 882 (1.423), 2 x GRU(256)
# 666 (1.496); with validation cut to 5% of the budget, 192 1,148 (best, 1.375), 256 1,014
# (1.382), 384 540 (1.566); on Tiny Shakespeare 2 x GRU(256) 1,050 (best), 384 614 (1.641).
FEWEST_CHOSEN_STEPS = 1000
# A size that would read the text this many times has more budget than text: the rule
# then takes the largest size that still reads it this often, fully regularised. On the
# 100 KB corpus at 2 minutes 2 x GRU(384) (24 passes) scored 1.359, 2 x GRU(256) (41
# passes) 1.403, 2 x GRU(128) (86 passes) 1.390.
DATA_BOUND_PASSES = 20.0
# ... in at least this many steps: 2 x GRU(384)'s 650 there scored best, 2 x GRU(512)'s 418
# (15 passes) 1.432.
DATA_BOUND_FEWEST_STEPS = 500
# ... and no size reads the text more than DATA_BOUND_MOST_PASSES times (the run ends
# there, before its budget), nor is chosen if its exposure (below) at that would pass
# MOST_EXPOSURE. At 10 minutes on the 100 KB corpus the first rule chose 2 x GRU(1024),
# regularised (720 steps, 27 passes, exposure 3,000): its best held-out loss, 1.411 at
# pass 8.5 (exposure 950), then worse every epoch to 1.860, behind the 2-minute run's
# 1.345 (2 x GRU(384), 21 passes, exposure 370). Cut to 25 passes: 384 1.360, 256 1.369,
# 512 (exposure 780) 1.471, each best at its first of two epochs and worse at its end
# (the runs that read it 21 and 24 times were best at their ends: 1.345, 1.359).
DATA_BOUND_MOST_PASSES = 21.0
MOST_EXPOSURE = 500.0
# Exposure: passes x (recurrent) parameters / corpus tokens, how many times over the model
# could have stored the text it read (the figures below counted all parameters: with
# characters 3-10% more). From FULL_EXPOSURE on the run is regularised: dropout 0.1 and
# weight decay 0.1 scored worse than none at 1.5-2.5 (Tiny Shakespeare, 2 minutes: 1.580
# against 1.554, 1.590 against 1.542); the full recipe is the shakespeare preset's, best
# at its 23 (1.451 against 1.467 lighter) and on the 100 KB corpus at 170-400 (1.390
# against 2.073 without).
FULL_EXPOSURE = 8.0
# Words, at their higher rate, unregularised, learn the text by heart after 4-5 passes of
# a longer run: on Tiny Shakespeare at 5 minutes 2 x GRU(64) was best after its first
# epoch (4 passes, 4.433 nats a word) and ended at 4.777 (16.1 passes), 128 best at 4.6
# passes and ended at 4.478 (9.3), 192 best at 5.1 (6.8); the 2-minute runs, whose rate
# falls sooner, gained to their ends (64: 6.8 passes, 96: 5.2, 128: 3.8).
WORD_FULL_PASSES = 7.0
REGULARISATION = {
    "none": {"dropout": 0.0, "variational_dropout": False, "weight_decay": 0.0},
    "full": {"dropout": 0.3, "variational_dropout": True, "weight_decay": 0.2},
}
FEWEST_STEPS = 100  # a budget that buys fewer steps for every size is refused
AVERAGE_FROM_EPOCHS = 6  # a regularised run of this many epochs averages its last 2


@dataclass(frozen=True)
class Option:
    """One candidate size as the rule weighed it."""

    units: int
    seconds_per_step: float
    measured: bool  # timed on this machine, else scaled from the timed ones
    steps: int
    passes: float
    parameters: int
    corpus_tokens: int
    recurrent: int  # the recurrent layers' parameters: what the rule counts
    level: str  # the tokens': char, word or subword

    @property
    def tokens_per_parameter(self) -> float:
        return self.passes * self.corpus_tokens / self.recurrent

    @property
    def exposure(self) -> float:
        return self.passes * self.recurrent / max(1, self.corpus_tokens)

    @property
    def regularisation(self) -> str:
        if self.level == "word":
            return "full" if self.passes >= WORD_FULL_PASSES else "none"
        return "full" if self.exposure >= FULL_EXPOSURE else "none"


def embedding_dim(units: int) -> int:
    """64 up to 192 units, then 128 (with words, 64 and 128 scored alike at 128 units:
    4.371 and 4.368 nats a word)."""
    return 64 if units <= 192 else 128


# Words learn fastest at a higher rate: on Tiny Shakespeare at 2 minutes 2 x GRU(128)
# scored 4.669 nats a word at 5e-3, 4.368 at 1e-2, 4.427 at 2e-2, 2 x GRU(64) 4.642 and
# 4.444; on the pydoc topics, regularised, 2 x GRU(128) 3.187 and 3.092. But 2 x GRU(256)
# scored 4.604 at 4e-3, 4.541 at 6e-3 and 5.034 at 1e-2 (5.90 after its first epoch).
WORD_LEARNING_RATE, WORD_RATE_UP_TO = 1e-2, 192


def learning_rate(units: int, level: str) -> float:
    """The presets' peak rates: 5e-3 for `quick`'s 128 units, 3e-3 for `shakespeare`'s 512;
    with words `WORD_LEARNING_RATE` up to `WORD_RATE_UP_TO` units."""
    if level == "word" and units <= WORD_RATE_UP_TO:
        return WORD_LEARNING_RATE
    return 5e-3 if units <= 192 else 4e-3 if units <= 256 else 3e-3


def weigh(
    model: ModelConfig, seconds_per_step: float, measured: bool, seconds: float,
    corpus_tokens: int, vocab_size: int, level: str, tokens_per_step: int = BATCH * WINDOW,
) -> Option:  # fmt: skip
    """What `model` would make of `seconds` of training on `corpus_tokens` tokens of
    `level`."""
    steps = max(0, int(seconds / seconds_per_step))
    passes = steps * tokens_per_step / max(1, corpus_tokens)
    parameters, recurrent = parameter_count(vocab_size, model), recurrent_parameter_count(model)
    return Option(
        model.units, seconds_per_step, measured, steps, passes, parameters, corpus_tokens,
        recurrent, level,
    )  # fmt: skip


def teachable(option: Option) -> bool:
    """The budget teaches `option` what its size can learn: enough tokens per parameter,
    enough steps."""
    return (
        option.tokens_per_parameter >= TOKENS_PER_PARAMETER and option.steps >= FEWEST_CHOSEN_STEPS
    )


def choose(options: list[Option]) -> Option:
    """The largest teachable option (the smallest if none is); if that one would read the
    text `DATA_BOUND_PASSES` times or more, each size reads it at most
    `DATA_BOUND_MOST_PASSES` times (`read_at_most`), and of those exposed at most
    `MOST_EXPOSURE` the largest that still reads it `DATA_BOUND_PASSES` times in
    `DATA_BOUND_FEWEST_STEPS` steps is chosen (else the largest that reads it that often
    in fewer, else the smallest)."""
    ranked = sorted(options, key=lambda option: option.units)
    fitting = [o for o in ranked if teachable(o)]
    chosen = fitting[-1] if fitting else ranked[0]
    if chosen.passes < DATA_BOUND_PASSES:
        return chosen
    capped = [read_at_most(o, DATA_BOUND_MOST_PASSES) for o in ranked]
    modest = [o for o in capped if o.exposure <= MOST_EXPOSURE] or capped[:1]
    # (a size cut to DATA_BOUND_MOST_PASSES reads it that often, to a step)
    reading = [o for o in modest if o.passes >= 0.99 * DATA_BOUND_PASSES] or modest[:1]
    kept = [o for o in reading if o.steps >= DATA_BOUND_FEWEST_STEPS]
    return (kept or reading)[-1]


def read_at_most(option: Option, passes: float) -> Option:
    """`option` with its steps cut to read the text at most `passes` times."""
    if option.passes <= passes:
        return option
    steps = int(option.steps * passes / option.passes)
    return replace(option, steps=steps, passes=option.passes * steps / option.steps)


def runners_up(options: list[Option], chosen: Option) -> list[Option]:
    """The sizes either side of the chosen one."""
    ranked = sorted(options, key=lambda option: option.units)
    at = [option.units for option in ranked].index(chosen.units)
    return ranked[max(0, at - 1) : at] + ranked[at + 1 : at + 2]


def settings_of(option: Option, epochs: int) -> dict[str, dict]:
    """The run settings the rule gives an option, by config section."""
    model = {
        "cell": "gru", "layers": 2, "units": option.units,
        "embedding_dim": embedding_dim(option.units), "memory_span": 0,
        "embedding_init": 0.05, "skip_connections": True,
    }  # fmt: skip
    regularisation = dict(REGULARISATION[option.regularisation])
    model.update(dropout=regularisation.pop("dropout"))
    model.update(variational_dropout=regularisation.pop("variational_dropout"))
    average = 2 if option.regularisation != "none" and epochs >= AVERAGE_FROM_EPOCHS else 0
    train = {
        "batch_size": BATCH, "learning_rate": learning_rate(option.units, option.level),
        "lr_schedule": "cosine", "patience": 0, "average_last": average, **regularisation,
    }  # fmt: skip
    return {"data": {"seq_len": WINDOW}, "model": model, "train": train}


# The held-out bits per character the grid's best run reached, as a share of what xz
# (LZMA, preset 6) makes of the first MB of the training text: 0.85 on Tiny Shakespeare
# (2.224 against 2.622), 0.87 on the 100 KB of prose (1.960 against 2.249), 1.37 on the
# 10 MB of Python source (2.019 against 1.474: xz finds the long repeats of code that a
# model trained for minutes has not learned); and how the share falls with the budget
# (the shakespeare preset's 2-, 10- and 20-minute runs: 0.848, 0.823, 0.797 of xz's).
# Subword pieces (2,000): 0.84 on Tiny Shakespeare (2.203), 0.90 on the 100 KB (2.021).
XZ_SHARE_AT_2_MINUTES = (0.84, 1.37)
XZ_SHARE_PER_TENFOLD_MINUTES = 0.94
XZ_SAMPLE_CHARACTERS = 1_000_000


def expected_bits(xz_bits_per_character: float, minutes: float) -> tuple[float, float]:
    """The held-out bits per character to expect, as a (low, high) range."""
    scale = XZ_SHARE_PER_TENFOLD_MINUTES ** math.log10(max(minutes, 0.1) / 2)
    low, high = XZ_SHARE_AT_2_MINUTES
    return xz_bits_per_character * low * scale, xz_bits_per_character * high * scale


def xz_bits_per_character(text: str) -> float:
    """What xz makes of `text`, in bits per character."""
    import lzma

    return 8 * len(lzma.compress(text.encode("utf-8"), preset=6)) / max(1, len(text))


REGULARISATION_WORDS = {
    "none": "no dropout",
    "full": "variational dropout 0.3, weight decay 0.2",
}


def choice_lines(
    chosen: Option, runners_up: list[Option], config, needed: float | None = None
) -> list[str]:
    """What the plan says about the size before training: the choice and why, the sizes
    either side that it weighed, and, if the text limits the run to fewer steps than the
    budget holds, the minutes it `needed`."""
    model, minutes = config.model, config.train.minutes
    cell = f"{model.layers} x {model.cell.upper()}({model.units})"
    regularisation = REGULARISATION_WORDS[chosen.regularisation]
    if config.train.average_last:
        regularisation += f", the last {config.train.average_last} epochs averaged"
    lines = [
        f"Sized for {minutes:g} minutes: {cell}, {chosen.parameters / 1e6:.2f}M parameters "
        f"({chosen.recurrent / 1e6:.2f}M in its recurrent layers), about {chosen.steps:,} "
        f"steps ({chosen.seconds_per_step * 1000:.0f} ms a step), {chosen.passes:.1f} passes "
        f"over {chosen.corpus_tokens:,} tokens, {chosen.tokens_per_parameter:.1f} tokens read "
        f"per recurrent parameter; {regularisation}"
    ]
    weighed = []
    for option in runners_up:
        capped = read_at_most(option, DATA_BOUND_MOST_PASSES)
        if option.units < chosen.units:
            why = "learns less than the " + ("text" if needed is not None else "budget") + " allows"
        elif chosen.passes >= DATA_BOUND_PASSES and capped.exposure > MOST_EXPOSURE:
            why = "too large for the text: it would learn it by heart"
        elif option.tokens_per_parameter < TOKENS_PER_PARAMETER:
            why = f"under {TOKENS_PER_PARAMETER:g} tokens per recurrent parameter: too few"
        elif option.steps < FEWEST_CHOSEN_STEPS:
            why = f"under {FEWEST_CHOSEN_STEPS:,} steps: too few to learn"
        else:
            why = f"reads the text under {DATA_BOUND_PASSES:g} times"
        timed = "" if option.measured else ", its step time scaled"
        option = capped if needed is not None else option  # as the text's cut reads it
        weighed.append(
            f"GRU({option.units}) {option.parameters / 1e6:.2f}M parameters, "
            f"{option.passes:.1f} passes, {option.tokens_per_parameter:.1f} tokens per "
            f"recurrent parameter ({why}{timed})"
        )  # fmt: skip
    if weighed:
        lines.append("Weighed: " + "; ".join(weighed))
    if needed is not None:
        lines.append(
            f"The text, not the time, limits this run: {DATA_BOUND_MOST_PASSES:g} passes "
            f"over it are all a model of this size learns from (more learn it by heart), "
            f"so it ends after about {needed:g} of the {minutes:g} minutes"
        )
    return lines
