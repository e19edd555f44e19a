"""Beam search over the NumPy loop: the graph's search (`textgen.generate.beams`, whose
module doc gives the rules) for one prompt at a time, over any one-token step, so the
NumPy and LiteRT samplers find the TensorFlow generator's beams.

Only how the next tokens are picked differs from sampling: each step every live
hypothesis offers its 2 x width best tokens by the (repetition-controlled) log-softmax,
the candidate checks (copy guard, excluded strings) strike the ones they reject, and the
best 2 x width of all by total log-probability are looked at, best first, in the graph's
order (ties: the earlier hypothesis, then the better-ranked token).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textgen.generate.constrained_beams import constrained_beam_search
from textgen.generate.finish import finish_whole
from textgen.generate.numpy_loop import NumpyLoop, Place, search_scores
from textgen.generate.rules import checks as candidate_checks
from textgen.generate.sampler import Beam
from textgen.generate.settings import SamplingSettings


@dataclass(frozen=True)
class _Hypothesis:
    score: float  # total search score (float32 sums, as the graph's)
    log_p: float  # the model's own log-probability of its tokens
    place: Place  # the network after its tokens; place.text ends with `text`
    text: str  # its completion so far (a healed prompt's backed-off text first)
    tail: str  # the candidate checks' (`rules.checks`)


def beam_search(loop: NumpyLoop, place: Place, settings: SamplingSettings) -> list[Beam]:
    """The finished hypotheses after `place`, best first, with resolved `settings`
    (`beams` wide, `max_new_tokens` long at most; with included texts: `constrained_beams`)."""
    if settings.include:
        return constrained_beam_search(loop, place, settings)
    width = settings.beams
    place = loop.healed_for(place, settings)
    most, stops, checks, size, repetition = loop.search_rules(settings)
    live = [_Hypothesis(0.0, 0.0, place, "", "")]
    skip = len(loop.backed_off(place))  # a healed prompt's text, not shown again
    finished: list[tuple[float, float, int, str]] = []  # (mean score, log_p, tokens, text)
    for t in range(most):
        candidates = []
        for parent, hyp in enumerate(live):
            search, model = search_scores(hyp.place, repetition, loop.unwritten)
            best = np.argsort(-search, kind="stable")[: min(2 * width, len(search))]
            for token in map(int, best):
                value = search[token]
                if any(c.rejects(hyp.tail, hyp.place.last, token) for c in checks):
                    value = -np.inf
                total = np.float32(hyp.score) + np.float32(value)
                if np.isfinite(total):
                    log_p = np.float32(hyp.log_p) + np.float32(model[token])
                    candidates.append((float(total), float(log_p), parent, token))
        candidates.sort(key=lambda c: -c[0])  # stable: the graph's order on ties
        going = []
        for rank, (total, log_p, parent, token) in enumerate(candidates[: 2 * width]):
            hyp = live[parent]
            text = hyp.text + loop.piece(hyp.place.last, token)
            if t + 1 >= most or stops.found_text(text[skip:]):
                if rank < width:
                    mean = float(np.float32(total) / np.float32(t + 1))
                    finished.append((mean, log_p, t + 1, text))
            else:
                going.append((total, log_p, parent, token, text))
        finished = sorted(finished, key=lambda f: -f[0])[:width]  # stable: earlier first
        if len(finished) >= width:
            break
        live = [_grown(loop, size, live[p], total, lp, tok, text)
                for total, lp, p, tok, text in going[:width]]  # fmt: skip
        if not live:
            break
    return [
        Beam(finish_whole(text[skip:], stops), log_p, tokens) for _, log_p, tokens, text in finished
    ]


def _grown(loop: NumpyLoop, size: int, hyp: _Hypothesis, total, log_p, token, text) -> _Hypothesis:
    """`hyp` with `token` added (`size`: the checks' tail)."""
    piece = text[len(hyp.text) :]
    tail = candidate_checks.advance(hyp.tail, piece, size)
    place = loop.advance(hyp.place, token, piece)
    return _Hypothesis(total, log_p, place, text, tail)
