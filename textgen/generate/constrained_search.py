"""Beam search in the graph whose every result holds each included text: the graph form
of `constrained_beams` (dynamic beam allocation), step for step, so the SavedModel's
`beam_search` and the TensorFlow backend find the NumPy samplers' beams.

Each prompt keeps up to `width` hypotheses (rows prompt-major, as `beams.BeamSearch`),
each with its `Owing` (`rules.inclusion`). A step's candidates of a hypothesis are its
forced token (a text begun, or its deadline: that alone) or its 2 x width best tokens
then the first tokens of the texts it owes (where they may start), those the checks
reject left out. Of a prompt's candidates, ranked by total score, each bank (the texts'
tokens written) takes its quota, the slots left go to the best of the rest; the chosen,
ordered by bank (furthest first) then score, either end (the length, or a stop string:
kept only if they hold every text) or go on. A prompt's search ends when `width` have
finished or none goes on.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from textgen.generate.beams import Beams, search_scores
from textgen.generate.rules.exclusion import ExclusionCheck
from textgen.generate.rules.inclusion import IncludedTexts, InclusionRule, Owing
from textgen.generate.rules.repetition import push_history
from textgen.generate.settings import MAX_INCLUDE

_NEG_INF = float("-inf")
_LAST = 1 << 30  # a sort key past every real one


class ConstrainedSearch:
    """`search(...)` over a `Generator`'s network, stop strings, checks and pieces."""

    def __init__(self, generator):
        self.generator = generator
        self.one_step, self.plan = generator.one_step, generator.plan
        self.stops, self.guard = generator.stops, generator.copy_guard
        self.pieces, self.tail_size = generator.pieces, generator.tail_size

    def search(
        self, primed, width, max_new_tokens, controls, repeating, excluded,
        included: IncludedTexts, owing: Owing,
    ) -> Beams:  # fmt: skip
        """Beams of the `primed` prompts: `width` (batch,) hypotheses each, at most
        `max_new_tokens` (batch,) tokens long, each holding every `included` text (none of
        the `excluded`); `owing` what each prompt's completion owes at its start."""
        batch, n = tf.shape(width)[0], tf.reduce_max(width)
        fm = self.plan.feature_major
        spread = lambda x, axis=0: tf.repeat(x, n, axis=axis)  # noqa: E731
        controls = controls.spread(n)
        checks = [] if self.guard is None else [self.guard]
        checks.append(ExclusionCheck(self.pieces, excluded.spread(n)))
        rows_included = _spread(included, n)
        rule = InclusionRule(rows_included, self.pieces)
        weights = self.one_step.read_weights(fm)
        axis = 1 if fm else 0
        state = tf.nest.map_structure(lambda s: spread(s, axis), self.plan.layout(primed.state))
        live = tf.concat([tf.zeros([batch, 1]), tf.fill([batch, n - 1], _NEG_INF)], 1)
        found = _Found.empty(batch, n)
        loop = (
            tf.constant(0), spread(primed.logits), state, spread(primed.history),
            tf.fill([batch * n, self.tail_size], -1), spread(primed.last_ids),
            tf.fill([batch * n], ""), live, tf.zeros([batch, n]),
            tf.nest.map_structure(spread, owing), found, tf.zeros([batch], tf.bool),
        )  # fmt: skip
        total_tokens = tf.reduce_sum(included.lengths, axis=1)  # (batch,) the banks' top

        def body(t, logits, state, history, tail, prev, text, live, live_lp, owing, found, done):
            cand = self._candidates(logits, history, tail, prev, live, live_lp, owing, rule,
                                    controls, repeating, checks, n)  # fmt: skip
            order = _allocated(cand, width, total_tokens, n)  # (batch, n), -1: none
            ended_at = t + 1 >= max_new_tokens  # (batch,) the length reached
            parent, token, text, live, live_lp, owing, found, done = self._kept(
                cand, order, t, ended_at, prev, text, found, done, width
            )  # fmt: skip
            state = tf.nest.map_structure(lambda s: tf.gather(s, parent, axis=axis), state)
            logits, state = self.one_step.step(weights, token, state, fm)
            history = push_history(tf.gather(history, parent), token)
            tail = self.pieces.advance(tf.gather(tail, parent), tf.gather(prev, parent), token)
            return (t + 1, logits, state, history, tail, token, text, live, live_lp, owing,
                    found, done)  # fmt: skip

        def going_on(t, *loop):
            return tf.reduce_any(~loop[-1]) & (t < tf.reduce_max(max_new_tokens))

        found = tf.while_loop(going_on, body, loop)[-2]
        return found.beams(self.generator.finish, width)

    def _kept(self, cand, order, t, ended_at, prev, text, found, done, width) -> tuple:
        """After the `order`ed chosen candidates (`_allocated`): those that end finish if
        they hold every text; those going on, in order, become the next step's rows.
        Returns each row's parent row, token, text, score, log-probability and `Owing`,
        and the `found` and `done` after."""
        batch, n = tf.unstack(tf.shape(order))
        chosen = order >= 0
        per_prompt = tf.shape(cand.total)[1]
        flat = tf.reshape(tf.maximum(order, 0) + tf.range(batch)[:, None] * per_prompt, [-1])
        pick = lambda x: tf.gather(tf.reshape(x, [-1]), flat)  # noqa: E731 (batch x n)
        parent, token = pick(cand.parent), pick(cand.token)
        piece = self.generator.tokenizer.pieces(tf.gather(prev, parent), token)
        grown = tf.strings.join([tf.gather(text, parent), piece])
        after = tf.nest.map_structure(lambda x: tf.gather(x, flat), cand.owing)
        ended = tf.broadcast_to(ended_at[:, None], [batch, n])
        if self.stops:
            ended |= tf.reshape(self.stops.found(grown), [batch, n])
        holds = tf.reshape(~tf.reduce_any(after.owed, axis=1), [batch, n])
        total, log_p = (
            tf.reshape(pick(cand.total), [batch, n]),
            tf.reshape(pick(cand.log_p), [batch, n]),
        )
        texts = tf.reshape(grown, [batch, n])
        found = found.add(chosen & ended & holds, total, log_p, t, texts, width)
        going = chosen & ~ended
        done |= (found.count() >= width) | ~tf.reduce_any(going, axis=1)
        going &= ~done[:, None]
        # the ones going on, in their order, to the front of their prompt's rows
        front = tf.argsort(tf.where(going, tf.range(n)[None, :], _LAST), stable=True)
        rows = tf.reshape(front + tf.range(batch)[:, None] * n, [-1])
        going = tf.gather(going, front, batch_dims=1)
        live = tf.where(going, tf.gather(total, front, batch_dims=1), _NEG_INF)
        live_lp = tf.where(going, tf.gather(log_p, front, batch_dims=1), 0.0)
        owing = tf.nest.map_structure(lambda x: tf.gather(x, rows), after)
        kept = (tf.gather(x, rows) for x in (parent, token, grown))
        return (*kept, live, live_lp, owing, found, done)

    def _candidates(self, logits, history, tail, prev, live, live_lp, owing, rule, controls,
                    repeating, checks, n) -> _Candidates:  # fmt: skip
        """Each live hypothesis's candidates, (rows, 2n + MAX_INCLUDE) each."""
        search, model = search_scores(logits, history, controls, repeating, self.generator)
        forced_ids, forced, owing = rule.forced(owing, prev)
        per_beam = tf.minimum(2 * n, tf.shape(logits)[1])
        _, best = tf.math.top_k(search, per_beam)  # (rows, per_beam), ties: the lower id
        starts = rule.firsts  # owed, where they may start, not already a candidate
        may = owing.owed & ~rule.glues(owing, prev)
        may &= ~tf.reduce_any(starts[:, :, None] == best[:, None, :], axis=2)
        earlier = tf.linalg.band_part(tf.ones([MAX_INCLUDE, MAX_INCLUDE], tf.bool), 0, -1)
        earlier &= ~tf.eye(MAX_INCLUDE, dtype=tf.bool)  # [j, k]: j before k
        same = (starts[:, :, None] == starts[:, None, :]) & may[:, :, None] & earlier[None]
        may &= ~tf.reduce_any(same, axis=1)
        ids = tf.concat([best, starts], axis=1)
        valid = tf.concat([tf.ones_like(best, tf.bool), may], axis=1)
        for check in checks:  # a token a check rejects is not a candidate
            valid &= ~check.rejects(tail, prev, ids)
        first = tf.range(tf.shape(ids)[1])[None, :] == 0
        ids = tf.where(forced[:, None], forced_ids[:, None], ids)
        valid = tf.where(forced[:, None], first, valid)
        value = tf.gather(tf.where(forced[:, None], model, search), ids, batch_dims=1)
        row_live = tf.math.is_finite(tf.reshape(live, [-1]))
        total = tf.reshape(live, [-1])[:, None] + value
        valid &= (tf.math.is_finite(total) | forced[:, None]) & row_live[:, None]
        log_p = tf.reshape(live_lp, [-1])[:, None] + tf.gather(model, ids, batch_dims=1)
        width = tf.shape(ids)[1]
        each = lambda x: tf.repeat(x, width, axis=0)  # noqa: E731 (rows x candidates)
        cand_rule = InclusionRule(_spread(rule.included, width), self.pieces)
        after = cand_rule.advance(
            tf.nest.map_structure(each, owing), each(prev), tf.reshape(ids, [-1]), each(forced)
        )  # fmt: skip
        progress = _progress(after, cand_rule.included)
        batch = tf.shape(live)[0]
        to_prompt = lambda x: tf.reshape(x, [batch, -1])  # noqa: E731 (parent-major)
        parent = tf.repeat(tf.range(tf.shape(ids)[0]), width)
        return _Candidates(
            to_prompt(total), to_prompt(log_p), to_prompt(ids), to_prompt(parent),
            to_prompt(valid), to_prompt(progress), after,
        )  # fmt: skip


class _Candidates(NamedTuple):
    """One step's candidates, (batch, candidates) each, parent-major."""

    total: tf.Tensor  # float32 total search score
    log_p: tf.Tensor  # the model's log-probability of the tokens
    token: tf.Tensor
    parent: tf.Tensor  # its hypothesis's row
    valid: tf.Tensor
    progress: tf.Tensor  # its bank: the texts' tokens written
    owing: Owing  # (batch x candidates) rows, after the token


def _spread(included: IncludedTexts, n) -> IncludedTexts:
    """Each row's texts repeated `n` times."""
    repeat = lambda x: tf.repeat(x, n, axis=0)  # noqa: E731
    return IncludedTexts(
        repeat(included.tokens), repeat(included.lengths), included.strings.spread(n),
        included.including,
    )  # fmt: skip


def _progress(owing: Owing, included: IncludedTexts) -> tf.Tensor:
    """The tokens written toward the texts: those of the texts held, and of one begun."""
    lengths = included.lengths
    held = tf.reduce_sum(tf.where(~owing.owed & (lengths > 0), lengths, 0), axis=1)
    text = tf.maximum(owing.writing, 0)
    queued = (owing.writing >= 0) & (owing.written < tf.gather(lengths, text, batch_dims=1))
    return held + tf.where(queued, owing.written, 0)


def _allocated(cand: _Candidates, width, total_tokens, n) -> tf.Tensor:
    """(batch, n) the chosen candidates' indices in the order they go on (-1: none): each
    bank's quota of the best by total, the slots left to the best of the rest, then by
    bank (furthest first) and total (`constrained_beams._allocated`)."""
    ranked = tf.argsort(tf.where(cand.valid, -cand.total, float("inf")), stable=True)
    in_rank = lambda x: tf.gather(x, ranked, batch_dims=1)  # noqa: E731
    valid, total, progress = in_rank(cand.valid), in_rank(cand.total), in_rank(cand.progress)
    bank = tf.minimum(progress, total_tokens[:, None])
    banks = tf.reduce_max(total_tokens) + 1
    one_hot = tf.one_hot(bank, banks, dtype=tf.int32) * tf.cast(valid, tf.int32)[..., None]
    before = tf.reduce_sum(tf.math.cumsum(one_hot, axis=1, exclusive=True) * one_hot, axis=2)
    per_bank = width // (total_tokens + 1)
    extra = width - per_bank * (total_tokens + 1)  # one more each to the banks furthest on
    furthest = tf.range(banks)[None, :] > (total_tokens - extra)[:, None]
    quota = per_bank[:, None] + tf.cast(furthest, tf.int32)
    taken = valid & (before < tf.gather(quota, bank, batch_dims=1))
    rest = valid & ~taken
    count = lambda x: tf.math.cumsum(tf.cast(x, tf.int32), axis=1, exclusive=True)  # noqa: E731
    n_taken = tf.reduce_sum(tf.cast(taken, tf.int32), axis=1, keepdims=True)
    chosen = taken | (rest & (count(rest) < width[:, None] - n_taken))
    position = tf.where(taken, count(taken), n_taken + count(rest))
    # the chosen list's order, then by total, then by bank (stable sorts: the last leads)
    order = tf.argsort(tf.where(chosen, position, _LAST), stable=True)
    keys = (tf.where(chosen, -total, float("inf")), tf.where(chosen, -progress, _LAST))
    for key in keys:
        by_key = tf.argsort(tf.gather(key, order, batch_dims=1), stable=True)
        order = tf.gather(order, by_key, batch_dims=1)
    order = order[:, :n]
    index = tf.gather(ranked, order, batch_dims=1)
    return tf.where(tf.gather(chosen, order, batch_dims=1), index, -1)


class _Found(NamedTuple):
    """Each prompt's finished hypotheses, best first, (batch, n) each."""

    mean: tf.Tensor  # float64 mean search score per token (-inf: empty)
    log_p: tf.Tensor  # float32 the model's log-probability
    tokens: tf.Tensor  # int32, 0: empty
    text: tf.Tensor

    @classmethod
    def empty(cls, batch, n):
        return cls(
            tf.fill([batch, n], tf.constant(_NEG_INF, tf.float64)), tf.zeros([batch, n]),
            tf.zeros([batch, n], tf.int32), tf.fill([batch, n], ""),
        )  # fmt: skip

    def count(self) -> tf.Tensor:
        return tf.reduce_sum(tf.cast(self.tokens > 0, tf.int32), axis=1)

    def add(self, new, total, log_p, t, text, width) -> _Found:
        """With the `new` (batch, n) candidates finished at step `t`, the best kept."""
        mean = tf.where(new, tf.cast(total, tf.float64) / tf.cast(t + 1, tf.float64), _NEG_INF)
        filled = tf.concat([self.tokens > 0, new], 1)
        key = tf.where(filled, -tf.concat([self.mean, mean], 1), float("inf"))
        n = tf.shape(self.mean)[1]
        order = tf.argsort(key, stable=True)[:, :n]
        keep = tf.gather(filled, order, batch_dims=1) & (tf.range(n)[None, :] < width[:, None])
        pick = lambda a, b: tf.gather(tf.concat([a, b], 1), order, batch_dims=1)  # noqa: E731
        return _Found(
            tf.where(keep, pick(self.mean, mean), _NEG_INF),
            tf.where(keep, pick(self.log_p, log_p), 0.0),
            tf.where(keep, pick(self.tokens, tf.fill(tf.shape(mean), t + 1)), 0),
            tf.where(keep, pick(self.text, text), ""),
        )  # fmt: skip

    def beams(self, finish, width) -> Beams:
        return Beams(finish.completion(self.text), self.log_p, self.tokens)
