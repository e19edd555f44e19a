"""The copy guard: samples that never hold a span of N characters of the training text.

`SpanIndex` is a Bloom filter of every N-character span of the training text as the model
reads it (its token ids written back as text, so lowercasing and word spacing match what
the model writes). It is built once in NumPy chunks and cached beside the run's token ids
(`textgen.token_ids`). Each span's bit positions come from two polynomial hashes modulo
primes below 2**31 (Kirsch & Mitzenmacher's double hashing). A Bloom filter has no false
negatives: a span of the text is always found, so the guarantee holds; a false positive
only turns away a candidate that was in fact new (`SpanIndex.false_positive_rate`).

`CopyGuard` is the lookup inside the generation loop (a `tf.Module`, so the export carries
it): each step, the best token by sampling score (scaled logits + Gumbel noise) is checked;
only if it would complete an N-character span of the index are the `CANDIDATES` best
checked and the first allowed one taken (with Gumbel noise, a draw from the distribution
without the excluded tokens). When every candidate is excluded, the row ends there (a
shorter sample, never a copy).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from textgen.fileio import atomic_open, atomic_write_json
from textgen.tokenizers import Vocabulary, glue_flags

_PRIMES = (2_147_483_647, 2_147_483_629)
_BASES = (911_382_323, 972_663_749)
UNK_CODE = 0x110000  # `[UNK]` as text: no code point, so no sample can match it
CANDIDATES = 16  # tokens checked per step, best first
MAX_PROBES = 6  # bit positions per span, at most (each costs a memory access per lookup)
BITS_PER_SPAN = 16  # filter size (rounded up to a power of two) ...
MAX_FILTER_BITS = 1 << 33  # ... within 1 GiB
_MIN_FILTER_BITS = 1 << 16
_CHUNK_TOKENS = 1 << 22  # tokens written back to text per NumPy pass


def span_weights(span: int) -> np.ndarray:
    """(2, span) int64: base**(span-1-i) mod prime, per hash. A window's hash is its code
    points' dot product with these, mod the prime: exact in int64 (codes < 2**21,
    weights < 2**31, span <= 1024)."""
    return np.array(
        [[pow(b, span - 1 - i, p) for i in range(span)] for b, p in zip(_BASES, _PRIMES)],
        np.int64,
    )


def span_hashes(codes: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """Both hashes of every `span`-long window of `codes` (int64 code points)."""
    count = len(codes) - span + 1
    hashes = []
    for weights, prime in zip(span_weights(span), _PRIMES):
        total = np.zeros(count, np.int64)
        for i, weight in enumerate(weights):
            total += codes[i : i + count] * weight
        hashes.append(total % prime)
    return hashes[0], hashes[1]


def piece_table(vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """Each token's text as code points: codes (2, vocab, width) int32, -1 padded, and
    lengths (2, vocab); [0] without and [1] with the leading space detokenizing adds."""
    texts = [[UNK_CODE], *([ord(c) for c in token] for token in vocab.tokens)]
    width = max(len(t) for t in texts) + 1
    codes = np.full((2, len(texts), width), -1, np.int32)
    lengths = np.zeros((2, len(texts)), np.int32)
    for i, text in enumerate(texts):
        codes[0, i, : len(text)] = text
        codes[1, i, : len(text) + 1] = [ord(" "), *text]
        lengths[:, i] = len(text), len(text) + 1
    return codes, lengths


def text_codes(ids: np.ndarray, vocab: Vocabulary) -> Iterator[np.ndarray]:
    """The text of token `ids` as int64 code points, chunk by chunk (as `Tokenizer.decode`
    writes it: a space between tokens unless one of them glues)."""
    codes, _ = piece_table(vocab)
    left, right = glue_flags(vocab)
    prev = None
    for start in range(0, len(ids), _CHUNK_TOKENS):
        chunk = np.asarray(ids[start : start + _CHUNK_TOKENS], np.int64)
        before = np.concatenate([[chunk[0] if prev is None else prev], chunk[:-1]])
        space = ~(right[before] | left[chunk])
        if prev is None:
            space[0] = False  # nothing precedes the first token
        rows = codes[space.astype(np.intp), chunk]  # (tokens, width)
        yield rows[rows >= 0].astype(np.int64)
        prev = chunk[-1]


def bit_positions(h1, h2, probe, mask):
    """A span's `probe`-th bit in a filter of mask + 1 bits (a power of two), from its two
    31-bit hashes joined into two 62-bit ones (so a filter of over 2**31 bits is covered
    evenly): NumPy arrays or tensors alike."""
    first = (h1 * (1 << 31) + h2) & mask
    step = (h2 * (1 << 31) + h1) & mask
    return (first + probe * step) & mask


@dataclass
class SpanIndex:
    """A Bloom filter of the `span`-character spans of a text."""

    span: int
    bits: np.ndarray  # uint8, a power of two times 8 bits; little-endian bit order
    probes: int  # bit positions per span
    spans: int  # spans inserted

    @classmethod
    def build(cls, chunks: Callable[[], Iterator[np.ndarray]], span: int) -> SpanIndex:
        """The index of the text given by `chunks()` (code point arrays; called twice:
        once to count, once to insert). Memory: the filter plus a few chunk-sized arrays."""
        total = sum(len(chunk) for chunk in chunks())
        spans = max(total - span + 1, 0)
        size = 1 << max(math.ceil(math.log2(max(spans * BITS_PER_SPAN, 1))), 16)
        size = min(max(size, _MIN_FILTER_BITS), MAX_FILTER_BITS)
        probes = int(min(max(round(math.log(2) * size / max(spans, 1)), 1), MAX_PROBES))
        index = cls(span, np.zeros(size // 8, np.uint8), probes, spans)
        carry = np.zeros(0, np.int64)  # the last span-1 codes: spans across chunks count
        for chunk in chunks():
            codes = np.concatenate([carry, chunk])
            if len(codes) >= span:
                index._insert(*span_hashes(codes, span))
            carry = codes[max(len(codes) - (span - 1), 0) :]
        return index

    def _positions(self, h1: np.ndarray, h2: np.ndarray, probe: int) -> np.ndarray:
        return bit_positions(h1, h2, probe, len(self.bits) * 8 - 1)

    def _insert(self, h1: np.ndarray, h2: np.ndarray) -> None:
        for probe in range(self.probes):
            positions = self._positions(h1, h2, probe)
            byte, bit = positions >> 3, positions & 7
            for b in range(8):  # one bit value per pass, so repeated bytes cannot clash
                self.bits[byte[bit == b]] |= np.uint8(1 << b)

    def contains(self, text: str) -> np.ndarray:
        """Whether each `span`-long window of `text` is (probably) in the index."""
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)
        if len(codes) < self.span:
            return np.zeros(0, bool)
        h1, h2 = span_hashes(codes, self.span)
        found = np.ones(len(h1), bool)
        for probe in range(self.probes):
            positions = self._positions(h1, h2, probe)
            found &= (self.bits[positions >> 3] >> (positions & 7)) & 1 == 1
        return found

    @property
    def false_positive_rate(self) -> float:
        """The expected share of new spans the filter reports as found."""
        size = len(self.bits) * 8
        return (1 - math.exp(-self.probes * self.spans / size)) ** self.probes

    # -- the cache: FOLDER/copy-guard-SPAN.bits (the filter) and .json (its shape) ------

    def save(self, folder: Path) -> None:
        with atomic_open(folder / f"copy-guard-{self.span}.bits", "wb") as f:
            f.write(self.bits.tobytes())
        meta = {"span": self.span, "probes": self.probes, "spans": self.spans}
        atomic_write_json(folder / f"copy-guard-{self.span}.json", meta)  # last: marks it whole

    @classmethod
    def load(cls, folder: Path, span: int) -> SpanIndex | None:
        """The cached index (its filter memory-mapped), or None if there is none."""
        try:
            meta = json.loads((folder / f"copy-guard-{span}.json").read_text(encoding="utf-8"))
            bits = np.memmap(folder / f"copy-guard-{span}.bits", np.uint8, mode="r")
        except (OSError, ValueError):
            return None
        return cls(span, bits, int(meta["probes"]), int(meta["spans"]))


def run_span_index(config, vocab: Vocabulary, span: int) -> SpanIndex:
    """The span index of a run's training text: from the data cache, or built into it now
    (from the run's corpus, which must then be readable: a CorpusError names it)."""
    from textgen.corpus import load_corpus
    from textgen.token_ids import cache_key, corpus_ids

    sha256 = config.corpus.get("sha256", "")
    folder = Path(config.data.data_dir) / "ids" / cache_key(sha256, vocab)
    index = SpanIndex.load(folder, span)
    if index is None:
        corpus = load_corpus(config.data)
        train = corpus_ids(corpus, corpus.fingerprint()["sha256"], vocab, config.data.data_dir)
        index = SpanIndex.build(lambda: text_codes(train.train, vocab), span)
        try:
            index.save(folder)
        except OSError:  # a read-only data dir: use it unsaved
            pass
    return index


class CopyGuard(tf.Module):
    """A `SpanIndex` inside the graph: picks each row's next token among candidates that
    complete no indexed span (see the module doc).

    Each row carries a `tail` (batch, span - 1) int32: the last code points of its
    completion so far, right-aligned, -1 before its start (spans are checked within the
    completion, not across the prompt).
    """

    def __init__(self, index: SpanIndex, vocab: Vocabulary):
        super().__init__(name="copy_guard")
        self.span = index.span
        self.tail_size = index.span - 1
        self.filter_bytes = len(index.bits)
        words = np.frombuffer(np.ascontiguousarray(index.bits).tobytes(), "<i4")
        self.filter = tf.Variable(words, trainable=False, name="span_filter")
        self._mask = tf.constant(len(index.bits) * 8 - 1, tf.int64)
        self._probes = tf.range(index.probes, dtype=tf.int64)
        self._weights = tf.constant(span_weights(index.span))  # (2, span)
        self._primes = tf.constant(_PRIMES, tf.int64)
        codes, lengths = piece_table(vocab)
        self._codes, self._lengths = tf.constant(codes), tf.constant(lengths)
        left, right = glue_flags(vocab)
        self._left, self._right = tf.constant(left), tf.constant(right)
        self._candidates = min(CANDIDATES, vocab.size)

    def empty_tail(self, batch) -> tf.Tensor:
        return tf.fill([batch, self.tail_size], -1)

    def _pieces(self, prev: tf.Tensor, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Code points (batch, n, width) and lengths (batch, n) of `ids` (batch, n) after
        each row's `prev` (batch,) token."""
        glued = tf.gather(self._right, prev)[:, None] | tf.gather(self._left, ids)
        where = tf.stack([tf.cast(~glued, tf.int32), ids], axis=-1)
        return tf.gather_nd(self._codes, where), tf.gather_nd(self._lengths, where)

    def copied(self, tail: tf.Tensor, prev: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """(batch, n) bool: would adding token `ids` (batch, n) complete an indexed span?"""
        codes, lengths = self._pieces(prev, ids)
        width = codes.shape[-1]
        tails = tf.broadcast_to(tail[:, None, :], [*tf.unstack(tf.shape(ids)), self.tail_size])
        text = tf.concat([tails, codes], axis=-1)  # (batch, n, span - 1 + width)
        ends = tf.range(width)  # a window ends at each code of the piece
        windows = tf.gather(text, ends[:, None] + tf.range(self.span)[None, :], axis=2)
        valid = (ends < lengths[..., None]) & (windows[..., 0] >= 0)  # (batch, n, width)
        hashes = tf.reduce_sum(
            tf.cast(windows, tf.int64)[..., None, :] * self._weights, axis=-1
        ) % self._primes  # (batch, n, width, 2)
        positions = bit_positions(hashes[..., :1], hashes[..., 1:], self._probes, self._mask)
        words = tf.gather(self.filter, tf.bitwise.right_shift(positions, 5))
        set_bits = tf.bitwise.right_shift(words, tf.cast(positions & 31, tf.int32)) & 1
        found = tf.reduce_all(set_bits == 1, axis=-1)
        return tf.reduce_any(valid & found, axis=-1)

    def choose(
        self, scores: tf.Tensor, tail: tf.Tensor, prev: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The best-scoring token per row that completes no indexed span among its
        `CANDIDATES` best, and whether the row had one (batch,) each. `scores` (batch,
        vocab): -inf marks excluded tokens. The best token alone is checked first; the
        others only when a row's best would copy (rare, and then for the whole batch)."""
        best = tf.argmax(scores, axis=-1, output_type=tf.int32)

        def runners_up():
            values, ids = tf.math.top_k(scores, self._candidates)
            allowed = (values > float("-inf")) & ~self.copied(tail, prev, ids)
            first = tf.argmax(tf.cast(allowed, tf.int32), axis=1, output_type=tf.int32)
            return tf.gather(ids, first, batch_dims=1), tf.reduce_any(allowed, axis=1)

        copying = self.copied(tail, prev, best[:, None])[:, 0]
        return tf.cond(
            tf.reduce_any(copying), runners_up, lambda: (best, tf.ones_like(copying))
        )

    def advance(self, tail: tf.Tensor, prev: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """The tail after each row adds token `ids` (batch,)."""
        codes, lengths = self._pieces(prev, ids[:, None])
        text = tf.concat([tail, codes[:, 0]], axis=1)
        keep = lengths[:, 0][:, None] + tf.range(self.tail_size)[None, :]
        return tf.gather(text, keep, batch_dims=1)
