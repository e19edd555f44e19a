"""Choosing the next token from logits: greedy, temperature, top-k, top-p.

Every parameter is per row, so one batch can mix settings (as TF Serving batches do).
Randomness comes from a counter-based hash of (seed, stream, step, token id): a row's
draws depend only on its own seed, never on what else is in the batch, and the same
seed gives the same text in the sampler, the streaming sampler and the export.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from textgen.core.config import MAX_NGRAM
from textgen.data.vocabulary import UNK_ID

_NEG_INF = float("-inf")


_xor, _and, _shr = tf.bitwise.bitwise_xor, tf.bitwise.bitwise_and, tf.bitwise.right_shift


def _u32(h: tf.Tensor) -> tf.Tensor:
    """The low 32 bits of int64 `h`, as uint32 (TensorFlow's uint32 ops wrap mod 2**32)."""
    return tf.cast(_and(h, tf.constant(0xFFFFFFFF, tf.int64)), tf.uint32)


def _mix32(h: tf.Tensor) -> tf.Tensor:
    """MurmurHash3's 32-bit finalizer on uint32 tensors."""
    h = _xor(h, _shr(h, tf.constant(16, tf.uint32)))
    h = h * tf.constant(0x85EBCA6B, tf.uint32)
    h = _xor(h, _shr(h, tf.constant(13, tf.uint32)))
    h = h * tf.constant(0xC2B2AE35, tf.uint32)
    return _xor(h, _shr(h, tf.constant(16, tf.uint32)))


def gumbel_noise(
    seeds: tf.Tensor, steps: tf.Tensor, vocab_size: int, per_row: bool = False
) -> tf.Tensor:
    """Gumbel(0, 1) noise from seeds (batch, 2) int64 [seed, stream].

    `steps` is a scalar step, giving (batch, vocab), or a vector of steps, giving
    (steps, batch, vocab): a whole chunk of a generation loop's noise at once, equal
    step by step to the scalar form. With `per_row`, `steps` (steps, batch) gives each
    row its own steps (rows continuing from different points).
    """
    seed, stream = seeds[:, 0], seeds[:, 1]
    steps = _u32(tf.cast(steps, tf.int64))
    steps = steps if per_row else steps[..., None]  # (..., batch) or (..., 1)
    key = _mix32(steps * tf.constant(0x9E3779B9, tf.uint32) + tf.constant(0x7F4A7C15, tf.uint32))
    key = _mix32(_xor(key, _u32(stream)))
    key = _mix32(_xor(key, _u32(_shr(seed, tf.constant(32, tf.int64)))))
    key = _mix32(_xor(key, _u32(seed)))  # (..., batch)
    ids = tf.cast(tf.range(vocab_size), tf.uint32)
    token = _mix32(ids * tf.constant(0x61C88647, tf.uint32))  # (vocab,)
    bits = _shr(_mix32(_xor(key[..., None], token)), tf.constant(9, tf.uint32))
    # bits: (..., batch, vocab), 23 random bits each, so that bits + 0.5 is exact in
    # float32 and u stays below 1 (with 24, the largest rounded to 1: infinite noise)
    uniform = (tf.cast(bits, tf.float32) + 0.5) / float(1 << 23)  # in (0, 1)
    # -log(-log(u)), the negations written as products with -1 (exact): without XLA,
    # Grappler fuses Neg-Log-Neg-Log into one _UnaryOpsComposition op that runs ~4x slower.
    return tf.math.log(tf.math.log(uniform) * -1.0) * -1.0


def needs_filtering(top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """Whether any row uses top-k or top-p (a scalar bool; a loop computes it once)."""
    return tf.reduce_any(top_k > 0) | tf.reduce_any(top_p < 1.0)


def inverse_temperature(temperature: tf.Tensor) -> tf.Tensor:
    """(batch, 1) factors for the logits: 1/temperature, and 1 for greedy (0) rows."""
    safe = tf.where(temperature > 0, temperature, 1.0)
    return (1.0 / safe)[:, None]


def _never_unk(vocab_size: int) -> tf.Tensor:
    """(vocab,) zeros with -inf on `[UNK]`: added to logits so it is never chosen."""
    return tf.one_hot(UNK_ID, vocab_size, on_value=_NEG_INF, off_value=0.0)


def step_noise(noise: tf.Tensor, temperature: tf.Tensor) -> tf.Tensor:
    """What is added to scaled logits before the argmax: `gumbel_noise` (..., batch, vocab)
    for sampling rows, 0 for greedy rows, and -inf on `[UNK]`."""
    never = _never_unk(noise.shape[-1])
    return tf.where(temperature[:, None] > 0, noise, 0.0) + never


def top_filter(scaled: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """Scaled logits (batch, vocab) with everything outside top-k / top-p set to -inf.

    top_k (batch,) int32 <= 0 and top_p (batch,) float32 >= 1 switch those filters off.
    `[UNK]`, never chosen, is not counted in either.
    """
    scaled = scaled + _never_unk(scaled.shape[-1])
    ranked = tf.sort(scaled, axis=-1, direction="DESCENDING")  # (batch, vocab)
    vocab = tf.shape(ranked)[-1]
    kth = tf.gather(ranked, tf.clip_by_value(top_k - 1, 0, vocab - 1), batch_dims=1)
    k_min = tf.where(top_k > 0, kth, _NEG_INF)[:, None]
    ranked = tf.where(ranked >= k_min, ranked, _NEG_INF)
    mass_before = tf.math.cumsum(tf.nn.softmax(ranked), axis=-1, exclusive=True)
    kept = (mass_before < top_p[:, None]) | (top_p[:, None] >= 1.0)
    p_min = tf.reduce_min(tf.where(kept, ranked, float("inf")), axis=-1, keepdims=True)
    return tf.where(scaled >= tf.maximum(k_min, p_min), scaled, _NEG_INF)


def sampling_scores(
    logits: tf.Tensor,
    inverse_t: tf.Tensor,
    top_k: tf.Tensor,
    top_p: tf.Tensor,
    noise: tf.Tensor,
    filtering: bool,
) -> tf.Tensor:
    """(batch, vocab) scores whose argmax is each row's next token: the one generation
    step every sampler runs (`choose_tokens`; the copy guard takes the best allowed one;
    the rules of `textgen.generate.rules`, the repetition controls among them, change the
    logits first).

    `inverse_t` is `inverse_temperature(temperature)` and `noise` this step's
    `step_noise(gumbel_noise(...), temperature)` (batch, vocab), both prepared once per
    loop; greedy rows take the argmax, `[UNK]` is never chosen (-inf). `filtering` (a
    Python bool, or `needs_filtering`'s scalar tensor decided once per loop, then checked
    each step) applies top-k / top-p.
    """
    scaled = logits * inverse_t
    if isinstance(filtering, tf.Tensor):  # decided in the graph, once per step
        scaled = tf.cond(filtering, lambda: top_filter(scaled, top_k, top_p), lambda: scaled)
    elif filtering:
        scaled = top_filter(scaled, top_k, top_p)
    return scaled + noise


def choose_tokens(*args, **kwargs) -> tf.Tensor:
    """The next token per row, (batch,) int32: the argmax of `sampling_scores(...)`."""
    return tf.argmax(sampling_scores(*args, **kwargs), axis=-1, output_type=tf.int32)


# -- repetition controls: logits filters over each row's recent tokens ------------------


class RepetitionControls(NamedTuple):
    """Per-row repetition settings (each rule off at its neutral value), and whether any
    row uses each rule (decided once per loop: `RepetitionControls.of`)."""

    penalty: tf.Tensor  # (batch,) float32: CTRL's repetition penalty, 1 is off
    window: tf.Tensor  # (batch,) int32: the penalty looks at this many recent tokens
    ngram: tf.Tensor  # (batch,) int32: no n-gram of this size repeats; 0 is off
    penalizing: tf.Tensor  # scalar bool: does any row use the penalty?
    banning: tf.Tensor  # scalar bool: does any row use no-repeat n-grams?

    @classmethod
    def of(cls, penalty: tf.Tensor, window: tf.Tensor, ngram: tf.Tensor) -> RepetitionControls:
        return cls(penalty, window, ngram, tf.reduce_any(penalty != 1.0), tf.reduce_any(ngram > 0))


def repetition_in_use(controls: RepetitionControls) -> tf.Tensor:
    """Whether any row uses a repetition control (a scalar bool)."""
    return controls.penalizing | controls.banning


def penalize_repeats(
    logits: tf.Tensor, history: tf.Tensor, penalty: tf.Tensor, window: tf.Tensor
) -> tf.Tensor:
    """CTRL's repetition penalty (Keskar et al., 2019): the logits of tokens among a row's
    last `window` tokens of `history` are divided by `penalty` where positive and
    multiplied by it where negative. logits (batch, vocab); history (batch, history) token
    ids, oldest first, -1 where empty; penalty, window (batch,)."""
    size = history.shape[1]
    recent = tf.range(size)[None, :] >= size - window[:, None]  # (batch, history)
    seen = _mark_tokens(tf.shape(logits), history, recent & (history >= 0))
    factor = tf.where(logits > 0, 1.0 / penalty[:, None], penalty[:, None])
    return tf.where(seen, logits * factor, logits)


def ban_repeated_ngrams(logits: tf.Tensor, history: tf.Tensor, ngram: tf.Tensor) -> tf.Tensor:
    """-inf on each token that would complete an n-gram (n = the row's `ngram`, 0: off)
    already in `history`: the tokens that followed the earlier occurrences of the row's
    last n - 1 tokens."""
    size, width = history.shape[1], MAX_NGRAM - 1
    batch = tf.shape(history)[0]
    padded = tf.concat([history, tf.fill([batch, width + 1], -1)], axis=1)
    before = ngram - 1  # (batch,) tokens before the banned one; -1 for rows that are off
    offsets = tf.range(width)
    need = offsets[None, :] < before[:, None]  # (batch, width)
    prefix = tf.gather(padded, tf.maximum(size - before[:, None] + offsets, 0), batch_dims=1)
    windows = tf.stack([padded[:, k : k + size] for k in range(width)], axis=2)
    same = (windows == prefix[:, None, :]) | ~need[:, None, :]  # (batch, history, width)
    complete = tf.reduce_all((prefix >= 0) | ~need, axis=1) & (ngram > 0)  # (batch,)
    follows = tf.range(size)[None, :] + tf.maximum(before, 0)[:, None]  # (batch, history)
    following = tf.gather(padded, follows, batch_dims=1)
    found = tf.reduce_all(same, axis=2) & complete[:, None] & (follows < size)
    banned = _mark_tokens(tf.shape(logits), following, found & (following >= 0))
    return tf.where(banned, _NEG_INF, logits)


def _mark_tokens(shape: tf.Tensor, ids: tf.Tensor, where: tf.Tensor) -> tf.Tensor:
    """(batch, vocab) bools: True at each row's `ids` (batch, n) where `where` holds."""
    rows = tf.broadcast_to(tf.range(shape[0])[:, None], tf.shape(ids))
    indices = tf.stack([rows, tf.maximum(ids, 0)], axis=-1)  # (batch, n, 2)
    marks = tf.tensor_scatter_nd_max(tf.zeros(shape, tf.int32), indices, tf.cast(where, tf.int32))
    return marks > 0


def control_repetition(
    logits: tf.Tensor, history: tf.Tensor, controls: RepetitionControls
) -> tf.Tensor:
    """Both repetition rules on logits (batch, vocab), each only if a row uses it. A row
    whose every token (but `[UNK]`) the rules would exclude keeps its logits unchanged for
    this step."""
    controlled = tf.cond(
        controls.penalizing,
        lambda: penalize_repeats(logits, history, controls.penalty, controls.window),
        lambda: logits,
    )
    controlled = tf.cond(
        controls.banning,
        lambda: ban_repeated_ngrams(controlled, history, controls.ngram),
        lambda: controlled,
    )
    allowed = tf.math.is_finite(controlled + _never_unk(logits.shape[-1]))
    return tf.where(tf.reduce_any(allowed, axis=1, keepdims=True), controlled, logits)


def push_history(history: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
    """`history` (batch, history) with each row's new token `ids` (batch,) at its end."""
    return tf.concat([history[:, 1:], ids[:, None]], axis=1)
