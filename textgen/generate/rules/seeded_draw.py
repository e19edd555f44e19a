"""The seeded draw: each row's token is the argmax of its scores plus Gumbel noise (a
draw from the softmax; greedy rows add none).

The noise comes from a counter-based hash of (seed, stream, step, token id): a row's
draws depend only on its own seed, never on what else is in the batch, so the same seed
gives the same text in every sampler (graph, NumPy, LiteRT, the web page's JavaScript).
"""

from __future__ import annotations

import functools

import numpy as np

from textgen.core.lazy_tf import tf
from textgen.generate.rules.never_unk import NeverUnk
from textgen.generate.rules.temperature import Temperature

_MASK = np.uint64(0xFFFFFFFF)


def _mix32_numpy(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer on uint64 arrays."""
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x85EBCA6B)) & _MASK
    h = h ^ (h >> np.uint64(13))
    h = (h * np.uint64(0xC2B2AE35)) & _MASK
    return h ^ (h >> np.uint64(16))


def _mix32_int(h: int) -> int:
    """MurmurHash3's 32-bit finalizer on a Python int (a row's key: one number)."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


@functools.lru_cache(maxsize=8)
def _token_hashes(vocab_size: int) -> np.ndarray:
    """Each token id's hash (vocab,) uint64: the same every step, so made once."""
    ids = np.arange(vocab_size, dtype=np.uint64)
    return _mix32_numpy((ids * np.uint64(0x61C88647)) & _MASK)


def _u32(h: tf.Tensor) -> tf.Tensor:
    """The low 32 bits of int64 `h`, as uint32 (TensorFlow's uint32 ops wrap mod 2**32)."""
    return tf.cast(tf.bitwise.bitwise_and(h, tf.constant(0xFFFFFFFF, tf.int64)), tf.uint32)


def _mix32(h: tf.Tensor) -> tf.Tensor:
    """MurmurHash3's 32-bit finalizer on uint32 tensors."""
    xor, shr = tf.bitwise.bitwise_xor, tf.bitwise.right_shift
    h = xor(h, shr(h, tf.constant(16, tf.uint32)))
    h = h * tf.constant(0x85EBCA6B, tf.uint32)
    h = xor(h, shr(h, tf.constant(13, tf.uint32)))
    h = h * tf.constant(0xC2B2AE35, tf.uint32)
    return xor(h, shr(h, tf.constant(16, tf.uint32)))


class SeededDraw:
    """The noise and the argmax (see the module doc)."""

    @staticmethod
    def noise_numpy(seed: int, stream: int, step: int, vocab_size: int) -> np.ndarray:
        """(vocab,) float32 Gumbel noise of one row and step."""
        low = 0xFFFFFFFF
        key = _mix32_int((step * 0x9E3779B9 + 0x7F4A7C15) & low)
        for part in (stream, seed >> 32, seed):
            key = _mix32_int(key ^ (part & low))
        bits = _mix32_numpy(np.uint64(key) ^ _token_hashes(vocab_size)) >> np.uint64(9)
        uniform = (bits.astype(np.float32) + np.float32(0.5)) / np.float32(1 << 23)
        return -np.log(-np.log(uniform))

    @staticmethod
    def numpy(scaled: np.ndarray, temperature: float, seed: int, stream: int, step: int):
        """One row's scores (vocab,) float32 whose argmax is its token: `scaled` (-inf on
        excluded tokens, `[UNK]` among them) plus the noise if the row is sampled."""
        scores = NeverUnk.numpy(scaled)
        if Temperature.drawn(temperature):
            scores = scores + SeededDraw.noise_numpy(seed, stream, step, len(scores))
        return scores

    @staticmethod
    def noise(
        seeds: tf.Tensor, steps: tf.Tensor, vocab_size: int, per_row: bool = False
    ) -> tf.Tensor:
        """Gumbel(0, 1) noise from seeds (batch, 2) int64 [seed, stream].

        `steps` is a scalar step, giving (batch, vocab), or a vector of steps, giving
        (steps, batch, vocab): a whole chunk of a generation loop's noise at once, equal
        step by step to the scalar form. With `per_row`, `steps` (steps, batch) gives each
        row its own steps (rows continuing from different points).
        """
        xor, shr = tf.bitwise.bitwise_xor, tf.bitwise.right_shift
        seed, stream = seeds[:, 0], seeds[:, 1]
        steps = _u32(tf.cast(steps, tf.int64))
        steps = steps if per_row else steps[..., None]  # (..., batch) or (..., 1)
        key = _mix32(
            steps * tf.constant(0x9E3779B9, tf.uint32) + tf.constant(0x7F4A7C15, tf.uint32)
        )
        key = _mix32(xor(key, _u32(stream)))
        key = _mix32(xor(key, _u32(shr(seed, tf.constant(32, tf.int64)))))
        key = _mix32(xor(key, _u32(seed)))  # (..., batch)
        ids = tf.cast(tf.range(vocab_size), tf.uint32)
        token = _mix32(ids * tf.constant(0x61C88647, tf.uint32))  # (vocab,)
        bits = shr(_mix32(xor(key[..., None], token)), tf.constant(9, tf.uint32))
        # bits: (..., batch, vocab), 23 random bits each, so that bits + 0.5 is exact in
        # float32 and u stays below 1 (with 24, the largest rounded to 1: infinite noise)
        uniform = (tf.cast(bits, tf.float32) + 0.5) / float(1 << 23)  # in (0, 1)
        # -log(-log(u)), the negations written as products with -1 (exact): without XLA,
        # Grappler fuses Neg-Log-Neg-Log into one _UnaryOpsComposition op that runs ~4x slower.
        return tf.math.log(tf.math.log(uniform) * -1.0) * -1.0

    @staticmethod
    def graph(noise: tf.Tensor, temperature: tf.Tensor) -> tf.Tensor:
        """What is added to scaled logits before the argmax: `noise` (..., batch, vocab)
        for sampled rows, 0 for greedy rows, and -inf on `[UNK]`."""
        drawn = Temperature.graph_drawn(temperature)[:, None]
        return tf.where(drawn, noise, 0.0) + NeverUnk.graph(noise.shape[-1])
