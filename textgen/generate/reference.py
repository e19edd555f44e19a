"""The reference sampling loop in NumPy: the readable specification of the token choice.

One row, one token at a time, over any one-token step `(token id, state) -> (logits,
state)`: the same temperature / top-k / top-p rules and the same counter-based noise as
the graph loop (`sampling`), so a seed gives the same text. The LiteRT sampler runs it
over a LiteRT file; the web export's `textgen.js` is this loop in JavaScript. No
TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from textgen.data.items import strip_markers
from textgen.data.vocabulary import UNK_ID
from textgen.generate.stops import StopStrings

_MASK = np.uint64(0xFFFFFFFF)


def _mix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (as `sampling._mix32`), on uint64 arrays."""
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x85EBCA6B)) & _MASK
    h = h ^ (h >> np.uint64(13))
    h = (h * np.uint64(0xC2B2AE35)) & _MASK
    return h ^ (h >> np.uint64(16))


def gumbel_noise(seed: int, stream: int, step: int, vocab_size: int) -> np.ndarray:
    """(vocab,) float32 Gumbel noise: `sampling.gumbel_noise` for one row and step."""
    u32 = lambda x: np.uint64(x & 0xFFFFFFFF)  # noqa: E731
    key = _mix32(u32(step * 0x9E3779B9 + 0x7F4A7C15))
    key = _mix32(key ^ u32(stream))
    key = _mix32(key ^ u32(seed >> 32))
    key = _mix32(key ^ u32(seed))
    ids = np.arange(vocab_size, dtype=np.uint64)
    token = _mix32((ids * np.uint64(0x61C88647)) & _MASK)
    bits = _mix32(key ^ token) >> np.uint64(9)
    uniform = (bits.astype(np.float32) + np.float32(0.5)) / np.float32(1 << 23)
    return -np.log(-np.log(uniform))


def top_filter(scaled: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
    """`sampling.top_filter` for one row: outside top-k / top-p set to -inf."""
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
    """The next token, as `sampling.choose_tokens` picks it."""
    scaled = logits.astype(np.float32) * np.float32(1.0 / temperature if temperature > 0 else 1.0)
    scaled[UNK_ID] = -np.inf  # never drawn
    if top_k > 0 or top_p < 1.0:
        scaled = top_filter(scaled, top_k, top_p)
    if temperature > 0:
        scaled = scaled + gumbel_noise(seed, stream, step, len(scaled))
    return int(np.argmax(scaled))


def reference_stream(
    step: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]],
    state: np.ndarray,
    ids: Sequence[int],
    piece: Callable[[int, int], str],
    settings,
    stream: int,
    stops: StopStrings,
    unlabelled: Sequence[int] | None = None,
) -> Iterator[str]:
    """The completion after reading token `ids` (start token first) from `state`, piece by
    piece: `step(token, state)` gives the next logits and state, `piece(prev, token)` a
    token's text; `settings` are resolved `SamplingSettings`. With `unlabelled` ids (the
    prompt without its label), label guidance: each token is chosen from
    `guided_logits` of the two readings."""
    s = settings
    guide = unlabelled is not None
    guide_state = state
    for token in ids:
        logits, state = step(token, state)
    for token in unlabelled or ():
        guide_logits, guide_state = step(token, guide_state)
    prev, pending = ids[-1], ""
    for index in range(s.max_new_tokens):
        scored = guided_logits(logits, guide_logits, s.label_strength) if guide else logits
        token = choose(scored, s.temperature, s.top_k, s.top_p, s.seed, stream, index)
        ready, pending, stopped = stops.split_stream(pending + piece(prev, token))
        if strip_markers(ready):
            yield strip_markers(ready)
        if stopped:
            return
        logits, state = step(token, state)
        if guide:
            guide_logits, guide_state = step(token, guide_state)
        prev = token
    if strip_markers(pending):
        yield strip_markers(pending)


def guided_logits(labelled: np.ndarray, unlabelled: np.ndarray, strength: float) -> np.ndarray:
    """Classifier-free guidance (Sanchez et al., 2023): unlabelled + strength x (labelled -
    unlabelled), in float32 (as `guidance.guided_logits` in the graph)."""
    labelled, unlabelled = labelled.astype(np.float32), unlabelled.astype(np.float32)
    return unlabelled + np.float32(strength) * (labelled - unlabelled)
