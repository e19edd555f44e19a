"""Choosing the next token from logits: greedy, temperature, top-k, top-p.

Every parameter is per row, so one batch can mix settings (as TF Serving batches do).
Randomness comes from a counter-based hash of (seed, stream, step, token id): a row's
draws depend only on its own seed, never on what else is in the batch, and the same
seed gives the same text in the sampler, the streaming sampler and the export.
"""

from __future__ import annotations

import tensorflow as tf

from textgen.tokenizers import UNK_ID

_MASK32 = 0xFFFFFFFF
_NEG_INF = float("-inf")


_xor, _and, _shr = tf.bitwise.bitwise_xor, tf.bitwise.bitwise_and, tf.bitwise.right_shift


def _u32(h: tf.Tensor) -> tf.Tensor:
    return _and(h, tf.constant(_MASK32, tf.int64))


def _mul32(h: tf.Tensor, constant: int) -> tf.Tensor:
    """(h * constant) mod 2**32 for int64 h < 2**32, without int64 overflow."""
    low, high = constant & 0xFFFF, constant >> 16
    high_part = _and(h * high, tf.constant(0xFFFF, tf.int64)) * 65536
    return _u32(h * low + high_part)


def _mix32(h: tf.Tensor) -> tf.Tensor:
    """MurmurHash3's 32-bit finalizer on int64 tensors holding uint32 values."""
    h = _xor(h, _shr(h, tf.constant(16, tf.int64)))
    h = _mul32(h, 0x85EBCA6B)
    h = _xor(h, _shr(h, tf.constant(13, tf.int64)))
    h = _mul32(h, 0xC2B2AE35)
    return _xor(h, _shr(h, tf.constant(16, tf.int64)))


def gumbel_noise(seeds: tf.Tensor, steps: tf.Tensor, vocab_size: int) -> tf.Tensor:
    """Gumbel(0, 1) noise from seeds (batch, 2) int64 [seed, stream].

    `steps` is a scalar step, giving (batch, vocab), or a vector of steps, giving
    (steps, batch, vocab): a whole chunk of a generation loop's noise at once, equal
    step by step to the scalar form.
    """
    seed, stream = seeds[:, 0], seeds[:, 1]
    steps = tf.cast(steps, tf.int64)[..., None]  # (..., 1)
    key = _mix32(_u32(steps * 0x9E3779B9 + 0x7F4A7C15))
    key = _mix32(_xor(key, _u32(stream)))
    key = _mix32(_xor(key, _u32(_shr(seed, tf.constant(32, tf.int64)))))
    key = _mix32(_xor(key, _u32(seed)))  # (..., batch)
    token = _mix32(_u32(tf.range(vocab_size, dtype=tf.int64) * 0x61C88647))  # (vocab,)
    bits = _shr(_mix32(_xor(key[..., None], token)), tf.constant(8, tf.int64))
    # bits: (..., batch, vocab), 24 random bits each
    uniform = (tf.cast(bits, tf.float32) + 0.5) / float(1 << 24)  # in (0, 1)
    return -tf.math.log(-tf.math.log(uniform))


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


def choose_tokens(
    logits: tf.Tensor,
    inverse_t: tf.Tensor,
    top_k: tf.Tensor,
    top_p: tf.Tensor,
    noise: tf.Tensor,
    filtering: bool,
) -> tf.Tensor:
    """The next token per row, (batch,) int32: the one generation step every sampler runs.

    `inverse_t` is `inverse_temperature(temperature)` and `noise` this step's
    `step_noise(gumbel_noise(...), temperature)` (batch, vocab), both prepared once per
    loop; greedy rows take the argmax, `[UNK]` is never chosen. `filtering` (a Python
    bool, `needs_filtering` decided once per loop) applies top-k / top-p.
    """
    scaled = logits * inverse_t
    if filtering:
        scaled = top_filter(scaled, top_k, top_p)
    return tf.argmax(scaled + noise, axis=-1, output_type=tf.int32)
