"""Sampling from a LiteRT export (`textgen export --format litert`) without TensorFlow's
generator: the NumPy loop (`textgen.generate.numpy_loop`) over the file's one-token
`step` signature, run by the LiteRT interpreter (`ai-edge-litert`).

What an app runs on a phone: feed the start token and the prompt one token at a time,
then draw each next token from the logits as textgen's generator does (so a seed gives
the same text), and write it out with the vocabulary's spacing rules. `textgen sample
--litert DIR` runs it.
"""

from __future__ import annotations

import os

import numpy as np

from textgen.core.config import SampleConfig
from textgen.core.errors import ExportError
from textgen.data.levels import level_class
from textgen.data.vocabulary import UNK, Vocabulary, text_ids, token_piece
from textgen.export.litert_format import MODEL_FILE, read_metadata
from textgen.generate.loop_sampler import LoopSampler
from textgen.generate.numpy_loop import NumpyLoop

_NO_INDEX = "--max-copy needs the run's training text: sample the run folder, not --litert"


class LiteRTSampler(LoopSampler):
    """Generates text from a LiteRT export folder (see `Sampler` for the interface)."""

    unsupported = {"max_copy": _NO_INDEX}

    def __init__(self, folder: str | os.PathLike, num_threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            message = "--litert needs the LiteRT interpreter: pip install ai-edge-litert"
            raise ExportError(message) from None
        self.meta = read_metadata(folder)
        self.vocab = Vocabulary.load(os.path.join(folder, "vocab.json"))
        interpreter = Interpreter(os.path.join(folder, MODEL_FILE), num_threads=num_threads)
        self.step_runner = interpreter.get_signature_runner("step")
        self.piece = token_piece(self.vocab)  # (textgen.json's glue flags are the same)
        self.items = bool(self.meta["item_start"])
        self.labels = list(self.meta["labels"])
        d, meta = self.meta["defaults"], self.meta
        optional = ("label_strength", "repetition_penalty", "repetition_window", "no_repeat_ngram")
        self.defaults = SampleConfig(
            length=d["length"], temperature=d["temperature"], top_k=d["top_k"], top_p=d["top_p"],
            stop=d["stop"], **{name: d[name] for name in optional if name in d},
        )  # fmt: skip
        zero = np.zeros([1, meta["state_size"]], np.float32)
        self.loop = NumpyLoop(
            self.step, zero, self.encode, self.piece, [UNK, *self.vocab.tokens],
            meta["start_id"], meta["item_stops"], guided=bool(self.labels),
            cap=d["max_new_tokens_cap"], heals=level_class(self.vocab.level).heals,
        )  # fmt: skip

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, as textgen's tokenizer cuts it (TensorFlow's string ops only
        for what `text_ids` cannot read: non-ASCII words, lowercased non-ASCII text)."""
        ids = text_ids(self.vocab, text)
        if ids is None:
            from textgen.data.tokenizers import Tokenizer

            ids = Tokenizer(self.vocab).encode_text(text).tolist()
        return [int(i) for i in ids]

    def step(self, token: int, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The logits (vocab,) after `token`, and the state after it."""
        out = self.step_runner(ids=np.array([token], np.int32), state=state)
        return out["logits"][0], out["state"]

    def score(self, text: str) -> tuple[float, int]:
        """Mean NLL per token (nats) of `text` read from the start of a line, and its token
        count: `Run.score`, through the LiteRT file."""
        ids = self.encode(text)
        state = np.zeros([1, self.meta["state_size"]], np.float32)
        total, previous = 0.0, self.meta["start_id"]
        for token in ids:
            logits, state = self.step(previous, state)
            logits = logits.astype(np.float64)
            top = logits.max()
            total += top + np.log(np.exp(logits - top).sum()) - logits[token]
            previous = token
        return (total / len(ids) if ids else 0.0), len(ids)
