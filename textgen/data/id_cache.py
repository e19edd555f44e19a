"""A corpus as token ids on disk: encoded once in a streaming pass, then memory-mapped.

Training reads windows straight from the mapped file, so a corpus of any size costs
disk, not memory. The files live in the data cache (`DataConfig.data_dir`/ids/KEY/),
KEY being a hash of the corpus text and the vocabulary: a resumed run, `evaluate` and
`compare`'s runs on the same text find them ready. Delete the folder to reclaim space.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textgen.core.fileio import atomic_open
from textgen.data.id_files import cache_key, ids_dtype, ids_folder, open_ids  # noqa: F401
from textgen.data.levels import Level, level_of
from textgen.data.vocabulary import Vocabulary


@dataclass
class CorpusIds:
    """Training and validation token ids (read-only arrays, usually memory-mapped)."""

    train: np.ndarray
    validation: np.ndarray


def corpus_ids(corpus, corpus_sha256: str, vocab: Vocabulary, data_dir) -> CorpusIds:
    """The ids of `corpus` under `vocab`, from the cache or encoded into it now.

    If the data dir cannot be written, the ids are encoded into memory instead.
    """
    level = level_of(vocab)
    dtype = ids_dtype(vocab.size)
    folder = ids_folder(data_dir, corpus_sha256, vocab)
    arrays = {}
    for name, chunks in (("train", corpus.train_chunks), ("validation", corpus.validation_chunks)):
        path = folder / f"{name}.{dtype.name}"
        try:
            if not path.is_file():
                _encode_to_file(level, chunks(), path, dtype)
            arrays[name] = open_ids(path, dtype)
        except OSError:
            arrays[name] = encode_chunks(level, chunks(), dtype)
    return CorpusIds(arrays["train"], arrays["validation"])


def encode_chunks(level: Level, chunks: Iterable[str], dtype=np.int32) -> np.ndarray:
    """The ids of a text given as chunks, in memory (`level`: the vocabulary's)."""
    parts = [level.encode_text(chunk).astype(dtype) for chunk in level.cut(chunks)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _encode_to_file(level: Level, chunks: Iterable[str], path: Path, dtype) -> None:
    """Write the ids chunk by chunk to a temporary file, renamed into place when whole."""
    with atomic_open(path, "wb") as f:
        for chunk in level.cut(chunks):
            f.write(level.encode_text(chunk).astype(dtype).tobytes())
