"""The reference sampling loop around a LiteRT export (`textgen export --format litert`).

What an app runs on a phone, in Python with the LiteRT interpreter (`ai-edge-litert`):
feed the start token and the prompt one token at a time through the `step` signature,
then draw each next token from the logits, as textgen's generator does (the same
temperature / top-k / top-p rules and the same counter-based noise, so a seed gives the
same text), and write it out with the vocabulary's spacing rules. `textgen sample
--litert DIR` runs it. The web export's `textgen.js` is this loop in JavaScript.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from textgen.core.errors import ConfigError, ExportError
from textgen.data.items import strip_markers
from textgen.data.tokenizers import UNK_ID, Vocabulary
from textgen.export.litert import MODEL_FILE, read_metadata
from textgen.generate.stops import StopStrings

_MASK = np.uint64(0xFFFFFFFF)


def _mix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (as `textgen.generate.sampling._mix32`), on uint64 arrays."""
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x85EBCA6B)) & _MASK
    h = h ^ (h >> np.uint64(13))
    h = (h * np.uint64(0xC2B2AE35)) & _MASK
    return h ^ (h >> np.uint64(16))


def gumbel_noise(seed: int, stream: int, step: int, vocab_size: int) -> np.ndarray:
    """(vocab,) float32 Gumbel noise: `textgen.generate.sampling.gumbel_noise`, one row and step."""
    u32 = lambda x: np.uint64(x & 0xFFFFFFFF)  # noqa: E731
    key = _mix32(u32(step * 0x9E3779B9 + 0x7F4A7C15))
    key = _mix32(key ^ u32(stream))
    key = _mix32(key ^ u32(seed >> 32))
    key = _mix32(key ^ u32(seed))
    ids = np.arange(vocab_size, dtype=np.uint64)
    token = _mix32((ids * np.uint64(0x61C88647)) & _MASK)
    bits = _mix32(key ^ token) >> np.uint64(8)
    uniform = (bits.astype(np.float32) + np.float32(0.5)) / np.float32(1 << 24)
    return -np.log(-np.log(uniform))


def top_filter(scaled: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
    """`textgen.generate.sampling.top_filter` for one row: outside top-k / top-p set to -inf."""
    ranked = np.sort(scaled)[::-1]
    k_min = ranked[min(max(top_k - 1, 0), len(ranked) - 1)] if top_k > 0 else -np.inf
    ranked = np.where(ranked >= k_min, ranked, -np.inf)
    probs = np.exp(ranked - ranked[0])
    probs = (probs / probs.sum()).astype(np.float32)
    mass_before = np.cumsum(probs) - probs
    kept = (mass_before < top_p) | (top_p >= 1.0)
    p_min = np.min(np.where(kept, ranked, np.inf))
    return np.where(scaled >= max(k_min, p_min), scaled, -np.inf).astype(np.float32)


def choose(logits, temperature, top_k, top_p, seed, stream, step) -> int:
    """The next token, as `textgen.generate.sampling.choose_tokens` picks it."""
    scaled = logits.astype(np.float32) * np.float32(1.0 / temperature if temperature > 0 else 1.0)
    scaled[UNK_ID] = -np.inf  # never drawn
    if top_k > 0 or top_p < 1.0:
        scaled = top_filter(scaled, top_k, top_p)
    if temperature > 0:
        scaled = scaled + gumbel_noise(seed, stream, step, len(scaled))
    return int(np.argmax(scaled))


class LiteRTSampler:
    """Generates text from a LiteRT export folder."""

    def __init__(self, folder: str | os.PathLike, num_threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            message = "--litert needs the LiteRT interpreter: pip install ai-edge-litert"
            raise ExportError(message) from None
        self.meta = read_metadata(folder)
        self.vocab = Vocabulary.load(os.path.join(folder, "vocab.json"))
        interpreter = Interpreter(os.path.join(folder, MODEL_FILE), num_threads=num_threads)
        self.step = interpreter.get_signature_runner("step")
        self.tokens = ["[UNK]", *self.vocab.tokens]
        self.glue_left = self.meta["glue_left"]
        self.glue_right = self.meta["glue_right"]
        self._tokenizer = None

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, as textgen's tokenizer cuts it."""
        if self._tokenizer is None:
            from textgen.data.tokenizers import Tokenizer

            self._tokenizer = Tokenizer(self.vocab)
        return [int(i) for i in self._tokenizer.encode_text(text)]

    def piece(self, prev: int, token: int) -> str:
        glued = self.glue_right[prev] or self.glue_left[token]
        return ("" if glued else " ") + self.tokens[token]

    def stream(
        self,
        prompt: str = "",
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
        stream_index: int = 0,
        label: str | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """The completion of `prompt`, piece by piece; unset settings: the run's."""
        d = self.meta["defaults"]
        length = d["length"] if max_new_tokens is None else max_new_tokens
        length = min(length, d["max_new_tokens_cap"])
        temperature = d["temperature"] if temperature is None else temperature
        top_k = d["top_k"] if top_k is None else top_k
        top_p = d["top_p"] if top_p is None else top_p
        item_stops = self.meta["item_stops"]  # where an item ends (an item run)
        stops = StopStrings(d["stop"] if stop is None else [*stop, *item_stops])
        prefix = self.meta["item_start"]
        if label:
            if label not in self.meta["labels"]:
                known = ", ".join(self.meta["labels"]) or "none (an unlabelled run)"
                raise ConfigError(f"unknown label {label!r}; this export knows: {known}")
            prefix += self.meta["labels"][label]
        ids = [self.meta["start_id"], *self.encode(prefix + prompt)]
        state = np.zeros([1, self.meta["state_size"]], np.float32)
        for token in ids:
            out = self.step(ids=np.array([token], np.int32), state=state)
            state = out["state"]
        prev, pending = ids[-1], ""
        for step in range(length):
            token = choose(out["logits"][0], temperature, top_k, top_p, seed, stream_index, step)
            ready, pending, stopped = stops.split_stream(pending + self.piece(prev, token))
            if strip_markers(ready):
                yield strip_markers(ready)
            if stopped:
                return
            out = self.step(ids=np.array([token], np.int32), state=state)
            state, prev = out["state"], token
        if strip_markers(pending):
            yield strip_markers(pending)

    def generate(self, prompt: str = "", **settings) -> str:
        return "".join(self.stream(prompt, **settings))

    def score(self, text: str) -> tuple[float, int]:
        """Mean NLL per token (nats) of `text` read from the start of a line, and its token
        count: `textgen.runs.run.Run.score`, through the LiteRT file."""
        ids = self.encode(text)
        state = np.zeros([1, self.meta["state_size"]], np.float32)
        total, previous = 0.0, self.meta["start_id"]
        for token in ids:
            out = self.step(ids=np.array([previous], np.int32), state=state)
            logits = out["logits"][0].astype(np.float64)
            top = logits.max()
            total += top + np.log(np.exp(logits - top).sum()) - logits[token]
            state, previous = out["state"], token
        return (total / len(ids) if ids else 0.0), len(ids)
