"""Continuing a generation from its state in bytes (`carry`): one chunk per call.

What a stateless server runs to stream: each call reads the new text (if any) into the
state it is given (a new text when the state is empty), draws up to `chunk_tokens` more
of the `max_new_tokens` to write after the text last read, and hands back the state after
them. Calls that pass the state on give exactly the text of one call for all the tokens
(same settings and seed): the noise is keyed by each row's own token count, each row
stops at its own count, and text that may start a stop string is held back until it is
known. A row is done once it has its tokens, or a stop string or the copy guard ended it;
asked for more tokens (or given new text) it goes on.

With label guidance (`guided_text`, an export of a run with labels) each row also carries
its twin, the text read without its label, and the strength its text started with.
"""

from __future__ import annotations

import tensorflow as tf

from textgen.core.config import REPETITION_HISTORY
from textgen.generate.carry import Carried, StateCodec, fingerprint
from textgen.generate.priming import Primed, feed, pushed_history
from textgen.generate.rules.healing import strip_bytes
from textgen.generate.rules.label_guidance import twice


def state_codec(generator, guided: bool = False) -> StateCodec:
    """The generator's codec (its model's fingerprint taken once); `guided`: with twins."""
    codecs = generator.__dict__.setdefault("_state_codecs", {})
    if guided not in codecs:
        one_step = generator.one_step
        with tf.init_scope():  # the weights' values, also while a graph is traced
            model = fingerprint(one_step.variables_to_serve, generator.tokenizer.vocab.tokens)
            zero = one_step.zero_state(1)
        codecs[guided] = StateCodec(zero, REPETITION_HISTORY, generator.tail_size, model, guided)
    return codecs[guided]


def continue_text(
    generator, texts, states, max_new_tokens, chunk_tokens, *rows, guide=None
) -> dict:
    """One chunk for each row: read `texts` (batch,) into `states` (encoded; "" starts a
    new text), then draw up to `chunk_tokens` (<= 0: no limit but the generator's cap) of
    the `max_new_tokens` (-1: the run's default) after the text last read. Returns the
    completion (text safe to show), pending (held back: show it if you stop here), the new
    state, num_tokens and done. `guide`: (twin texts, strengths), see `guided_text`."""
    g = generator
    codec = state_codec(g, guided=guide is not None)
    sampling = g.sampling(*_no_texts_owed(rows))
    new = tf.equal(states, "")
    carried = codec.decode(tf.where(new, codec.blank(1)[0], states))
    given = tf.strings.length(texts) > 0
    batch = tf.shape(texts)[0]
    # New text read resets the checks' tail (copy guard, excluded strings: they look at
    # what is drawn) and lets an ended row go on.
    tail = tf.where(given[:, None], -1, carried.tail)
    done = carried.done & ~given
    max_new_tokens = tf.where(max_new_tokens < 0, g.defaults.length, max_new_tokens)
    since = tf.where(given, 0, carried.since)
    chunk = tf.where(chunk_tokens > 0, chunk_tokens, g.max_new_tokens_cap)
    wanted = tf.minimum(tf.maximum(max_new_tokens - since, 0), chunk)
    wanted = tf.where(done, 0, tf.minimum(wanted, g.max_new_tokens_cap))
    until = carried.counts + wanted
    # New text drawn from at once is healed where it ends inside a word (text only read
    # is read whole: what follows it is not known yet).
    heal = given & (wanted > 0) & ~tf.reduce_any(sampling.excluded.valid, axis=1)
    primed, strength, skip = _read(g, carried, new, texts, guide, heal)
    # The noise is keyed by the tokens drawn since text was last read, so a continuation
    # after new text is drawn as one `generate` of the whole text would draw it.
    sequence, drawn, _, state, _, tail, counts, *_ = g.chunk_loop.draw_until_done(
        primed.logits, primed.state, primed.history[:batch], tail, primed.last_ids[:batch],
        carried.counts, since, until, sampling, exact=True, strength=strength, skip=skip,
    )  # fmt: skip
    # the recent tokens carried whether or not a repetition control drew them (a later
    # chunk may use one)
    history = pushed_history(primed.history[:batch], sequence[:, 1:], drawn)
    twin = None
    if guide is not None:
        twin = tf.nest.map_structure(lambda x: x[batch:], state)
        state = tf.nest.map_structure(lambda x: x[:batch], state)
    held = tf.where(given, "", carried.pending)  # new text: what was held back is over
    text = tf.strings.join([held, strip_bytes(g.finish.text(sequence, drawn), skip)])
    offset = tf.strings.length(held) - skip  # where the sequence's text starts in `text`
    shown, pending, num_tokens, stopped = _stop(g, text, sequence, drawn, offset)
    ended = stopped | (counts < until)  # a stop string, or the checks ended it
    prev = tf.gather(sequence, drawn, batch_dims=1)
    since = since + drawn
    after = Carried(
        state, prev, counts, since, done | ended, history, tail, pending, twin, strength
    )
    return {
        "completion": g.finish.shown(shown),
        "pending": g.finish.shown(pending),
        "state_bytes": codec.encode(after),
        "num_tokens": num_tokens,
        "done": done | ended | (since >= max_new_tokens),
    }


def _no_texts_owed(rows: tuple) -> tuple:
    """The settings `rows` without the last, `include`: a carried generation owes no texts
    (its state carries none), so a row that gives some is refused."""
    *rows, include = rows
    tf.debugging.assert_equal(
        tf.reduce_all(include == ""), True,
        message="a continued generation takes no included texts; give them to generate",
    )  # fmt: skip
    return tuple(rows)


def _read(g, carried: Carried, new, texts, guide, heal) -> tuple:
    """The network after reading `texts` into the `carried` rows (a `new` row starts a
    line: the start token first), each row's label strength (None: no guidance) and the
    bytes its text drawn begins with that are not shown: a row in `heal` is healed where
    its text ends inside a word (`rules.healing`). With `guide`, the twins too, after
    their rows (as the loop steps them): a new row's twin reads its twin text, a carried
    one the same text."""
    start = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(tf.cast(new, tf.int32))], g.tokenizer.start_id),
        tf.cast(new, tf.int64),
    )

    def read(strings):
        if g.healing is None:
            return tf.concat([start, g.tokenizer.encode(strings)], axis=1), None
        ids, healed = g.healing.graph_split(g.tokenizer.encode(strings), heal)
        return tf.concat([start, ids], axis=1), healed

    ids, healed = read(texts)
    state, prev, history, strength = carried.state, carried.prev, carried.history, None
    if guide is not None:
        twin_texts, strengths = guide
        strength = tf.where(new, strengths, carried.strength)
        twin_ids, _ = read(tf.where(new, twin_texts, texts))
        ids = tf.concat([ids, twin_ids], axis=0)
        state = tf.nest.map_structure(lambda a, b: tf.concat([a, b], 0), state, carried.twin)
        prev, history = twice(prev), twice(history)
    weights = g.one_step.read_weights(g.plan.feature_major)
    logits = g.one_step.head_logits(weights, g.plan.layout(state), g.plan.feature_major)
    before = Primed(logits, state, prev, history, None, None)
    primed = feed(g.one_step, g.plan, ids, before)
    if healed is None:
        return primed, strength, tf.zeros_like(carried.counts)
    batch = tf.shape(texts)[0]
    masked = g.healing.graph(primed.logits[:batch], healed)
    logits = tf.concat([masked, primed.logits[batch:]], 0)
    return primed._replace(logits=logits), strength, g.healing.graph_skip(healed)


def _stop(g, text, sequence, drawn, offset):
    """Text to show, text held back (it may start a stop string), tokens through a stop
    string, and whether one ended the row: of `text` and the `drawn` tokens of `sequence`,
    whose text starts at byte `offset` of `text`."""
    if not g.stops:
        return text, tf.fill(tf.shape(text), ""), drawn, tf.zeros(tf.shape(text), tf.bool)
    found = g.stops.found(text)
    held = tf.where(found, 0, g.stops.held_back(text))
    size = tf.strings.length(text)
    shown = tf.strings.substr(text, tf.zeros_like(size), size - held)
    shown = tf.where(found, g.stops.cut(text), shown)
    pending = tf.strings.substr(text, size - held, held)
    num_tokens = g.finish.tokens_through_stop(sequence, drawn, text, offset)
    return shown, pending, num_tokens, found
