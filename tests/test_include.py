"""Included strings (`--include`): every sample holds each text, placed by the model
where it can (not all at the end), the same text in every sampler (NumPy, the TensorFlow
generator, the SavedModel served), beams too; what cannot be written, or fit, is one line."""

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
        (["--include", "sword", "--backend", "tensorflow", "--length", "3"], "needs 6 tokens"),
        (["--include", "sword", "--max-copy", "8"], "do not go together"),
    ],
)
def test_what_cannot_be_included_is_one_line_and_exit_2(trained_runs, args, message):
    result = run_cli("sample", "--run-dir", trained_runs("char", "lstm"), *args, expect=2)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("level", ["char", "word", "subword"])
def test_the_tensorflow_generator_includes_as_numpy_does(trained_runs, level):
    """The graph's inclusion (`InclusionRule`) writes the NumPy samplers' text: seeded,
    greedy, with the repetition controls, top-k, an excluded string, batched rows with
    their own settings, streamed, and label-free prompts that end inside a word."""
    run = trained_runs.loaded(level, "gru")
    numpy_run = NumpyRun(run.folder)
    texts = ("sword", "moon") if level != "subword" else ("sword", "moon", "the king")
    prompts = ["ROMEO:", "", "JULIET:\nthe", "KING:\nMy lo"]
    for settings in (
        SamplingSettings(max_new_tokens=40, temperature=0.9, seed=3, include=texts),
        SamplingSettings(max_new_tokens=30, temperature=0.0, include=texts[:1]),
        SamplingSettings(max_new_tokens=40, temperature=1.2, seed=5, include=texts,
                         repetition_penalty=1.3, top_k=20, exclude=("and",)),
    ):  # fmt: skip
        expected = numpy_run.generate(prompts, settings)
        assert all(all(t in s for t in settings.include) for s in expected)
        assert run.generate(prompts, settings) == expected, settings
        (alone,) = numpy_run.generate(prompts[2:3], settings)  # stream 0
        assert "".join(run.stream(prompts[2], settings)) == alone


def test_a_served_export_includes_as_numpy_does(trained_runs, served):
    """The SavedModel's `sample` takes `include` (a text a line) per row: the NumPy
    samplers' text; streaming through a server with included texts gives it at once, and
    a co-writing session through the server includes as `sample --server` does."""
    from textgen.export.client import RemoteSampler
    from textgen.export.remote_session import RemoteSession

    numpy_run = NumpyRun(trained_runs.loaded("char", "lstm").folder)
    remote = RemoteSampler(served.url)
    prompts = ["ROMEO:", "", "JULIET:\nthe"]
    for texts in (("sword",), ("sword", "moon", "death")):
        settings = SamplingSettings(max_new_tokens=45, temperature=0.9, seed=2, include=texts)
        expected = numpy_run.generate(prompts, settings)
        assert remote.generate(prompts, settings) == expected
        assert "".join(remote.stream(prompts[0], settings)) == expected[0]
        session = RemoteSession(remote)
        place = session.read_prompt(session.start(), prompts[0])
        drawn = "".join(shown for shown, _ in session.draw(place, settings))
        assert drawn == expected[0]
    beams = SamplingSettings(beams=3, max_new_tokens=20, include=("sword", "moon"))
    found = remote.search(prompts, beams, count=3)
    assert _texts(found) == _texts(numpy_run.search(prompts, beams, count=3))
    # rows with and without included texts in one request; too short a length for a
    # served row writes what fits (a server never fails a request)
    import tensorflow as tf

    out = served.model.signatures["sample"](
        prompt=tf.constant(["ROMEO:", "ROMEO:"]), max_new_tokens=tf.constant([30, 3]),
        temperature=tf.fill([2], 0.9), top_k=tf.fill([2], 0), top_p=tf.fill([2], 1.0),
        seed=tf.fill([2], tf.constant(2, tf.int64)), stream=tf.zeros([2], tf.int64),
        repetition_penalty=tf.fill([2], -1.0), repetition_window=tf.fill([2], -1),
        no_repeat_ngram=tf.fill([2], -1), label=tf.fill([2], ""), exclude=tf.fill([2], ""),
        include=tf.constant(["moon\nsword", "sword"]),
    )  # fmt: skip
    first, short = [c.decode() for c in out["completion"].numpy()]
    both = SamplingSettings(max_new_tokens=30, temperature=0.9, seed=2, include=("moon", "sword"))
    assert first == numpy_run.generate(["ROMEO:"], both)[0]
    assert len(short) == 3 and short in " sword", short


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
    """Constrained beam search: every beam holds the texts, reports the model's
    log-probability, and the best is at least as likely as sampled texts that hold them
    too; the graph's search (`ConstrainedSearch`) finds the NumPy samplers' beams."""
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
        graph = run.search([prompt], beams=4, count=2, max_new_tokens=20, include=texts)
        assert _texts(graph) == _texts([found])


def _texts(found) -> list[list[tuple[str, int]]]:
    return [[(b.completion, b.num_tokens) for b in beams] for beams in found]


@pytest.mark.parametrize("level", ["char", "word", "subword"])
def test_the_graphs_constrained_beams_are_the_numpy_samplers(trained_runs, level):
    """Widths 1-5, one to three texts, with the repetition controls, an excluded string,
    rows with and without texts in one call: the graph's beams (text, tokens and
    log-probability) equal the NumPy search's."""
    run = trained_runs.loaded(level, "gru")
    numpy_run = NumpyRun(run.folder)
    texts = ("sword", "moon", "death")
    prompts = ["ROMEO:", "", "JULIET:\nthe"]
    for settings in (
        SamplingSettings(beams=1, max_new_tokens=12, include=texts[:1]),
        SamplingSettings(beams=3, max_new_tokens=16, include=texts[:2]),
        SamplingSettings(beams=5, max_new_tokens=24, include=texts, no_repeat_ngram=2,
                         exclude=("and",)),
    ):  # fmt: skip
        expected = numpy_run.search(prompts, settings, count=settings.beams)
        graph = run.search(prompts, settings, count=settings.beams)
        assert _texts(graph) == _texts(expected), settings
        for g, e in zip(graph, expected):
            assert [b.log_probability for b in g] == pytest.approx(
                [b.log_probability for b in e], abs=1e-4
            )
    plain = SamplingSettings(beams=3, max_new_tokens=16)
    assert _texts(run.search(prompts, plain, count=3)) == _texts(
        numpy_run.search(prompts, plain, count=3)
    )
