"""Beam search whose every result holds each included text (`--beams N --include TEXT`).

The NumPy beam search (`numpy_beams`), with dynamic beam allocation (Post & Vilar 2018,
as fairseq has it): each hypothesis carries its `Inclusion` (the texts it still owes, a
text it has begun). Each step it offers its 2 x width best tokens and the first token of
each text it owes (where the text may start); a hypothesis writing a text, or at its
deadline, offers only that text's next token. Candidates are grouped into banks by how
many texts they hold, and the width is shared out among the banks (the ones holding more
first), each bank taking its best candidates by total log-probability, the slots a bank
cannot fill going to the best of the rest. Only a hypothesis that holds every text may
finish; finished ones rank by mean log-probability per token, as in `numpy_beams`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textgen.core.errors import ConfigError
from textgen.generate.finish import finish_whole
from textgen.generate.numpy_loop import NumpyLoop, Place, search_scores
from textgen.generate.rules import checks as candidate_checks
from textgen.generate.rules.inclusion import NO_BEAM_HOLDS, Inclusion
from textgen.generate.sampler import Beam
from textgen.generate.settings import SamplingSettings


@dataclass(frozen=True)
class _Hypothesis:
    score: float  # total search score
    log_p: float  # the model's own log-probability of its tokens
    place: Place
    text: str  # its completion so far
    tail: str  # the candidate checks'
    owes: Inclusion  # the texts it still owes


@dataclass(frozen=True)
class _Candidate:
    total: float
    log_p: float
    parent: int
    token: int
    owes: Inclusion  # after the token


def constrained_beam_search(
    loop: NumpyLoop, place: Place, settings: SamplingSettings
) -> list[Beam]:
    """The finished hypotheses after `place` that hold every `settings.include` text, best
    first, with resolved `settings` (`beams` wide, `max_new_tokens` long at most)."""
    s, width = settings, settings.beams
    place = loop.healed_for(place, settings)
    most, stops, checks, size, repetition = loop.search_rules(s)
    live = [_Hypothesis(0.0, 0.0, place, "", "", loop.inclusion_for(s, place))]
    finished: list[tuple[float, float, int, str]] = []  # (mean score, log_p, tokens, text)
    for t in range(most):
        candidates = []
        for parent, hyp in enumerate(live):
            search, model = search_scores(hyp.place, repetition, loop.unwritten)
            prev, owes = hyp.place.last, hyp.owes.clone()
            forced = owes.forced(prev)
            if forced is not None:
                tokens = [forced]
            else:
                best = np.argsort(-search, kind="stable")[: min(2 * width, len(search))]
                tokens = list(dict.fromkeys([*map(int, best), *owes.starts(prev)]))
            for token in tokens:
                value = search[token] if forced is None else model[token]
                if forced is None and any(c.rejects(hyp.tail, prev, token) for c in checks):
                    continue
                total = np.float32(hyp.score) + np.float32(value)
                if np.isfinite(total) or forced is not None:
                    after = owes.clone()
                    after.advance(token, prev, forced is not None)
                    log_p = float(np.float32(hyp.log_p) + np.float32(model[token]))
                    candidates.append(_Candidate(float(total), log_p, parent, token, after))
        going = []
        for cand in _allocated(candidates, width, live[0].owes.total):
            hyp = live[cand.parent]
            text = hyp.text + loop.piece(hyp.place.last, cand.token)
            if t + 1 >= most or stops.found_text(text):
                if not cand.owes.owed:  # only a text holding them all may end
                    finished.append((cand.total / (t + 1), cand.log_p, t + 1, text))
            else:
                going.append((cand, text))
        finished = sorted(finished, key=lambda f: -f[0])[:width]
        if len(finished) >= width or not going:
            break
        live = [_grown(loop, size, live[c.parent], c, text) for c, text in going]
    if not finished:
        raise ConfigError(NO_BEAM_HOLDS)
    return [Beam(finish_whole(text, stops), log_p, n) for _, log_p, n, text in finished]


def _allocated(candidates: list[_Candidate], width: int, tokens: int) -> list[_Candidate]:
    """The `width` candidates that go on: banks by the texts' tokens written (0 to
    `tokens`), `width // (tokens + 1)` slots each and the rest to the banks furthest on,
    each taking its best; slots a bank cannot fill go to the best candidates left."""
    ranked = sorted(candidates, key=lambda c: -c.total)
    quota = [width // (tokens + 1)] * (tokens + 1)
    for bank in range(width - sum(quota)):
        quota[tokens - bank % (tokens + 1)] += 1
    chosen, rest = [], []
    for cand in ranked:
        bank = cand.owes.progress
        if quota[bank] > 0:
            quota[bank] -= 1
            chosen.append(cand)
        else:
            rest.append(cand)
    chosen += rest[: width - len(chosen)]
    return sorted(chosen, key=lambda c: (-c.owes.progress, -c.total))


def _grown(loop: NumpyLoop, size: int, hyp: _Hypothesis, cand: _Candidate, text: str):
    piece = text[len(hyp.text) :]
    place = loop.advance(hyp.place, cand.token, piece)
    tail = candidate_checks.advance(hyp.tail, piece, size)
    return _Hypothesis(cand.total, cand.log_p, place, text, tail, cand.owes)
