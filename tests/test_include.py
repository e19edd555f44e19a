"""Included strings (`--include`): every sample holds each text, placed by the model
where it can (not all at the end), the same in every NumPy sampler; what cannot be
written, or fit, is one line; the TensorFlow generator and servers say they lack it."""

import pytest

from tests.conftest import run_cli
from textgen.core.errors import ConfigError
from textgen.generate.settings import MAX_INCLUDE, SamplingSettings
from textgen.runs.numpy_run import NumpyRun


@pytest.mark.parametrize("level, texts", [("char", ("sword", "moon")),
                                          ("word", ("sword", "moon", "death"))])  # fmt: skip
def test_every_sample_holds_every_text(trained_runs, level, texts):
    run = NumpyRun(trained_runs.loaded(level, "lstm").folder)
    settings = SamplingSettings(max_new_tokens=60, temperature=0.9, seed=1, include=texts)
    samples = run.generate(["ROMEO:", "", "JULIET:\nthe"] * 8, settings)
    for sample in samples:
        assert all(text in sample for text in texts), (sample, texts)
    # placed where the model goes, not always at the end
    firsts = sorted(min(sample.index(t) for t in texts) / len(sample) for sample in samples)
    assert firsts[len(firsts) // 2] < 0.8, firsts
    free = run.generate(["ROMEO:", "", "JULIET:\nthe"] * 8, temperature=0.9, seed=1,
                        max_new_tokens=60)  # fmt: skip
    assert sum(all(t in s for t in texts) for s in free) < len(free) // 2
    assert "".join(run.stream("ROMEO:", settings)) == samples[0]


def test_a_session_includes_as_sample_does(trained_runs):
    from click.testing import CliRunner

    from textgen.cli.main import cli

    run_dir = trained_runs("word", "gru")
    common = ["--length", "25", "--seed", "2", "--temperature", "0.8"]
    sampled = run_cli("sample", "--run-dir", run_dir, "--prompt", "", *common, "--include",
                      "sword").output  # fmt: skip
    assert "sword" in sampled
    lines = "/include sword\n\n/quit\n"
    session = CliRunner().invoke(cli, ["sample", "--interactive", "--run-dir", str(run_dir),
                                       *common], input=lines)  # fmt: skip
    assert session.exit_code == 0 and session.output == sampled, session.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--include", ""], "empty"),
        ([a for i in range(MAX_INCLUDE + 1) for a in ("--include", f"w{i}")], "at most"),
        (["--include", "sword", "--length", "3"], "needs 6 tokens"),
        (["--include", "€"], "no tokens that write it"),
        (["--include", "sword", "--exclude", "or"], "holds --exclude"),
        (["--include", "sword", "--backend", "tensorflow"], "NumPy samplers"),
    ],
)
def test_what_cannot_be_included_is_one_line_and_exit_2(trained_runs, args, message):
    result = run_cli("sample", "--run-dir", trained_runs("char", "lstm"), *args, expect=2)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_text_the_word_level_spaces_otherwise_is_refused(trained_runs):
    """Words are written with a space between them: "sword,moon" cannot appear."""
    run = NumpyRun(trained_runs.loaded("word", "lstm").folder)
    with pytest.raises(ConfigError, match="writes it as 'sword, moon'"):
        run.generate([""], max_new_tokens=20, include=("sword,moon",))


def _log_likelihood(run, prompt: str, completion: str) -> float:
    """The model's log-probability of `completion` after `prompt` (its own `score`)."""
    (whole, n_whole), (start, n_start) = run.score([prompt + completion, prompt])
    return -(whole * n_whole - start * n_start)


def test_beams_hold_every_text_and_beat_sampling_with_them(trained_runs):
    """Constrained beam search (NumPy samplers): every beam holds the texts, reports the
    model's log-probability, and the best is at least as likely as sampled texts that
    hold them too; the TensorFlow generator refuses in one line."""
    run = trained_runs.loaded("word", "gru")
    numpy_run = NumpyRun(run.folder)
    texts = ("sword", "moon")
    for prompt in ("ROMEO:", "JULIET:\nthe"):
        (found,) = numpy_run.search([prompt], beams=4, count=2, max_new_tokens=20, include=texts)
        assert found and all(all(t in b.completion for t in texts) for b in found)
        best = found[0]
        assert _log_likelihood(run, prompt, best.completion) == pytest.approx(
            best.log_probability, abs=1e-3
        )
        sampled = numpy_run.generate([prompt] * 4, max_new_tokens=20, temperature=0.8, seed=1,
                                     include=texts)  # fmt: skip
        assert best.log_probability >= max(_log_likelihood(run, prompt, s) for s in sampled)
    with pytest.raises(ConfigError, match="NumPy samplers"):
        run.search(["ROMEO:"], beams=2, max_new_tokens=10, include=texts)
