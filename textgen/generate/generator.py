"""The generator: prompt strings in, generated strings out, all in one TensorFlow graph.

`Generator` is a `tf.Module` holding the trained layers (through `OneStep`) and the
vocabulary tables (through `Tokenizer`). The sampler calls it in process; the export
saves this same module as a SavedModel, so the two cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import keras
import tensorflow as tf

from textgen.core.config import MAX_NEW_TOKENS, MAX_NGRAM, REPETITION_HISTORY, SampleConfig
from textgen.data.items import MARKER_PATTERN, is_marker, strip_markers
from textgen.data.tokenizers import Tokenizer, Vocabulary, string_tensor
from textgen.generate.copy_guard import CopyGuard
from textgen.generate.sampling import (
    RepetitionControls,
    gumbel_noise,
    inverse_temperature,
    needs_filtering,
    push_history,
    repetition_in_use,
    sampling_scores,
    step_noise,
)
from textgen.generate.stops import StopStrings
from textgen.model.one_step import OneStep

_STRINGS = tf.TensorSpec([None], tf.string)
_INTS = tf.TensorSpec([None], tf.int32)
_FLOATS = tf.TensorSpec([None], tf.float32)
_SEEDS = tf.TensorSpec([None, 2], tf.int64)
# Per-row sampling settings, in this order: temperature, top_k, top_p, seeds (seed,
# stream), repetition_penalty, repetition_window, no_repeat_ngram.
_SETTINGS = (_FLOATS, _INTS, _FLOATS, _SEEDS, _FLOATS, _INTS, _INTS)


class Sampling(NamedTuple):
    """Per-row sampling settings of one generation, as its loops use them."""

    temperature: tf.Tensor  # (batch,) float32, 0 greedy
    top_k: tf.Tensor  # (batch,) int32, 0 off
    top_p: tf.Tensor  # (batch,) float32, 1 off
    seeds: tf.Tensor  # (batch, 2) int64: [seed, stream]
    filtering: tf.Tensor  # scalar bool: does any row use top-k or top-p?
    controls: RepetitionControls  # (batch,) each: penalty, window, n-gram
    repeating: tf.Tensor  # scalar bool: does any row use a repetition control?


class Primed(NamedTuple):
    """The network after reading each row's start token and prompt."""

    logits: tf.Tensor  # (batch, vocab) for the next token
    state: tuple  # per layer, (h, c) or (h,)
    last_ids: tf.Tensor  # (batch,) each row's last token
    history: tf.Tensor  # (batch, REPETITION_HISTORY) the last tokens read, oldest first, -1 empty
    nll: tf.Tensor  # (batch,) summed NLL of the prompt's tokens (with_nll), else zeros
    counts: tf.Tensor  # (batch,) prompt tokens


# Tokens per iteration of the default export's generation loop (no XLA): 8 ran faster
# than 1, 16 and 32 (docs/performance.md).
UNROLL = 8

# The longest a streaming reader waits between two pieces of text, in seconds.
STREAM_INTERVAL = 0.1
# Tokens of a stream's first piece (and its shortest): at most a chunk.
STREAM_FIRST = 64


def default_chunk_size(vocab_size: int, jit_compile: bool = True) -> int:
    """Tokens per call of the generation core: 64 for characters with XLA, 256 without
    (each call of the core costs a fixed time there: up to 1.2x the tokens/s at batch 1,
    docs/performance.md), fewer for big vocabularies.

    The core draws a whole chunk's sampling noise at once, (chunk, batch, vocab) floats.
    """
    return int(min(64 if jit_compile else 256, max(8, (1 << 17) // vocab_size)))


class Generator(tf.Module):
    """Generates text from a trained model: `generate(prompts, ...)` and `score(texts)`.

    Every prompt is read as the start of a line: the start token (the newline) is fed
    first, so an empty prompt is valid. Stop strings are fixed when the generator is
    built; generation of a row ends once its text holds one, and the stop string and
    what follows are cut from the completion.

    Tokens are drawn by a numeric core (`_draw_chunk`) that runs `chunk_size` steps
    per call: the RNN cells stepped with their state, the repetition controls,
    temperature / top-k / top-p sampling, the chunk's noise drawn at once. With
    `jit_compile=True` the core is compiled by XLA. Without it, its loop draws `unroll`
    tokens per iteration (`UNROLL` in the default export, which a stock TF Serving runs)
    and steps the network feature-major (`OneStep.step`); `frozen` (the export: weights
    that no longer change) transposes the kernels for that once instead of per call.
    String work (tokenizing, stop strings, detokenizing) stays outside the core. The text
    is the same either way.

    Out-of-range settings never fail the graph (a server must not crash on a request):
    a negative value of any setting, or a top_p outside (0, 1], means "use the default"
    from `defaults`; max_new_tokens above the cap is cut to the cap; a repetition_penalty
    of 0 (or NaN), or a no_repeat_ngram above `MAX_NGRAM`, is off; a repetition_window
    above `REPETITION_HISTORY` is `REPETITION_HISTORY`.
    """

    def __init__(
        self,
        model: keras.Model,
        vocab: Vocabulary,
        stop: Sequence[str] = (),
        max_new_tokens_cap: int = MAX_NEW_TOKENS,
        defaults: SampleConfig | None = None,
        jit_compile: bool = False,
        chunk_size: int | None = None,
        copy_guard: CopyGuard | None = None,
        unroll: int = 1,
        frozen: bool = False,
    ):
        super().__init__(name="generator")
        # Without XLA the network is stepped feature-major (faster there; XLA runs the
        # batch-major step faster); `frozen` (an export) transposes the kernels once.
        self.feature_major = not jit_compile
        self.one_step = OneStep(model, frozen=frozen and self.feature_major)
        self.tokenizer = Tokenizer(vocab)
        self.vocab_size = vocab.size
        self.stops = StopStrings(stop)
        self.max_new_tokens_cap = max_new_tokens_cap
        self.defaults = defaults or SampleConfig()
        self.jit_compile = jit_compile
        self.chunk_size = chunk_size or default_chunk_size(vocab.size, jit_compile)
        # Tokens per loop iteration. Without XLA each iteration pays the executor for
        # every loop variable (the weights among them): the default export runs blocks of
        # UNROLL tokens. In process 1 (XLA fuses the loop anyway; the graph of a block
        # takes ~3x longer to build, which a one-off sample or a test does not win back).
        self.unroll = unroll
        self.copy_guard = copy_guard
        # Item and label markers (textgen.data.items) are never printed.
        self.has_markers = any(is_marker(token) for token in vocab.tokens)
        self.tail_size = copy_guard.tail_size if copy_guard else 0
        self._compiled_draw_chunk = tf.function(self._draw_chunk, jit_compile=jit_compile)
        batch_of = lambda *shape: tf.TensorSpec([None, *shape], tf.float32)  # noqa: E731
        state_spec = tf.nest.map_structure(
            lambda x: batch_of(x.shape[1]), self.one_step.zero_state(1)
        )
        history_spec = tf.TensorSpec([None, REPETITION_HISTORY], tf.int32)
        tail_spec = tf.TensorSpec([None, self.tail_size], tf.int32)
        self.continue_stream = tf.function(
            self._continue_stream,
            input_signature=[
                batch_of(vocab.size), state_spec, history_spec, tail_spec, _INTS, _INTS,
                tf.TensorSpec([], tf.int32), _INTS, *_SETTINGS,
            ],
        )  # fmt: skip

    # -- building blocks ------------------------------------------------------------

    def _prime(self, prompts: tf.Tensor, with_nll: bool = False) -> Primed:
        """Feed start token + prompt through the network."""
        ids = self.tokenizer.encode(prompts)  # ragged (batch, tokens)
        batch = tf.shape(prompts)[0]
        start = tf.fill([batch, 1], self.tokenizer.start_id)
        ids = tf.concat([tf.RaggedTensor.from_tensor(start), ids], axis=1)
        lengths = tf.cast(ids.row_lengths(), tf.int32)  # (batch,), each >= 1
        last_ids = tf.gather(ids.values, ids.row_limits() - 1)  # (batch,)
        padded = ids.to_tensor()  # (batch, max_len)
        steps = tf.shape(padded)[1]
        block = self.unroll  # tokens per loop iteration (see `_draw_chunk`)
        if block > 1:  # room for a last block that runs past the prompts (masked)
            padded = tf.pad(padded, [[0, 0], [0, block]])
        logits0 = tf.zeros([batch, self.vocab_size])
        nll0 = tf.zeros([batch])
        feature_major = self.feature_major
        weights = self.one_step.read_weights(feature_major)

        def token(t, logits, state, nll):
            new_logits, new_state = self.one_step.step(weights, padded[:, t], state, feature_major)
            active = t < lengths  # (batch,)
            if with_nll:  # NLL of the token after position t, for rows that have one
                has_next = t + 1 < lengths
                target = padded[:, tf.minimum(t + 1, steps - 1)]
                token_nll = tf.nn.sparse_softmax_cross_entropy_with_logits(target, new_logits)
                nll = nll + tf.where(has_next, token_nll, 0.0)
            logits = tf.where(active[:, None], new_logits, logits)
            rows = active[None, :] if feature_major else active[:, None]
            state = tf.nest.map_structure(
                lambda new, old: tf.where(rows, new, old), new_state, state
            )
            return t + 1, logits, state, nll

        def tokens(size: int):
            """A loop body of `size` tokens, one after another."""

            def body(*loop):
                for _ in range(size):
                    loop = token(*loop)
                return loop

            return body

        loop = (tf.constant(0), logits0, self._step_layout(self.one_step.zero_state(batch)), nll0)
        if block > 1:  # blocks while at least half of one is prompt
            loop = tf.while_loop(lambda t, *_: t + block // 2 < steps, tokens(block), loop)
        _, logits, state, nll = tf.while_loop(lambda t, *_: t < steps, tokens(1), loop)
        state = self._step_layout(state)  # callers get (batch, units)
        # Each row's last REPETITION_HISTORY tokens, right-aligned, for the repetition controls.
        positions = (
            lengths[:, None] - REPETITION_HISTORY + tf.range(REPETITION_HISTORY)[None, :]
        )  # (batch, REPETITION_HISTORY)
        taken = tf.gather(padded, tf.maximum(positions, 0), batch_dims=1)
        history = tf.where(positions >= 0, taken, -1)
        return Primed(logits, state, last_ids, history, nll, lengths - 1)

    def _step_layout(self, state):
        """The state between the callers' (batch, units) and the step's layout: transposed
        when the step runs feature-major (the same call converts either way)."""
        return tf.nest.map_structure(tf.transpose, state) if self.feature_major else state

    def _sampling(self, max_new_tokens, temperature, top_k, top_p, seeds, controls):
        """The request's settings made safe: out of range -> the defaults or off,
        max_new_tokens capped (see the class doc). Returns max_new_tokens and a `Sampling`."""
        d = self.defaults
        max_new_tokens = tf.where(max_new_tokens < 0, d.length, max_new_tokens)
        max_new_tokens = tf.minimum(max_new_tokens, self.max_new_tokens_cap)
        temperature = tf.where(temperature < 0, d.temperature, temperature)
        top_k = tf.where(top_k < 0, d.top_k, top_k)
        top_p = tf.where((top_p > 0) & (top_p <= 1), top_p, d.top_p)
        penalty, window, ngram = controls
        penalty = tf.where(penalty < 0, d.repetition_penalty, penalty)
        penalty = tf.where(penalty > 0, penalty, 1.0)  # 0 and NaN: off
        window = tf.minimum(tf.where(window < 0, d.repetition_window, window), REPETITION_HISTORY)
        ngram = tf.where(ngram < 0, d.no_repeat_ngram, ngram)
        ngram = tf.where(ngram <= MAX_NGRAM, ngram, 0)
        controls = RepetitionControls.of(penalty, window, ngram)
        return max_new_tokens, Sampling(
            temperature,
            top_k,
            top_p,
            seeds,
            needs_filtering(top_k, top_p),
            controls,
            repetition_in_use(controls),
        )

    def _draw_chunk(
        self, logits, state, history, tail, counts, t0, max_new_tokens, sampling, size
    ):  # fmt: skip
        """Up to `size` steps of drawing tokens; numbers only, so XLA can compile it.

        Runs min(size, most tokens any row still needs) steps. Returns the token
        ids (size, batch), without XLA (steps, batch) (a row's ids past its
        max_new_tokens are junk), the steps
        taken, the logits, state, history, copy-guard tail and counts after them, and
        which rows the copy guard ended (no candidate left). Everything that does not
        change from step to step (weights, noise, temperature) is prepared before the
        loop, and the loop is written out once for each set of rules a request may use.
        """
        batch = tf.shape(logits)[0]
        steps = tf.minimum(size, tf.reduce_max(max_new_tokens - counts))
        # Noise for the steps this call takes; XLA needs a static size: the whole chunk.
        drawn = size if self.jit_compile else steps
        noise = tf.cond(
            tf.reduce_any(sampling.temperature > 0),
            lambda: gumbel_noise(sampling.seeds, t0 + tf.range(drawn), self.vocab_size),
            lambda: tf.zeros([drawn, batch, self.vocab_size]),
        )
        noise = step_noise(noise, sampling.temperature)  # (drawn, batch, vocab)
        # a static batch stays static in the loop
        noise.set_shape([size if self.jit_compile else None, *logits.shape])
        inverse_t = inverse_temperature(sampling.temperature)  # (batch, 1)
        # Feature-major (without XLA): (units, batch) state in the loop, transposed around it.
        feature_major = self.feature_major
        weights = self.one_step.read_weights(feature_major)
        state = self._step_layout(state)

        guard = self.copy_guard

        def run(filtering, repeating: bool):
            """One loop; it carries only what its rules change (each loop variable
            costs time per token when the loop runs without XLA)."""
            controls = sampling.controls if repeating else None
            guarding = guard is not None
            carried = {}  # the loop variables besides i, logits, state and chunk
            if repeating:
                carried["history"] = history
            if guarding:
                carried.update(tail=tail, ended_at=tf.fill([batch], size))

            def token(step, step_noise, logits, state, carried):
                """One step of the chunk (`step()` its index): its token ids (batch,), the
                network after them."""
                carried = dict(carried)
                scores = sampling_scores(
                    logits, inverse_t, sampling.top_k, sampling.top_p, step_noise, filtering,
                    carried.get("history"), controls,
                )  # (batch, vocab)  # fmt: skip
                if not guarding:
                    ids = tf.argmax(scores, axis=-1, output_type=tf.int32)
                else:  # the history's last token precedes the new one
                    prev = carried["history"][:, -1]
                    ids, allowed = guard.choose(scores, carried["tail"], prev)
                    ended_at = carried["ended_at"]
                    carried["ended_at"] = tf.where(allowed | (ended_at < size), ended_at, step())
                    carried["tail"] = guard.advance(carried["tail"], prev, ids)
                logits, state = self.one_step.step(weights, ids, state, feature_major)
                if repeating:  # the history is read by the repetition controls and the guard
                    carried["history"] = push_history(carried["history"], ids)
                return ids, logits, state, carried

            def block(steps_in_block: int):
                """A loop body of `steps_in_block` tokens, written out one after another."""

                def body(i, logits, state, chunk, carried):
                    drawn = []
                    # The block's noise sliced once (each op in the loop costs per token).
                    block_noise = tf.unstack(tf.gather(noise, i + tf.range(steps_in_block)))
                    for k in range(steps_in_block):
                        ids, logits, state, carried = token(
                            lambda k=k: i + k, block_noise[k], logits, state, carried
                        )
                        drawn.append(ids)
                    rows = (i + tf.range(steps_in_block))[:, None]
                    chunk = tf.tensor_scatter_nd_update(chunk, rows, tf.stack(drawn))
                    return i + steps_in_block, logits, state, chunk, carried

                return body

            loop = (tf.constant(0), logits, state, tf.zeros_like(noise[:, :, 0], tf.int32), carried)
            if self.unroll > 1:  # whole blocks first, then the rest one token at a time
                loop = tf.while_loop(
                    lambda i, *_: i + self.unroll <= steps, block(self.unroll), loop,
                    maximum_iterations=size // self.unroll,
                )  # fmt: skip
            _, logits_out, state_out, chunk, carried = tf.while_loop(
                lambda i, *_: i < steps, block(1), loop, maximum_iterations=size
            )
            return (
                logits_out, state_out, carried.get("history", history),
                carried.get("tail", tail), carried.get("ended_at", tf.fill([batch], size)), chunk,
            )  # fmt: skip

        # Three loops, not four: a loop with repetition controls filters only when a row
        # uses top-k/p, decided each step (sorting a word vocabulary per token costs ~7x),
        # which keeps the graph, and the time to build it, smaller. A generator with a
        # copy guard runs that one loop only.
        if guard is not None:
            drawn = run(sampling.filtering, True)
        else:
            drawn = tf.cond(
                sampling.repeating,
                lambda: run(sampling.filtering, True),
                lambda: tf.cond(
                    sampling.filtering, lambda: run(True, False), lambda: run(False, False)
                ),
            )
        logits, state, history, tail, ended_at, chunk = drawn
        state = self._step_layout(state)
        wanted = tf.clip_by_value(max_new_tokens - counts, 0, steps)
        ended = ended_at < wanted  # the guard ended the row before it was done
        counts = counts + tf.minimum(wanted, ended_at)
        return chunk, steps, logits, state, history, tail, counts, ended

    def _draw_until_done(
        self, logits, state, history, tail, prev, counts, t, max_new_tokens, sampling
    ):  # fmt: skip
        """Draw chunks until every row has `max_new_tokens` tokens, holds a stop string or
        was ended by the copy guard.

        Starts from the network's `logits`, `state`, token `history` and copy-guard
        `tail`; `t` is the index of the next token (it keys the sampling noise), `counts`
        the tokens each row has so far. Returns the ids drawn (batch, 1 + steps) after each
        row's previous token `prev`, how many each row drew, and the logits, state,
        history, tail, counts and t after.
        """
        # Chunks of ids, time-major; the first holds each row's previous token.
        chunks = tf.TensorArray(tf.int32, size=0, dynamic_size=True, infer_shape=False)
        chunks = chunks.write(0, prev[None])
        text = tf.fill(tf.shape(prev), "")
        before = counts

        def body(t, logits, state, history, tail, prev, counts, max_new, text, chunks):
            chunk, steps, logits, state, history, tail, new_counts, ended = (
                self._compiled_draw_chunk(
                    logits, state, history, tail, counts, t, max_new, sampling, self.chunk_size
                )
            )
            max_new = tf.where(ended, new_counts, max_new)
            ids = tf.transpose(chunk[:steps])  # (batch, steps)
            chunks = chunks.write(chunks.size(), chunk[:steps])
            if self.stops:  # a row whose text holds a stop string needs no more tokens
                piece = self._text(tf.concat([prev[:, None], ids], 1), new_counts - counts)
                text = tf.strings.join([text, piece])
                max_new = tf.where(self.stops.found(text), new_counts, max_new)
            last = tf.gather(ids, tf.maximum(new_counts - counts - 1, 0), batch_dims=1)
            prev = tf.where(new_counts > counts, last, prev)
            return (
                t + steps,
                logits,
                state,
                history,
                tail,
                prev,
                new_counts,
                max_new,
                text,
                chunks,
            )

        t, logits, state, history, tail, _, counts, _, _, chunks = tf.while_loop(
            lambda t, logits, state, history, tail, prev, counts, max_new, *_: tf.reduce_any(
                counts < max_new
            ),
            body,
            (t, logits, state, history, tail, prev, counts, max_new_tokens, text, chunks),
        )
        sequence = tf.transpose(chunks.concat())  # (batch, 1 + steps)
        return sequence, counts - before, logits, state, history, tail, counts, t

    def _text(self, sequence, lengths):
        """Text of sequence[:, 1:] continuing sequence[:, 0], the first `lengths` tokens."""
        ids, prev = sequence[:, 1:], sequence[:, :-1]
        pieces = self.tokenizer.pieces(prev, ids)  # (batch, steps)
        valid = tf.range(tf.shape(ids)[1])[None, :] < lengths[:, None]
        return tf.strings.reduce_join(tf.where(valid, pieces, ""), axis=1)

    def _tokens_through_stop(self, sequence, counts, completion):
        """Tokens up to and including the one that completes a stop string, per row."""
        ids, prev = sequence[:, 1:], sequence[:, :-1]
        sizes = tf.strings.length(self.tokenizer.pieces(prev, ids))  # (batch, steps)
        starts = tf.math.cumsum(sizes, axis=1, exclusive=True)
        valid = tf.range(tf.shape(ids)[1])[None, :] < counts[:, None]
        stop_end = self.stops.end(completion)  # (batch,)
        through = tf.reduce_sum(tf.cast(valid & (starts < stop_end[:, None]), tf.int32), 1)
        return tf.where(self.stops.found(completion), through, counts)

    # -- the graph functions ----------------------------------------------------------

    @tf.function(input_signature=[_STRINGS, _INTS, *_SETTINGS])
    def generate_ids(
        self, prompts, max_new_tokens, temperature, top_k, top_p, seeds, penalty, window, ngram
    ):
        """The generation loop. Returns completion strings (batch,) and token counts."""
        max_new_tokens, sampling = self._sampling(
            max_new_tokens, temperature, top_k, top_p, seeds, (penalty, window, ngram)
        )
        primed = self._prime(prompts)
        max_new_tokens = tf.maximum(max_new_tokens, 0)
        sequence, counts, *_ = self._draw_until_done(
            primed.logits, primed.state, primed.history, self._empty_tail(prompts),
            primed.last_ids, tf.zeros_like(primed.last_ids), 0, max_new_tokens, sampling,
        )  # fmt: skip
        completion = self._text(sequence, counts)
        if self.stops:
            counts = self._tokens_through_stop(sequence, counts, completion)
            completion = self.stops.cut(completion)
        if self.has_markers:
            completion = tf.strings.regex_replace(completion, MARKER_PATTERN, "")
        return completion, counts

    @tf.function(input_signature=[_STRINGS])
    def score(self, texts):
        """Mean negative log-likelihood per token (nats) and token counts of `texts`.

        Each text is scored from the start of a line; a text with no tokens scores 0.
        """
        primed = self._prime(texts, with_nll=True)
        mean = tf.math.divide_no_nan(primed.nll, tf.cast(primed.counts, tf.float32))
        return {"mean_nll": mean, "num_tokens": primed.counts}

    @tf.function(input_signature=[_STRINGS])
    def prime(self, prompts):
        """Start a streamed generation: next-token logits, state, history, last token id."""
        primed = self._prime(prompts)
        return primed.logits, primed.state, primed.history, primed.last_ids

    def _empty_tail(self, prompts):
        """The copy guard's tail of a completion not yet begun: (batch, tail_size) -1s."""
        return tf.fill([tf.shape(prompts)[0], self.tail_size], -1)

    def _continue_stream(
        self, logits, state, history, tail, prev, counts, t, until, *settings
    ):  # fmt: skip
        """One stretch of a streamed generation: tokens until each row has `until` (fewer
        if the copy guard ends it); their text (batch,), and the loop state after them."""
        temperature, top_k, top_p, seeds, *controls = settings
        _, sampling = self._sampling(0, temperature, top_k, top_p, seeds, controls)
        sequence, drawn, logits, state, history, tail, counts, t = self._draw_until_done(
            logits, state, history, tail, prev, counts, t, until, sampling
        )
        text = self._text(sequence, drawn)
        prev = tf.gather(sequence, drawn, batch_dims=1)
        return text, logits, state, history, tail, prev, counts, t

    # -- Python API -------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        streams: Sequence[int] | None = None,
        repetition_penalty: float = SampleConfig.repetition_penalty,
        repetition_window: int = SampleConfig.repetition_window,
        no_repeat_ngram: int = SampleConfig.no_repeat_ngram,
    ) -> list[str]:
        """Completions of `prompts` (the generated text only), drawn as one batch.

        Rows with the same prompt and seed differ by their stream (default: row index).
        """
        batch = len(prompts)
        streams = range(batch) if streams is None else streams
        completion, _ = self.generate_ids(
            string_tensor(list(prompts)),
            tf.fill([batch], max_new_tokens),
            *_setting_tensors(
                batch, temperature, top_k, top_p, [[seed, s] for s in streams],
                repetition_penalty, repetition_window, no_repeat_ngram,
            ),
        )  # fmt: skip
        return [c.decode("utf-8") for c in completion.numpy()]

    def stream(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        repetition_penalty: float = SampleConfig.repetition_penalty,
        repetition_window: int = SampleConfig.repetition_window,
        no_repeat_ngram: int = SampleConfig.no_repeat_ngram,
    ) -> Iterator[str]:
        """Yield the completion of one prompt chunk by chunk as tokens are drawn.

        Gives the same text as `generate([prompt], ...)` with the same settings.
        """
        prompts = string_tensor([prompt])
        logits, state, history, prev = self.prime(prompts)
        tail = self._empty_tail(prompts)
        settings = _setting_tensors(
            1, temperature, top_k, top_p, [[seed, 0]],
            repetition_penalty, repetition_window, no_repeat_ngram,
        )  # fmt: skip
        total = min(max_new_tokens, self.max_new_tokens_cap)
        counts, t = tf.zeros([1], tf.int32), tf.constant(0)
        pending = ""  # text held back because it may be the start of a stop string
        shortest = min(self.chunk_size, STREAM_FIRST)
        until, stretch = 0, shortest
        while until < total:
            # A short stretch first (text at once), then stretches as long as the reader
            # can wait (STREAM_INTERVAL): each call costs a fixed overhead, so fewer is faster.
            started, before, until = time.perf_counter(), until, min(total, until + stretch)
            piece, logits, state, history, tail, prev, counts, t = self.continue_stream(
                logits, state, history, tail, prev, counts, t, tf.constant([until]), *settings
            )
            rate = (until - before) / max(time.perf_counter() - started, 1e-6)  # tokens/s
            stretch = max(shortest, int(rate * STREAM_INTERVAL))
            ready, pending, stopped = self.stops.split_stream(
                pending + piece.numpy()[0].decode("utf-8")
            )
            ready = strip_markers(ready) if self.has_markers else ready
            if ready:
                yield ready
            if stopped:
                return
            if counts.numpy()[0] < until:  # the copy guard ended it
                break
        pending = strip_markers(pending) if self.has_markers else pending
        if pending:
            yield pending


def _setting_tensors(batch, temperature, top_k, top_p, seeds, penalty, window, ngram):
    """The per-row setting tensors of `_SETTINGS`, each setting the same for every row."""
    return (
        tf.fill([batch], float(temperature)),
        tf.fill([batch], int(top_k)),
        tf.fill([batch], float(top_p)),
        tf.constant(seeds, tf.int64, shape=[batch, 2]),
        tf.fill([batch], float(penalty)),
        tf.fill([batch], int(window)),
        tf.fill([batch], int(ngram)),
    )
