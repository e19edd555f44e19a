"""The copy guard's span index: a Bloom filter of every N-character span of a run's
training text as the model reads it (its token ids written back as text, so lowercasing
and word spacing match what the model writes).

Built once in NumPy chunks and cached beside the run's token ids (`textgen.data.id_cache`).
Each span's bit positions come from two polynomial hashes modulo primes below 2**31
(Kirsch & Mitzenmacher's double hashing). A Bloom filter has no false negatives: a span
of the text is always found, so the guarantee holds; a false positive only turns away a
candidate that was in fact new (`SpanIndex.false_positive_rate`). The lookup inside the
generation loop is `textgen.generate.copy_guard.CopyGuard`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textgen.core.errors import ConfigError
from textgen.core.fileio import atomic_open, atomic_write_json
from textgen.data.vocabulary import Vocabulary, glue_flags

PRIMES = (2_147_483_647, 2_147_483_629)


_BASES = (911_382_323, 972_663_749)


UNK_CODE = 0x110000  # `[UNK]` as text: no code point, so no sample can match it


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
        [[pow(b, span - 1 - i, p) for i in range(span)] for b, p in zip(_BASES, PRIMES)],
        np.int64,
    )


def span_hashes(codes: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """Both hashes of every `span`-long window of `codes` (int64 code points)."""
    count = len(codes) - span + 1
    hashes = []
    for weights, prime in zip(span_weights(span), PRIMES):
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


def run_span_index(config, vocab: Vocabulary, span: int, tensorflow: bool = True) -> SpanIndex:
    """The span index of a run's training text: from the data cache, or built into it now
    from the cached token ids (NumPy), or else from the run's corpus, which must then be
    readable (a CorpusError names it) and is tokenized by TensorFlow: with `tensorflow`
    False that is a ConfigError instead."""
    from textgen.data.id_files import ids_dtype, ids_folder, open_ids

    sha256 = config.corpus.get("sha256", "")
    folder = ids_folder(config.data.data_dir, sha256, vocab)
    index = SpanIndex.load(folder, span)
    if index is not None:
        return index
    cached = folder / f"train.{ids_dtype(vocab.size).name}"
    if cached.is_file():
        train = open_ids(cached, ids_dtype(vocab.size))
    elif not tensorflow:
        raise ConfigError("the copy guard's index is not built yet (TensorFlow builds it)")
    else:
        from textgen.data.corpus import load_corpus
        from textgen.data.id_cache import corpus_ids

        corpus = load_corpus(config.data)
        train = corpus_ids(corpus, corpus.fingerprint()["sha256"], vocab, config.data.data_dir)
        train = train.train
    index = SpanIndex.build(lambda: text_codes(train, vocab), span)
    try:
        index.save(folder)
    except OSError:  # a read-only data dir: use it unsaved
        pass
    return index
