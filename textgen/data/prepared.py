"""What a run trains on: the corpus streamed, fingerprinted, tokenized and cached as ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textgen.core.config import RunConfig
from textgen.core.errors import CorpusTooShort
from textgen.data.corpus import load_corpus
from textgen.data.id_cache import corpus_ids
from textgen.data.levels import level_class
from textgen.data.tokenizers import count_tokens
from textgen.data.vocabulary import Vocabulary, extend_vocabulary
from textgen.data.windows import stream_windows_per_pass


@dataclass
class PreparedData:
    """Everything training needs from the corpus, computed before any file is written."""

    vocab: Vocabulary
    num_windows: int  # training windows of seq_len+1 tokens
    train_ids: np.ndarray  # memory-mapped from the data cache (textgen.data.id_cache)
    val_ids: np.ndarray
    fingerprint: dict

    @property
    def characters_per_token(self) -> float:
        return characters_per_token(self.fingerprint)


def characters_per_token(fingerprint: dict) -> float:
    """How many characters a token reads on a run's validation text (else its training
    text), from its corpus fingerprint: bits per character = nats/token / ln 2 / this.
    1.0 for runs trained before the fingerprint counted tokens."""
    for part in ("validation", "train"):
        if fingerprint.get(f"{part}_tokens"):
            return fingerprint[f"{part}_chars"] / fingerprint[f"{part}_tokens"]
    return 1.0


def prepare_data(
    config: RunConfig, vocab: Vocabulary | None = None, extend: Vocabulary | None = None
) -> PreparedData:
    """Stream the corpus: fingerprint it, build the vocabulary (or reuse `vocab`, or
    `extend` one with the corpus' new tokens), encode it to ids on disk, check sizes.
    Memory stays small whatever the corpus size."""
    data = config.data
    corpus = load_corpus(data)
    fingerprint = corpus.fingerprint()
    size = data.max_vocab or level_class(data.level).default_size
    if extend is not None:
        counts = count_tokens(corpus.train_chunks(), data.level, data.lowercase)
        vocab = extend_vocabulary(extend, counts, size)
    elif vocab is None:
        vocab = Vocabulary.learn(corpus.train_chunks, data.level, data.lowercase, size)
    ids = corpus_ids(corpus, fingerprint["sha256"], vocab, data.data_dir)
    fingerprint.update(train_tokens=len(ids.train), validation_tokens=len(ids.validation))
    window = data.seq_len + 1
    if len(ids.train) < window:
        raise CorpusTooShort(
            f"the corpus is too short: {len(ids.train)} training tokens, but one window "
            f"needs seq_len+1 = {window}; lower --seq-len or add text"
        )
    windows = len(ids.train) // window
    if config.train.stateful:
        windows = stream_windows_per_pass(len(ids.train), data.seq_len, config.train.batch_size)
        if windows < 1:
            raise CorpusTooShort(
                f"--stateful cuts the corpus into {config.train.batch_size} streams of "
                f"{len(ids.train) // config.train.batch_size} tokens, shorter than one window "
                f"of {window}; lower --batch-size or --seq-len"
            )
    elif windows < config.train.batch_size:
        raise CorpusTooShort(
            f"the corpus makes {windows} training windows of {window} tokens, fewer than "
            f"--batch-size {config.train.batch_size}; lower --batch-size or --seq-len"
        )
    return PreparedData(vocab, windows, ids.train, ids.validation, fingerprint)
