"""The token choice in the graph: the rules' graph forms composed in the pipeline's order.

Each step of the generation loop scores every token (`sampling_scores`: temperature,
top-k / top-p, the seeded noise, never `[UNK]`) and takes the best. The rules with loop
state of their own plug in as `LoopRule`s: the repetition controls carry each row's
recent tokens, the checks on candidates (copy guard, excluded strings) the tail of its
text. `TokenChoice` plugs the rules in use
into a step; the loop carries their states as one tuple without looking inside. The NumPy
form of the same choice is `pipeline.TokenRules`.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from textgen.core.config import MAX_NGRAM, REPETITION_HISTORY, SampleConfig
from textgen.generate.rules.checks import CheckedChoice
from textgen.generate.rules.exclusion import ExcludedStrings, ExclusionCheck
from textgen.generate.rules.inclusion import IncludedTexts, InclusionRule, Owing
from textgen.generate.rules.repetition import Repetition, RepetitionControls, push_history
from textgen.generate.rules.temperature import Temperature
from textgen.generate.rules.truncation import Truncation


def sampling_scores(logits, inverse_t, top_k, top_p, noise, filtering, adjust=None) -> tf.Tensor:
    """(batch, vocab) scores whose argmax is each row's next token.

    `inverse_t` is `Temperature.graph(temperature)` and `noise` this step's
    `SeededDraw.graph(SeededDraw.noise(...), temperature)` (batch, vocab), both prepared
    once per loop; greedy rows take the argmax, `[UNK]` is never chosen (-inf).
    `filtering` (a Python bool, or `Truncation.graph_in_use`'s scalar tensor decided once
    per loop, then checked each step) applies top-k / top-p; `adjust` (or None) changes
    the scaled, truncated scores before the noise (the included texts' placement).
    """
    scaled = logits * inverse_t
    if isinstance(filtering, tf.Tensor):  # decided in the graph, once per step
        scaled = tf.cond(filtering, lambda: Truncation.graph(scaled, top_k, top_p), lambda: scaled)
    elif filtering:
        scaled = Truncation.graph(scaled, top_k, top_p)
    if adjust is not None:
        scaled = adjust(scaled)
    return scaled + noise


class Sampling(NamedTuple):
    """Per-row sampling settings of one generation, as its loops use them."""

    temperature: tf.Tensor  # (batch,) float32, 0 greedy
    top_k: tf.Tensor  # (batch,) int32, 0 off
    top_p: tf.Tensor  # (batch,) float32, 1 off
    seeds: tf.Tensor  # (batch, 2) int64: [seed, stream]
    filtering: tf.Tensor  # scalar bool: does any row use top-k or top-p?
    controls: RepetitionControls  # (batch,) each: penalty, window, n-gram
    repeating: tf.Tensor  # scalar bool: does any row use a repetition control?
    excluded: ExcludedStrings  # each row's excluded strings
    included: IncludedTexts  # each row's included texts

    @classmethod
    def of_request(
        cls, defaults: SampleConfig, temperature, top_k, top_p, seeds, controls, exclude=None,
        included: IncludedTexts | None = None,
    ):  # fmt: skip
        """A request's row settings made safe: a negative value (`settings.UNSET`) or a
        top_p outside (0, 1] is the run's default; a repetition_penalty of 0 (or NaN)
        or a no_repeat_ngram above `MAX_NGRAM` is off; a repetition_window above
        `REPETITION_HISTORY` is `REPETITION_HISTORY`. `exclude` (batch,) strings: a
        row's excluded texts, one a line (None: none); `included`: its included texts
        (None: none). A served request never fails."""
        d = defaults
        temperature = tf.where(temperature < 0, d.temperature, temperature)
        top_k = tf.where(top_k < 0, d.top_k, top_k)
        positive = tf.bitcast(top_p, tf.int32) > 0  # subnormals too, which compare as 0
        top_p = tf.where(positive & (top_p <= 1), top_p, d.top_p)
        penalty, window, ngram = controls
        penalty = tf.where(penalty < 0, d.repetition_penalty, penalty)
        penalty = tf.where(penalty > 0, penalty, 1.0)  # 0 and NaN: off
        window = tf.minimum(tf.where(window < 0, d.repetition_window, window), REPETITION_HISTORY)
        ngram = tf.where(ngram < 0, d.no_repeat_ngram, ngram)
        ngram = tf.where(ngram <= MAX_NGRAM, ngram, 0)
        controls = RepetitionControls.of(penalty, window, ngram)
        filtering = Truncation.graph_in_use(top_k, top_p)
        if exclude is None:
            exclude = tf.fill(tf.shape(temperature), "")
        if included is None:
            included = IncludedTexts.none(tf.shape(temperature)[0])
        return cls(
            temperature, top_k, top_p, seeds, filtering, controls, controls.in_use(),
            ExcludedStrings.of(exclude), included,
        )  # fmt: skip


class LoopRule:
    """A rule of the graph's token choice with loop state of its own (a tuple of tensors)."""

    def adjust(self, logits: tf.Tensor, state: tuple) -> tf.Tensor:
        """The logits (batch, vocab) as the rule lets them be scored."""
        return logits

    def advance(self, state: tuple, ids: tf.Tensor, allowed: tf.Tensor, step) -> tuple:
        """The rule's state after each row took token `ids` (batch,)."""
        return state


class RepetitionRule(LoopRule):
    """The repetition controls (`Repetition`) over each row's last `REPETITION_HISTORY`
    tokens, its state: (history,)."""

    def __init__(self, controls: RepetitionControls):
        self.controls = controls

    def adjust(self, logits, state):
        return Repetition.graph(logits, state[0], self.controls)

    def advance(self, state, ids, allowed, step):
        return (push_history(state[0], ids),)


class TokenChoice:
    """One step's choice of each row's next token, with the rules in use plugged in.

    `filtering` is a Python bool (top-k / top-p on or off for the whole loop) or a
    scalar tensor decided each step; `repeating` plugs in the repetition controls; the
    checks on candidates are the copy `guard` (if any) and, if `excluding`, the excluded
    strings, over the tokens' texts `pieces` (`textgen.generate.pieces`); `including`
    plugs in the included texts (`rules.inclusion`: placed before the noise, their other
    tokens and the deadline's forced), each row's where it includes any.
    """

    def __init__(
        self, sampling: Sampling, filtering, repeating: bool, excluding: bool, guard, pieces,
        size: int, unwritten: tf.Tensor | None = None, including: bool = False,
    ):  # fmt: skip
        self.sampling, self.filtering, self.size = sampling, filtering, size
        self.unwritten = unwritten  # (vocab,) -inf on tokens never written (rules.unwritten)
        self.inverse_t = Temperature.graph(sampling.temperature)  # (batch, 1)
        self.repetition = RepetitionRule(sampling.controls) if repeating else None
        self.checked = None
        checks = [] if guard is None else [guard]
        if excluding:
            checks.append(ExclusionCheck(pieces, sampling.excluded))
        if checks:
            self.checked = CheckedChoice(checks, pieces, size)
        self.rules = [rule for rule in (self.repetition, self.checked) if rule is not None]
        self.inclusion = InclusionRule(sampling.included, pieces) if including else None

    def start(self, history, tail, prev, owing: Owing | None = None) -> tuple:
        """The rules' states at a chunk's start (history (batch, REPETITION_HISTORY),
        the checks' tail, each row's previous token, the included texts' `owing`)."""
        states = []
        if self.repetition:
            states.append((history,))
        if self.checked:
            states.append((tail, prev, tf.fill(tf.shape(prev), self.size)))
        if self.inclusion:
            states.append((owing, prev))
        return tuple(states)

    def finish(self, states: tuple, history, tail, prev, owing=None) -> tuple:
        """(history, tail, ended_at, owing) after a chunk (unchanged where a rule is off)."""
        states = list(states)
        if self.repetition:
            (history,) = states.pop(0)
        ended_at = tf.fill(tf.shape(prev), self.size)
        if self.checked:
            tail, _, ended_at = states.pop(0)
        if self.inclusion:
            owing, _ = states.pop(0)
        return history, tail, ended_at, owing

    def __call__(self, logits, noise, states: tuple, step) -> tuple[tf.Tensor, tuple]:
        """Each row's token (batch,) from `logits` and this step's `noise`, and the rules'
        states after it; `step()` is the step's index (built only if a rule needs it)."""
        if self.unwritten is not None:
            logits = logits + self.unwritten
        for rule, state in zip(self.rules, states):
            logits = rule.adjust(logits, state)
        s, owing = self.sampling, None
        if self.inclusion:  # a text begun, or the deadline, forces the token
            owing, prev = states[-1]
            forced_ids, forced, owing = self.inclusion.forced(owing, prev)

        def place_texts(scaled):  # the included texts' first tokens, before the noise
            nonlocal owing
            scaled, owing = self.inclusion.adjust(scaled, owing, prev, forced)
            return scaled

        adjust = place_texts if self.inclusion else None
        scores = sampling_scores(
            logits, self.inverse_t, s.top_k, s.top_p, noise, self.filtering, adjust
        )  # fmt: skip
        if self.checked:
            ids, allowed = self.checked.choose(scores, states[len(self.rules) - 1])
        else:
            ids, allowed = tf.argmax(scores, axis=-1, output_type=tf.int32), None
        if self.inclusion:
            ids = tf.where(forced, forced_ids, ids)
            allowed = None if allowed is None else allowed | forced
        after = [rule.advance(st, ids, allowed, step) for rule, st in zip(self.rules, states)]
        if self.inclusion:
            after.append((self.inclusion.advance(owing, prev, ids, forced), ids))
        return ids, tuple(after)
