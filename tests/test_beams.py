"""Beam search: greedy at width 1, scores the model agrees with, better than greedy, the
controls and the copy guard obeyed, the same beams in process, in the export and through
a served model, and its errors as one line."""

from __future__ import annotations

import json

import pytest

import textgen
from textgen.core.config import MAX_BEAMS
from textgen.core.errors import ConfigError
from textgen.export.client import RemoteSampler

from conftest import run_cli

PROMPTS = ["ROMEO: ", "", "The ", "KING", "JULIET:\n", "O ", "What ", "my "]


@pytest.fixture(scope="module", params=["char", "word"])
def run(request, trained_runs):
    return trained_runs.loaded(request.param, "lstm")


def _log_probability(run, prompt: str, completion: str) -> float:
    """The model's log-probability of `completion` after `prompt`, by `run.score`."""
    (whole, whole_n), (start, start_n) = run.score([prompt + completion, prompt])
    return -whole * whole_n + start * start_n


def test_one_beam_is_greedy_decoding(run):
    for controls in ({}, {"no_repeat_ngram": 3}, {"repetition_penalty": 1.5}):
        greedy = run.generate(PROMPTS, max_new_tokens=30, temperature=0.0, **controls)
        assert run.generate(PROMPTS, max_new_tokens=30, beams=1, **controls) == greedy


def test_beams_are_distinct_best_first_and_scored_as_the_model_scores_them(run):
    found = run.search(PROMPTS, beams=6, count=4, max_new_tokens=25)
    assert len(found) == len(PROMPTS)
    for prompt, beams in zip(PROMPTS, found):
        assert len(beams) == 4 and len({b.completion for b in beams}) == 4
        assert [b.log_probability for b in beams] == sorted(
            (b.log_probability for b in beams), reverse=True
        )
        for beam in beams:
            assert beam.num_tokens == 25
            expected = _log_probability(run, prompt, beam.completion)
            assert beam.log_probability == pytest.approx(expected, rel=1e-4, abs=1e-3)
    # the best beam is what generate(beams=N) gives
    assert run.generate(PROMPTS, beams=6, max_new_tokens=25) == [b[0].completion for b in found]


def test_the_best_beam_is_at_least_as_likely_as_greedy_on_most_prompts(run):
    greedy = run.generate(PROMPTS, max_new_tokens=40, temperature=0.0)
    best = run.search(PROMPTS, beams=8, max_new_tokens=40)
    wins = sum(
        found[0].log_probability >= _log_probability(run, prompt, text) - 1e-3
        for prompt, text, found in zip(PROMPTS, greedy, best)
    )
    assert wins >= len(PROMPTS) - 1, wins


def test_beams_obey_no_repeat_ngrams(trained_runs):
    run = trained_runs.loaded("char", "lstm")
    free = run.search(PROMPTS, beams=4, count=4, max_new_tokens=40)
    banned = run.search(PROMPTS, beams=4, count=4, max_new_tokens=40, no_repeat_ngram=3)

    def repeats(text: str) -> bool:
        grams = [text[i : i + 3] for i in range(len(text) - 2)]
        return len(grams) != len(set(grams))

    assert any(repeats(p + b.completion) for p, bs in zip(PROMPTS, free) for b in bs)
    assert not any(repeats(p + b.completion) for p, bs in zip(PROMPTS, banned) for b in bs)


def test_beams_never_expand_a_copied_span(trained_runs):
    run = trained_runs.loaded("char", "lstm")
    training_text = open(run.config.data.sources[0], encoding="utf-8").read()

    def copies(text: str, span: int) -> bool:
        return any(text[i : i + span] in training_text for i in range(len(text) - span + 1))

    free = run.search(PROMPTS, beams=4, count=4, max_new_tokens=60)
    # the longest span that the unguarded beams copy (a barely trained model copies little)
    span = max(n for n in range(2, 9) if any(copies(b.completion, n) for bs in free for b in bs))
    assert span >= 3
    guarded = run.search(PROMPTS, beams=4, count=4, max_new_tokens=60, max_copy=span)
    assert guarded and all(guarded)
    assert not any(copies(b.completion, span) for bs in guarded for b in bs)


def test_the_export_and_a_served_model_give_the_same_beams(trained_runs, served):
    run = trained_runs.loaded("char", "lstm")
    expected = run.search(PROMPTS, beams=5, count=5, max_new_tokens=30)
    standin = served  # the shared export of this run (tests/conftest.py)
    remote = RemoteSampler(standin.url)
    assert _same(remote.search(PROMPTS, beams=5, count=5, max_new_tokens=30), expected)
    # rows asking different widths in one request: each its own search
    mixed = standin.predict({
        "signature_name": "beam_search",
        "instances": [
            {"prompt": "ROMEO: ", "max_new_tokens": 30, "beams": 5, "repetition_penalty": -1,
             "repetition_window": -1, "no_repeat_ngram": -1, "label": "", "exclude": "",
             "include": ""},
            {"prompt": "KING", "max_new_tokens": 30, "beams": 2, "repetition_penalty": -1,
             "repetition_window": -1, "no_repeat_ngram": -1, "label": "", "exclude": "",
             "include": ""},
        ],
    })["predictions"]  # fmt: skip
    assert mixed[0]["completion"] == [b.completion for b in expected[0]]
    narrow = run.search(["KING"], beams=2, count=2, max_new_tokens=30)[0]
    assert mixed[1]["completion"] == [b.completion for b in narrow] + [""] * 3
    lines = run_cli(
        "sample", "--server", standin.url, "--prompt", "ROMEO: ", "--beams", 5,
        "--num-samples", 3, "--length", 30, "--format", "jsonl",
    ).output.splitlines()  # fmt: skip
    records = [json.loads(line) for line in lines]
    assert [r["completion"] for r in records] == [b.completion for b in expected[0][:3]]
    assert records[0]["log_probability"] == pytest.approx(expected[0][0].log_probability, abs=1e-3)
    with pytest.raises(Exception, match="beams may be at most"):
        standin.predict({
            "signature_name": "beam_search",
            "inputs": {"prompt": ["a"], "max_new_tokens": [5], "beams": [MAX_BEAMS + 1],
                       "repetition_penalty": [-1.0], "repetition_window": [-1],
                       "no_repeat_ngram": [-1], "label": [""], "exclude": [""],
                       "include": [""]},
        })  # fmt: skip


def _same(found, expected) -> bool:
    return all(
        [b.completion for b in f] == [b.completion for b in e]
        and all(abs(a.log_probability - b.log_probability) < 1e-3 for a, b in zip(f, e))
        for f, e in zip(found, expected)
    )


def test_sample_with_beams_from_the_command_line(trained_runs):
    run_dir = trained_runs("char", "lstm")
    run = textgen.load_run(run_dir, xla=False)
    out = run_cli(
        "sample", "--run-dir", run_dir, "--prompt", "ROMEO: ", "--beams", 4, "--num-samples", 2,
        "--length", 20,
    ).output  # fmt: skip
    best = run.search(["ROMEO: "], beams=4, count=2, max_new_tokens=20)[0]
    assert out.index("ROMEO: " + best[0].completion) < out.index("ROMEO: " + best[1].completion)
    assert f"log-probability {best[0].log_probability:.2f}" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--beams", 4, "--temperature", 0.7], "--temperature does not apply to beam search"),
        (["--beams", 4, "--top-k", 5], "--top-k does not apply to beam search"),
        (["--beams", 2, "--num-samples", 3], "at most --beams 2 texts"),
        (["--beams", 0], "--beams"),
        (["--beams", MAX_BEAMS + 1], "--beams"),
    ],
)
def test_beam_errors_are_one_line(trained_runs, args, message):
    result = run_cli("sample", "--run-dir", trained_runs("char", "lstm"), *args, expect=2)
    assert message in result.output
    assert "Traceback" not in result.output


def test_beam_settings_are_checked_in_the_library():
    from textgen.generate.settings import SamplingSettings

    with pytest.raises(ConfigError, match="beams must be from 1"):
        SamplingSettings(beams=MAX_BEAMS + 1)
    with pytest.raises(ConfigError, match="--top-p does not apply"):
        SamplingSettings(beams=2, top_p=0.9)
