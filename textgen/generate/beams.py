"""Beam search in the graph: the most likely continuations rather than sampled ones.

Each prompt keeps `width` hypotheses (rows prompt-major: prompt b's beams are rows
b * width ... b * width + width - 1, all stepped in one batch). Each step every beam's
2 x width best next tokens are candidates (the repetition controls change the scores
first, and the checks on candidates (the copy guard, excluded strings) remove a candidate
they reject: a banned token is never expanded); of all candidates of a prompt the best
2 x width by total log-probability are looked at, best first: those that end (a stop
string or an item's end in their text, or the prompt's `max_new_tokens` reached) go to the
prompt's finished list if they rank among the best `width` (fairseq's and Hugging Face's
rule), and the best `width` of the others go on. A prompt's search ends when `width`
hypotheses have finished (fairseq's rule; Hugging Face's `early_stopping=True`), so
`width` 1 is greedy decoding exactly.

Ranking: finished hypotheses compete by their **mean** log-probability per token. At a
fixed length (no stop strings, not an item run) every hypothesis has the same length, so
this is the total log-probability. When hypotheses may end early, the total would favour
the shortest (each token only lowers it); the mean (Hugging Face's `length_penalty=1`)
compares them per token.

The reported log-probability is the model's own (without the repetition controls' changes
to the scores), so it equals what `score` gives the same text.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from textgen.data.vocabulary import UNK_ID
from textgen.generate.rules.exclusion import ExclusionCheck
from textgen.generate.rules.healing import strip_bytes
from textgen.generate.rules.repetition import Repetition, RepetitionControls, push_history

_NEG_INF = float("-inf")


class Beams(NamedTuple):
    """The finished hypotheses of each prompt, best first: (batch, width) each; slots past a
    row's width hold "", 0, 0."""

    completion: tf.Tensor  # strings, stop strings and item markers cut
    log_probability: tf.Tensor  # float32: the model's log-probability of the tokens
    num_tokens: tf.Tensor  # int32


class _Candidates(NamedTuple):
    """One step's looked-at candidates per prompt, (batch, 2 x width) each."""

    score: tf.Tensor  # total search score
    token: tf.Tensor
    parent: tf.Tensor  # the live row (batch x width) it extends
    log_p: tf.Tensor  # the model's log-probability of the token
    ended: tf.Tensor


class BeamSearch:
    """`search(primed, width, max_new_tokens, controls, repeating, excluded)` over a
    `Generator`'s network, stop strings and copy guard (see the module doc)."""

    def __init__(self, generator):
        self.generator = generator
        self.one_step, self.plan = generator.one_step, generator.plan
        self.stops, self.guard = generator.stops, generator.copy_guard
        self.pieces, self.tail_size = generator.pieces, generator.tail_size

    def search(
        self, primed, width, max_new_tokens, controls: RepetitionControls, repeating, excluded,
        skip,
    ):  # fmt: skip
        """Beams of the `primed` prompts: `width` (batch,) hypotheses each, at most
        `max_new_tokens` (batch,) tokens long, none holding an `excluded` string; each
        text's first `skip` (batch,) bytes not shown (a healed prompt's)."""
        batch, n = tf.shape(width)[0], tf.reduce_max(width)
        fm = self.plan.feature_major
        loop, controls = self._start(primed, n, controls)
        skip = tf.repeat(skip, n)  # (rows,)
        checks = [] if self.guard is None else [self.guard]
        checks.append(ExclusionCheck(self.pieces, excluded.spread(n)))
        weights = self.one_step.read_weights(fm)

        def body(t, logits, state, history, tail, prev, text, live, live_lp, finished, *arrays):
            found = self._candidates(t, logits, history, tail, prev, text, live, live_lp, controls,
                                     repeating, max_new_tokens, n, checks, skip)  # fmt: skip
            cand, cand_text = found
            finished = finished.add(cand, t, width)
            # The best `n` candidates that go on (a prompt whose list is full stops).
            going = tf.where(cand.ended | finished.full(width)[:, None], _NEG_INF, cand.score)
            live, pick = tf.math.top_k(going, n)  # (batch, n)
            live = tf.where(tf.range(n)[None, :] < width[:, None], live, _NEG_INF)
            chosen = tf.reshape(pick + tf.range(batch)[:, None] * 2 * n, [-1])  # (rows,)
            token = tf.gather(tf.reshape(cand.token, [-1]), chosen)
            parent = tf.gather(tf.reshape(cand.parent, [-1]), chosen)
            live_lp = tf.reshape(tf.gather(tf.reshape(cand.log_p, [-1]), chosen), [batch, n])
            text = tf.gather(cand_text, chosen)
            state = tf.nest.map_structure(
                lambda s: tf.gather(s, parent, axis=1 if fm else 0), state
            )
            logits, state = self.one_step.step(weights, token, state, fm)
            history = push_history(tf.gather(history, parent), token)
            tail = self.pieces.advance(tf.gather(tail, parent), tf.gather(prev, parent), token)
            tokens, parents, chosen_at = arrays
            tokens = tokens.write(t, tf.reshape(cand.token, [-1]))
            parents = parents.write(t, tf.reshape(cand.parent, [-1]))
            chosen_at = chosen_at.write(t, chosen)
            return (t + 1, logits, state, history, tail, token, text, live, live_lp, finished,
                    tokens, parents, chosen_at)  # fmt: skip

        def going_on(t, *loop):
            live = loop[6]
            return tf.reduce_any(tf.math.is_finite(live)) & (t < tf.reduce_max(max_new_tokens))

        loop = tf.while_loop(going_on, body, loop)
        finished, (tokens, parents, chosen_at) = loop[9], loop[10:]
        ids = self._backtrack(finished, tokens.stack(), parents.stack(), chosen_at.stack())
        return self._beams(finished, ids, tf.repeat(primed.last_ids, n, axis=0), width, skip)

    def _start(self, primed, n, controls):
        """The search's loop variables at its start, and the controls, for n beams each."""
        batch = tf.shape(primed.last_ids)[0]
        rows = batch * n
        spread = lambda x, axis=0: tf.repeat(x, n, axis=axis)  # noqa: E731 (each prompt n times)
        controls = controls.spread(n)
        axis = 1 if self.plan.feature_major else 0
        state = tf.nest.map_structure(lambda s: spread(s, axis), self.plan.layout(primed.state))
        live = tf.concat([tf.zeros([batch, 1]), tf.fill([batch, n - 1], _NEG_INF)], 1)
        arrays = [
            tf.TensorArray(tf.int32, 0, dynamic_size=True, element_shape=[None]) for _ in "abc"
        ]
        loop = (
            tf.constant(0), spread(primed.logits), state, spread(primed.history),
            tf.fill([rows, self.tail_size], -1), spread(primed.last_ids), tf.fill([rows], ""), live,
            tf.zeros([batch, n]), _Finished.empty(batch, n), *arrays,
        )  # fmt: skip
        return loop, controls

    def _candidates(self, t, logits, history, tail, prev, text, live, live_lp, controls,
                    repeating, max_new_tokens, n, checks, skip):  # fmt: skip
        """The 2 x n best candidates of each prompt at step `t`, and their texts."""
        batch = tf.shape(live)[0]
        search, model = search_scores(logits, history, controls, repeating, self.generator)
        per_beam = tf.minimum(2 * n, tf.shape(logits)[1])
        values, ids = tf.math.top_k(search, per_beam)  # (rows, per_beam)
        for check in checks:  # a token a check rejects is not a candidate
            values = tf.where(check.rejects(tail, prev, ids), _NEG_INF, values)
        total = tf.reshape(tf.reshape(live, [-1])[:, None] + values, [batch, -1])
        score, index = tf.math.top_k(total, tf.minimum(2 * n, tf.shape(total)[1]))
        parent = index // per_beam + tf.range(batch)[:, None] * n  # (batch, 2n) live rows
        token = tf.gather(tf.reshape(ids, [batch, -1]), index, batch_dims=1)
        log_p = tf.gather(tf.reshape(live_lp, [-1]), parent) + tf.gather_nd(
            model, tf.stack([parent, token], -1)
        )
        flat_parent, flat_token = tf.reshape(parent, [-1]), tf.reshape(token, [-1])
        piece = self.generator.tokenizer.pieces(tf.gather(prev, flat_parent), flat_token)
        cand_text = tf.strings.join([tf.gather(text, flat_parent), piece])
        ended = tf.broadcast_to((t + 1 >= max_new_tokens)[:, None], tf.shape(score))
        if self.stops:
            shown = strip_bytes(cand_text, tf.gather(skip, flat_parent))
            ended |= tf.reshape(self.stops.found(shown), tf.shape(score))
        ended &= tf.math.is_finite(score)
        return _Candidates(score, token, parent, log_p, ended), cand_text

    def _backtrack(self, finished, tokens, parents, chosen_at):
        """The token ids (batch x n, longest) of each finished hypothesis, padded with 0."""
        batch, n = tf.unstack(tf.shape(finished.score))
        last = tf.reshape(finished.step, [-1])  # the step of each one's last token
        cand = tf.reshape(finished.candidate, [-1])  # its candidate index at that step
        longest = tf.reduce_max(last) + 1

        def back(s, cand, ids):
            here = s <= last
            safe = tf.maximum(cand, 0)
            token = tf.gather(tokens[s], safe)
            ids = ids.write(s, tf.where(here, token, 0))
            parent = tf.gather(parents[s], safe)  # a live row at step s - 1
            before = tf.gather(chosen_at[tf.maximum(s - 1, 0)], parent)
            return s - 1, tf.where(here, before, cand), ids

        ids = tf.TensorArray(tf.int32, size=tf.maximum(longest, 0), infer_shape=False)
        _, _, ids = tf.while_loop(lambda s, *_: s >= 0, back, (longest - 1, cand, ids))
        return tf.transpose(tf.reshape(ids.stack(), [-1, batch * n]))  # (batch x n, longest)

    def _beams(self, finished, ids, prev, width, skip) -> Beams:
        """The finished hypotheses as text, best first (each row's first `skip` bytes cut)."""
        counts = tf.reshape(tf.where(finished.filled(), finished.step + 1, 0), [-1])
        sequence = tf.concat([prev[:, None], ids], 1)
        finish = self.generator.finish
        completion = finish.completion(strip_bytes(finish.text(sequence, counts), skip))
        shape = tf.shape(finished.score)
        log_p = tf.where(finished.filled(), finished.log_p, 0.0)
        return Beams(tf.reshape(completion, shape), log_p, tf.reshape(counts, shape))


def search_scores(logits, history, controls, repeating, generator) -> tuple:
    """A beam search's scores of each row's next token: the log-softmax of the logits the
    repetition controls changed (`repeating`: a scalar tensor, or None), `[UNK]` and the
    generator's unwritten tokens never; and the model's own log-softmax."""
    scores = logits
    if repeating is not None:
        scores = tf.cond(repeating, lambda: Repetition.graph(logits, history, controls),
                         lambda: logits)  # fmt: skip
    never = tf.one_hot(UNK_ID, tf.shape(logits)[1], on_value=_NEG_INF, off_value=0.0)
    if generator.unwritten is not None:
        never = never + generator.unwritten
    return tf.nn.log_softmax(scores) + never, tf.nn.log_softmax(logits)


class _Finished(NamedTuple):
    """Each prompt's finished hypotheses, best first, (batch, n) each (-inf: empty)."""

    score: tf.Tensor  # mean search score per token: the ranking
    log_p: tf.Tensor  # the model's total log-probability
    step: tf.Tensor  # the step of the last token (its length - 1)
    candidate: tf.Tensor  # its index among that step's candidates (batch x 2n)

    @classmethod
    def empty(cls, batch, n):
        zeros = tf.zeros([batch, n], tf.int32)
        return cls(tf.fill([batch, n], _NEG_INF), tf.zeros([batch, n]), zeros, zeros - 1)

    def filled(self) -> tf.Tensor:
        return tf.math.is_finite(self.score)

    def add(self, cand: _Candidates, t, width) -> _Finished:
        """With step `t`'s ended candidates among a row's best `width`, the best kept."""
        batch, n = tf.unstack(tf.shape(self.score))
        ranked = tf.range(2 * n)[None, :] < width[:, None]
        mean = tf.where(cand.ended & ranked, cand.score / tf.cast(t + 1, tf.float32), _NEG_INF)
        index = tf.range(2 * n)[None, :] + tf.range(batch)[:, None] * 2 * n
        score = tf.concat([self.score, mean], 1)
        _, best = tf.math.top_k(score, n)
        pick = lambda a, b: tf.gather(tf.concat([a, b], 1), best, batch_dims=1)  # noqa: E731
        score = pick(self.score, mean)
        score = tf.where(tf.range(n)[None, :] < width[:, None], score, _NEG_INF)
        return _Finished(
            score, pick(self.log_p, cand.log_p), pick(self.step, tf.fill(tf.shape(mean), t)),
            pick(self.candidate, index),
        )  # fmt: skip

    def full(self, width) -> tf.Tensor:
        """(batch,) prompts with `width` finished hypotheses: their search is over."""
        return tf.math.is_finite(tf.gather(self.score, width - 1, batch_dims=1))
