"""A generation continued from its state in bytes: chunks give exactly one call's text, in
process and through a served export (state through JSON and base64), new text read into
a state, and a wrong or damaged state refused with a clear error."""

from __future__ import annotations

import pytest
import tensorflow as tf

from textgen.core.errors import ServerError
from textgen.data.tokenizers import string_tensor
from textgen.export.client import CHUNK_TOKENS, RemoteSampler
from textgen.generate.settings import SamplingSettings

from conftest import run_cli

PROMPTS = ["ROMEO: ", "", "The ", "KING"]
# Each row its own settings: temperature, seed, repetition penalty, no-repeat n-gram.
ROWS = {
    "greedy": ([0.0] * 4, [0] * 4, [-1.0] * 4, [-1] * 4),
    "seeded": ([0.8, 1.0, 0.5, 0.0], [1, 2, 3, 4], [1.3, -1.0, 1.2, -1.0], [0, 3, 0, 2]),
}


def _rows(name: str) -> tuple:
    temperature, seeds, penalty, ngram = ROWS[name]
    n = len(PROMPTS)
    return (
        tf.constant(temperature), tf.fill([n], 0), tf.fill([n], 1.0),
        tf.constant([[s, i] for i, s in enumerate(seeds)], tf.int64), tf.constant(penalty),
        tf.fill([n], -1), tf.constant(ngram), tf.fill([n], ""), tf.fill([n], ""),
    )  # fmt: skip


def _chunked(generator, rows, total: int, chunk: int) -> tuple[list[str], list[bool]]:
    """The texts of calls of `chunk` tokens, each passing the state on, until all are done."""
    n = len(PROMPTS)
    texts, states, got = string_tensor(PROMPTS), tf.fill([n], ""), [""] * n
    for _ in range(total // chunk + 2):
        out = generator.continue_from(
            texts, states, tf.fill([n], total), tf.fill([n], chunk), *rows
        )
        got = [a + b.decode() for a, b in zip(got, out["completion"].numpy())]
        texts, states = tf.fill([n], ""), out["state_bytes"]
        if out["done"].numpy().all():
            break
    assert out["done"].numpy().all()
    return [a + p.decode() for a, p in zip(got, out["pending"].numpy())], states


@pytest.mark.parametrize("level", ["char", "word", "subword"])
@pytest.mark.parametrize("rows", ["greedy", "seeded"])
def test_chunks_passing_the_state_give_one_calls_text(trained_runs, level, rows):
    run = trained_runs.loaded(level, "lstm")
    max_copy = 6 if level == "char" else 0  # the copy guard's tail is carried too
    # as the default export builds it: blocks of 8 tokens, frozen weights, a stop string
    generator = run.generator_for(["\n\n"], unroll=8, frozen=True, jit_compile=False,
                                  max_copy=max_copy)  # fmt: skip
    total = 200
    whole, _ = generator.generate_ids(string_tensor(PROMPTS), tf.fill([4], total), *_rows(rows))
    whole = [w.decode() for w in whole.numpy()]
    for chunk in (50, 7) if level == "char" else (50,):  # (word steps cost more)
        chunked, states = _chunked(generator, _rows(rows), total, chunk)
        assert chunked == whole
    sizes = {len(s) for s in states.numpy()}
    assert len(sizes) == 1 and sizes.pop() < 16_000  # a few kilobytes per row


def test_text_read_into_a_state_continues_as_if_it_were_the_prompt(trained_runs):
    run = trained_runs.loaded("char", "lstm")
    generator = run.generator_for([], jit_compile=False)
    rows = _rows("greedy")
    first = generator.continue_from(
        string_tensor(PROMPTS), tf.fill([4], ""), tf.fill([4], 30), tf.fill([4], 0), *rows
    )
    written = [" and thou", "\n", "\nJULIET:", " O"]
    second = generator.continue_from(
        string_tensor(written), first["state_bytes"], tf.fill([4], 40), tf.fill([4], 0), *rows
    )
    prompts = [p + c.decode() + w for p, c, w in zip(PROMPTS, first["completion"].numpy(), written)]
    fresh = run.generate(prompts, max_new_tokens=40, temperature=0.0)
    assert [c.decode() for c in second["completion"].numpy()] == fresh
    assert second["num_tokens"].numpy().tolist() == [40] * 4
    # no new text: a row that has its tokens draws more only when asked for more
    more = [
        generator.continue_from(
            tf.fill([4], ""), second["state_bytes"], tf.fill([4], total), tf.fill([4], 0), *rows
        )
        for total in (40, 55)
    ]
    assert more[0]["num_tokens"].numpy().tolist() == [0] * 4 and more[0]["done"].numpy().all()
    assert more[1]["num_tokens"].numpy().tolist() == [15] * 4
    fresh_more = run.generate(prompts, max_new_tokens=55, temperature=0.0)
    assert [c.decode() for c in more[1]["completion"].numpy()] == [f[40:] for f in fresh_more]


def test_a_served_export_streams_the_same_text_through_json_and_base64(stop_served, trained_runs):
    run = trained_runs.loaded("char", "lstm")
    remote = RemoteSampler(stop_served.url)
    for settings in (
        SamplingSettings(max_new_tokens=200, temperature=0.9, seed=3, stop=None),
        SamplingSettings(max_new_tokens=150, temperature=0.0, no_repeat_ngram=3),
        SamplingSettings(max_new_tokens=120, temperature=1.0, seed=8, repetition_penalty=1.3),
    ):
        pieces = list(remote.stream("ROMEO: ", settings))
        whole = remote.generate(["ROMEO: "], settings)[0]
        assert "".join(pieces) == whole
        assert len(pieces) > 1 or len(whole) <= CHUNK_TOKENS  # chunks, unless it stopped soon
        expected = run.generate(["ROMEO: "], SamplingSettings.of(settings, stop=("\n\n",)))[0]
        assert whole == expected
    # the command line streams through it and prints the same text
    out = run_cli(
        "sample", "--server", stop_served.url, "--prompt", "ROMEO: ", "--length", 120,
        "--seed", 5, "--temperature", 0.8,
    ).output  # fmt: skip
    expected = run.generate(["ROMEO: "], max_new_tokens=120, temperature=0.8, seed=5, stop=["\n\n"])
    assert out == "ROMEO: " + expected[0] + "\n"


def test_a_wrong_or_damaged_state_is_refused_with_a_clear_error(
    stop_served, trained_runs, tmp_path
):
    remote = RemoteSampler(stop_served.url)
    settings = SamplingSettings(max_new_tokens=20, temperature=0.0)
    good = remote.continue_text("ROMEO: ", b"", settings).state
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0x55
    other = trained_runs.loaded("char", "gru").generator_for([])
    n = tf.fill([1], 20)  # a state of another model (its own fingerprint)
    foreign = other.continue_from(
        string_tensor(["ROMEO: "]), tf.fill([1], ""), n, n, *other.row_tensors(
            other.resolve(settings), [0]
        ),
    )["state_bytes"].numpy()[0]  # fmt: skip
    cases = {
        bytes(damaged): "damaged",
        good[:100]: "damaged",
        good[:10]: "not a textgen generation state",
        b"hello" * 2000: "not a textgen generation state",
        foreign: "another model",
    }
    for state, message in cases.items():
        with pytest.raises(ServerError, match=message):
            remote.continue_text("", state, settings)
    # the server goes on serving
    again = remote.continue_text("", good, settings)
    assert again.num_tokens == 0 and again.done  # it had its 20 tokens


def test_a_session_through_the_server_writes_what_sample_through_it_writes(served):
    """`sample --server --interactive`: the place is the text and the served state; each
    continuation equals one `sample --server --prompt` of the whole text so far, sampled
    and with the repetition controls (the noise keyed from the text last read)."""
    from click.testing import CliRunner

    from textgen.cli.main import cli
    from textgen.export.client import RemoteSampler
    from textgen.generate.cowriting import CoWriting
    from textgen.generate.settings import SamplingSettings

    remote = RemoteSampler(served.url)
    settings = SamplingSettings(max_new_tokens=40, temperature=0.9, seed=2,
                                repetition_penalty=1.4, no_repeat_ngram=2)  # fmt: skip
    shown = []
    echo = lambda text="", nl=True, err=False: shown.append(text + ("\n" if nl else ""))  # noqa: E731
    writing = CoWriting(remote, settings, echo)
    writing.line("ROMEO:")
    first = remote.generate(["ROMEO:"], settings)[0]
    assert "".join(shown) == first + "\n"
    writing.line(" and thou")
    second = remote.generate(["ROMEO:" + first + " and thou"], settings)[0]
    assert "".join(shown) == first + "\n" + second + "\n"
    writing.line("/next")
    assert "a server does not send" in shown[-1]
    options = ["--server", served.url, "--length", 40, "--temperature", 0.9, "--seed", 2]
    piped = CliRunner().invoke(
        cli, ["sample", "--interactive", "--prompt", "ROMEO:", *map(str, options)],
        input="/no-repeat-ngram 2\n\n/quit\n",
    )  # fmt: skip
    sampled = remote.generate(["ROMEO:"], max_new_tokens=40, temperature=0.9, seed=2)[0]
    more = remote.generate(["ROMEO:" + sampled], max_new_tokens=40, temperature=0.9, seed=2,
                           no_repeat_ngram=2)[0]  # fmt: skip
    assert piped.exit_code == 0 and piped.output == sampled + "\n" + more + "\n"
    refused = CliRunner().invoke(cli, ["sample", "--interactive", *map(str, options),
                                       "--max-copy", 8], input="/quit\n")  # fmt: skip
    assert refused.exit_code == 2 and "--max-copy is built into an export" in refused.output
