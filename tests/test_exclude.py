"""Excluded strings (`--exclude`): the check's NumPy form equals its graph form, no sample
holds an excluded string (across token boundaries, the prompt not counted), and every
sampler writes the same text with them: in process, NumPy, beams, the export, a session."""

import random

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import make_corpus, run_cli
from textgen.core.config import MAX_EXCLUDE_CHARS
from textgen.core.errors import ConfigError
from textgen.data.tokenizers import build_vocabulary
from textgen.data.vocabulary import token_piece
from textgen.generate.pieces import TokenPieces
from textgen.generate.rules.exclusion import ExcludedStrings, Exclusion, ExclusionCheck
from textgen.generate.settings import MAX_EXCLUDE, SamplingSettings
from textgen.runs.numpy_run import NumpyRun


@pytest.mark.parametrize("level", ["char", "word", "subword"])
def test_the_graph_check_equals_pythons_in(level):
    """`ExclusionCheck.rejects` (code points compared in the graph) against Python's `in`
    on the tail and the token's text, for rows with different strings (some none)."""
    corpus = make_corpus(lines=60, seed=5)
    vocab = build_vocabulary(corpus, level)
    piece = token_piece(vocab)
    rng = random.Random(3)
    rows = [("the", "o"), (), ("ROMEO:\n", "e l", "ig"), ("a" * MAX_EXCLUDE_CHARS,), ("ve",)]
    tails, prevs, candidates, expected = [], [], [], []
    for strings in rows:
        start = rng.randrange(len(corpus) - 40)
        tail = corpus[start : start + rng.randint(0, MAX_EXCLUDE_CHARS - 1)]
        while any(s in tail for s in strings):  # a tail holds none (it got through)
            tail = tail[1:]
        prev = rng.randrange(1, vocab.size)
        cands = rng.sample(range(1, vocab.size), min(12, vocab.size - 1))
        check = Exclusion(strings, piece) if strings else None
        expected.append([bool(check and check.rejects(tail, prev, c)) for c in cands])
        tails.append([-1] * (MAX_EXCLUDE_CHARS - 1 - len(tail)) + [ord(c) for c in tail])
        prevs.append(prev)
        candidates.append(cands)
    excluded = ExcludedStrings.of(tf.constant(["\n".join(strings) for strings in rows]))
    check = ExclusionCheck(TokenPieces(vocab), excluded)
    got = check.rejects(tf.constant(tails), tf.constant(prevs), tf.constant(candidates))
    assert got.numpy().tolist() == expected
    assert any(any(row) for row in expected) and not all(all(row) for row in expected)


@pytest.mark.parametrize("level", ["char", "word", "subword"])
def test_samples_never_hold_an_excluded_string_and_every_backend_agrees(trained_runs, level):
    """Strings the free samples hold often are gone from the excluded ones, which are
    otherwise drawn from the same distribution: NumPy == TensorFlow, streamed too."""
    run = trained_runs.loaded(level, "lstm")
    numpy_run = NumpyRun(run.folder)
    prompts = ["ROMEO:", "", "JULIET:\nthe"]
    free = run.generate(prompts * 2, max_new_tokens=60, temperature=1.0, seed=4)
    common = [s for s in ("the", "e", "O", ":", " a") if sum(s in f for f in free) >= 3][:3]
    assert len(common) >= 2, free
    settings = SamplingSettings(max_new_tokens=60, temperature=1.0, seed=4, exclude=common)
    excluded = run.generate(prompts * 2, settings)
    for text in excluded:
        assert not any(s in text for s in common), (text, common)
    assert numpy_run.generate(prompts * 2, settings) == excluded
    assert "".join(run.stream(prompts[0], settings)) == excluded[0]
    assert "".join(numpy_run.stream(prompts[0], settings)) == excluded[0]
    # the prompt is not counted: a prompt holding a string still continues
    assert all(len(t) > 0 for t in excluded)


def test_beams_with_excluded_strings_agree_and_hold_none(trained_runs):
    run = trained_runs.loaded("char", "gru")
    settings = SamplingSettings(max_new_tokens=25, beams=3, exclude=("e", "th"))
    graph = run.generate(["ROMEO:", "JULIET:"], settings)
    numpy = NumpyRun(run.folder).generate(["ROMEO:", "JULIET:"], settings)
    assert graph == numpy and all("e" not in t and "th" not in t for t in graph)
    assert graph != run.generate(["ROMEO:", "JULIET:"], SamplingSettings(max_new_tokens=25,
                                                                          beams=3))  # fmt: skip


def test_the_export_and_a_served_model_exclude_as_in_process(trained_runs, served):
    from textgen.export.client import RemoteSampler

    run = trained_runs.loaded("char", "lstm")
    settings = SamplingSettings(max_new_tokens=50, temperature=0.9, seed=2, exclude=("e", "O"))
    local = run.generate(["ROMEO:", "JULIET:"], settings)
    remote = RemoteSampler(served.url)
    assert remote.generate(["ROMEO:", "JULIET:"], settings) == local
    assert "".join(remote.stream("ROMEO:", settings)) == local[0]
    beams = SamplingSettings(max_new_tokens=20, beams=2, exclude=("e",))
    assert remote.generate(["ROMEO:"], beams) == run.generate(["ROMEO:"], beams)


def test_a_session_excludes_what_sample_excludes(trained_runs):
    from click.testing import CliRunner

    from textgen.cli.main import cli

    run_dir = trained_runs("word", "gru")
    common = ["--run-dir", str(run_dir), "--length", "30", "--seed", "2", "--temperature", "0.9"]
    sampled = run_cli("sample", "--prompt", "", *common, "--exclude", "the", "--exclude",
                      "love").output  # fmt: skip
    lines = "/exclude the\n/exclude love\n\n/exclude -\n/retry\n/quit\n"
    session = CliRunner().invoke(cli, ["sample", "--interactive", *common], input=lines)
    assert session.exit_code == 0, session.output
    assert session.output.startswith(sampled)  # the first continuation, then the retry's
    assert "the" not in sampled and "love" not in sampled
    assert session.output[len(sampled) :] not in ("", sampled)


@pytest.mark.parametrize(
    "values, message",
    [
        ([""], "empty"),
        (["x" * (MAX_EXCLUDE_CHARS + 1)], f"at most {MAX_EXCLUDE_CHARS} characters"),
        ([str(i) for i in range(MAX_EXCLUDE + 1)], f"at most {MAX_EXCLUDE} --exclude"),
    ],
)
def test_bad_excluded_strings_are_one_line_and_exit_2(trained_runs, values, message):
    with pytest.raises(ConfigError, match=message):
        SamplingSettings(exclude=values)
    args = [a for v in values for a in ("--exclude", v)]
    result = run_cli("sample", "--run-dir", trained_runs("char", "lstm"), *args, expect=2)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_excluded_strings_cut_to_their_last_characters_still_exclude_the_whole():
    """A served request's string longer than MAX_EXCLUDE_CHARS is cut to its end: the
    whole string still never gets through (the cut one is stricter)."""
    long = "abc" * 20
    excluded = ExcludedStrings.of(tf.constant([long]))
    kept = "".join(chr(c) for c in excluded.codes.numpy()[0, 0] if c >= 0)
    assert kept == long[-MAX_EXCLUDE_CHARS:] and np.all(excluded.valid.numpy())
