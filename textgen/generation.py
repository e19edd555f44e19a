"""The generator: prompt strings in, generated strings out, all in one TensorFlow graph.

`Generator` is a `tf.Module` holding the trained layers (through `OneStep`) and the
vocabulary tables (through `Tokenizer`). The sampler calls it in process; the export
saves this same module as a SavedModel, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import keras
import tensorflow as tf

from textgen.config import SampleConfig
from textgen.models import OneStep
from textgen.sampling import choose_tokens
from textgen.tokenizers import Tokenizer, Vocabulary

DEFAULT_MAX_NEW_TOKENS_CAP = 4096

_STRINGS = tf.TensorSpec([None], tf.string)
_INTS = tf.TensorSpec([None], tf.int32)
_FLOATS = tf.TensorSpec([None], tf.float32)
_SEEDS = tf.TensorSpec([None, 2], tf.int64)


def _re2_literal(text: str) -> str:
    """`text` as an RE2 pattern that matches it literally."""
    return "".join(c if c.isalnum() and c.isascii() else f"\\x{{{ord(c):x}}}" for c in text)


class Generator(tf.Module):
    """Generates text from a trained model: `generate(prompts, ...)` and `score(texts)`.

    Every prompt is read as the start of a line: the start token (the newline) is fed
    first, so an empty prompt is valid. Stop strings are fixed when the generator is
    built; generation of a row ends right after a token completes one, and the stop
    string and what follows are cut from the completion.

    Out-of-range settings never fail the graph (a server must not crash on a request):
    a negative max_new_tokens, temperature or top_k, or a top_p outside (0, 1], means
    "use the default" from `defaults`; max_new_tokens above the cap is cut to the cap.
    """

    def __init__(
        self,
        model: keras.Model,
        vocab: Vocabulary,
        stop: Sequence[str] = (),
        max_new_tokens_cap: int = DEFAULT_MAX_NEW_TOKENS_CAP,
        defaults: SampleConfig | None = None,
    ):
        super().__init__(name="generator")
        self.one_step = OneStep(model)
        self.tokenizer = Tokenizer(vocab)
        self.vocab_size = vocab.size
        self.stop = tuple(stop)
        self.max_new_tokens_cap = max_new_tokens_cap
        self.defaults = defaults or SampleConfig()
        if self.stop:
            longest_token = max((len(t.encode("utf-8")) for t in vocab.tokens), default=1)
            self._tail_bytes = max(len(s.encode("utf-8")) for s in self.stop) + longest_token + 1
            alternatives = "|".join(_re2_literal(s) for s in self.stop)
            self._stop_search = f"(?s).*(?:{alternatives}).*"
            self._stop_cut = f"(?s)(?:{alternatives}).*"

    # -- building blocks ------------------------------------------------------------

    def _prime(self, prompts: tf.Tensor, with_nll: bool = False):
        """Feed start token + prompt through the network.

        Returns the logits for the next token (batch, vocab), the state, each row's last
        token id (batch,), and (if `with_nll`, else zeros) each row's summed NLL of its
        prompt tokens, and the token counts.
        """
        ids = self.tokenizer.encode(prompts)  # ragged (batch, tokens)
        batch = tf.shape(prompts)[0]
        start = tf.fill([batch, 1], self.tokenizer.start_id)
        ids = tf.concat([tf.RaggedTensor.from_tensor(start), ids], axis=1)
        lengths = tf.cast(ids.row_lengths(), tf.int32)  # (batch,), each >= 1
        last_ids = tf.gather(ids.values, ids.row_limits() - 1)  # (batch,)
        padded = ids.to_tensor()  # (batch, max_len)
        steps = tf.shape(padded)[1]
        logits0 = tf.zeros([batch, self.vocab_size])
        nll0 = tf.zeros([batch])

        def body(t, logits, state, nll):
            new_logits, new_state = self.one_step(padded[:, t], state)
            active = t < lengths  # (batch,)
            if with_nll:  # NLL of the token after position t, for rows that have one
                has_next = t + 1 < lengths
                target = padded[:, tf.minimum(t + 1, steps - 1)]
                token_nll = tf.nn.sparse_softmax_cross_entropy_with_logits(target, new_logits)
                nll = nll + tf.where(has_next, token_nll, 0.0)
            logits = tf.where(active[:, None], new_logits, logits)
            state = tf.nest.map_structure(
                lambda new, old: tf.where(active[:, None], new, old), new_state, state
            )
            return t + 1, logits, state, nll

        _, logits, state, nll = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), logits0, self.one_step.zero_state(batch), nll0),
        )
        return logits, state, last_ids, nll, lengths - 1

    def _sanitize(self, max_new_tokens, temperature, top_k, top_p):
        """Settings out of range -> the defaults; max_new_tokens capped (see class doc)."""
        d = self.defaults
        max_new_tokens = tf.where(max_new_tokens < 0, d.length, max_new_tokens)
        max_new_tokens = tf.minimum(max_new_tokens, self.max_new_tokens_cap)
        temperature = tf.where(temperature < 0, d.temperature, temperature)
        top_k = tf.where(top_k < 0, d.top_k, top_k)
        top_p = tf.where((top_p > 0) & (top_p <= 1), top_p, d.top_p)
        return max_new_tokens, temperature, top_k, top_p

    def _stop_hit(self, tail: tf.Tensor, piece: tf.Tensor):
        """Append `piece` to the rolling `tail`; report rows whose tail holds a stop string."""
        tail = tf.strings.join([tail, piece])
        length = tf.strings.length(tail)
        start = tf.maximum(length - self._tail_bytes, 0)
        tail = tf.strings.substr(tail, start, tf.fill(tf.shape(start), self._tail_bytes))
        return tail, tf.strings.regex_full_match(tail, self._stop_search)

    # -- the graph functions ----------------------------------------------------------

    @tf.function(input_signature=[_STRINGS, _INTS, _FLOATS, _INTS, _FLOATS, _SEEDS])
    def generate_ids(self, prompts, max_new_tokens, temperature, top_k, top_p, seeds):
        """The generation loop. Returns completion strings (batch,) and token counts."""
        max_new_tokens, temperature, top_k, top_p = self._sanitize(
            max_new_tokens, temperature, top_k, top_p
        )
        logits, state, last_ids, _, _ = self._prime(prompts)
        batch = tf.shape(prompts)[0]
        steps = tf.reduce_max(tf.concat([max_new_tokens, [0]], 0))
        # Slot 0 holds each row's last prompt token: what the first new token follows.
        tokens = tf.TensorArray(tf.int32, size=steps + 1, element_shape=[None])
        tokens = tokens.write(0, last_ids)
        counts = tf.zeros([batch], tf.int32)
        done = max_new_tokens <= 0
        tail = tf.fill([batch], "")

        def body(t, logits, state, prev, counts, done, tail, tokens):
            ids = choose_tokens(logits, temperature, top_k, top_p, seeds, t)  # (batch,)
            tokens = tokens.write(t + 1, ids)
            counts = counts + tf.cast(~done, tf.int32)
            if self.stop:
                piece = tf.where(done, "", self.tokenizer.pieces(prev, ids))
                tail, hit = self._stop_hit(tail, piece)
                done = done | hit
            done = done | (counts >= max_new_tokens)
            logits, state = self.one_step(ids, state)
            return t + 1, logits, state, ids, counts, done, tail, tokens

        *_, counts, _, _, tokens = tf.while_loop(
            lambda t, *rest: (t < steps) & ~tf.reduce_all(rest[4]),
            body,
            (tf.constant(0), logits, state, last_ids, counts, done, tail, tokens),
        )
        sequence = tf.transpose(tokens.stack())  # (batch, 1 + steps_taken)
        ids, prev = sequence[:, 1:], sequence[:, :-1]
        pieces = self.tokenizer.pieces(prev, ids)  # (batch, steps_taken)
        valid = tf.range(tf.shape(ids)[1])[None, :] < counts[:, None]
        completion = tf.strings.reduce_join(tf.where(valid, pieces, ""), axis=1)
        if self.stop:
            completion = tf.strings.regex_replace(completion, self._stop_cut, "")
        return completion, counts

    @tf.function(input_signature=[_STRINGS])
    def score(self, texts):
        """Mean negative log-likelihood per token (nats) and token counts of `texts`.

        Each text is scored from the start of a line; a text with no tokens scores 0.
        """
        _, _, _, nll, counts = self._prime(texts, with_nll=True)
        mean = tf.math.divide_no_nan(nll, tf.cast(counts, tf.float32))
        return {"mean_nll": mean, "num_tokens": counts}

    @tf.function(input_signature=[_STRINGS])
    def prime(self, prompts):
        """Start a streamed generation: next-token logits, state and last token id."""
        logits, state, last_ids, _, _ = self._prime(prompts)
        return logits, state, last_ids

    @tf.function
    def next_token(self, logits, state, prev, temperature, top_k, top_p, seeds, t):
        """One streamed step: the token, its text, and the logits and state after it."""
        _, temperature, top_k, top_p = self._sanitize(0, temperature, top_k, top_p)
        ids = choose_tokens(logits, temperature, top_k, top_p, seeds, t)
        logits, state = self.one_step(ids, state)
        return ids, self.tokenizer.pieces(prev, ids), logits, state

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
    ) -> list[str]:
        """Completions of `prompts` (the generated text only), drawn as one batch.

        Rows with the same prompt and seed differ by their stream (default: row index).
        """
        batch = len(prompts)
        streams = range(batch) if streams is None else streams
        completion, _ = self.generate_ids(
            tf.constant(list(prompts), tf.string),
            tf.fill([batch], max_new_tokens),
            tf.fill([batch], float(temperature)),
            tf.fill([batch], top_k),
            tf.fill([batch], float(top_p)),
            tf.constant([[seed, s] for s in streams], tf.int64, shape=[batch, 2]),
        )
        return [c.decode("utf-8") for c in completion.numpy()]

    def stream(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
    ) -> Iterator[str]:
        """Yield the completion of one prompt piece by piece as tokens are drawn.

        Gives the same text as `generate([prompt], ...)` with the same settings.
        """
        logits, state, prev = self.prime(tf.constant([prompt]))
        params = (
            tf.constant([temperature], tf.float32),
            tf.constant([top_k], tf.int32),
            tf.constant([top_p], tf.float32),
            tf.constant([[seed, 0]], tf.int64),
        )
        pending = ""  # text held back because it may be the start of a stop string
        for t in range(min(max_new_tokens, self.max_new_tokens_cap)):
            prev, piece, logits, state = self.next_token(
                logits, state, prev, *params, tf.constant(t)
            )
            pending += piece.numpy()[0].decode("utf-8")
            cut = min((pending.find(s) for s in self.stop if s in pending), default=-1)
            if cut >= 0:
                if pending[:cut]:
                    yield pending[:cut]
                return
            keep = max((_overlap(pending, s) for s in self.stop), default=0)
            if len(pending) > keep:
                yield pending[: len(pending) - keep]
                pending = pending[len(pending) - keep :]
        if pending:
            yield pending


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of `text` that is a proper start of `stop`."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0
