"""Where a corpus's token ids live in the data cache, without TensorFlow: the folder of a
(corpus, vocabulary) pair, the files' integer type, opening them memory-mapped. Written by
`textgen.data.id_cache`; the copy guard's span index lives beside them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from textgen.data.vocabulary import Vocabulary


def ids_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every id: 1 byte per token for char level."""
    for dtype in (np.uint8, np.uint16):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.int32)


def cache_key(corpus_sha256: str, vocab: Vocabulary) -> str:
    identity = {"corpus": corpus_sha256, "level": vocab.level, "lowercase": vocab.lowercase}
    identity["tokens"] = vocab.tokens
    if vocab.model is not None:
        identity["model"] = vocab.model_sha256
    return hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()[:24]


def ids_folder(data_dir, corpus_sha256: str, vocab: Vocabulary) -> Path:
    """The cache folder of a corpus's ids under `vocab`."""
    return Path(data_dir) / "ids" / cache_key(corpus_sha256, vocab)


def open_ids(path: Path, dtype) -> np.ndarray:
    """A cached ids file, memory-mapped (read-only)."""
    if path.stat().st_size == 0:  # numpy cannot map an empty file
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r")
