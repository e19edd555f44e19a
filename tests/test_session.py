"""The co-writing session: `textgen sample --interactive` in a real pseudo-terminal and
from a pipe; its continuations equal `textgen sample`, carried state equals reading the
whole text again, /undo restores, /next is the model's softmax, /save writes the text."""

import signal
import subprocess
import sys

import numpy as np
import pytest

import textgen
from tests.conftest import run_cli
from textgen.generate.cowriting import CoWriting
from textgen.generate.settings import SamplingSettings
from textgen.runs.folder import RunFolder
from textgen.runs.numpy_run import NumpyRun

pexpect = pytest.importorskip("pexpect", reason="needs pexpect (the test extras)")
GREEDY = {"max_new_tokens": 40, "temperature": 0}


def _spawn(run_dir, *args):
    command = [
        "-m", "textgen.cli", "sample", "--interactive", "--run-dir", str(run_dir), *map(str, args)
    ]  # fmt: skip
    # Ctrl-C as a terminal sends it (a test runner's worker may ignore SIGINT, which a
    # child would inherit)
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    child = pexpect.spawn(
        sys.executable, command, encoding="utf-8", timeout=120, preexec_fn=restore
    )
    child.expect("/help lists the commands")
    child.expect("> ")
    return child


def _answer(child) -> str:
    """What the session printed after the line just sent, up to its next prompt."""
    child.expect("> ")
    return child.before.replace("\r\n", "\n")


def test_a_terminal_session_continues_undoes_saves_and_quits(trained_runs, tmp_path):
    run_dir = trained_runs("char", "gru")
    run = textgen.load_run(run_dir, xla=False)
    child = _spawn(run_dir, "--length", 40, "--temperature", 0)
    child.sendline("ROMEO:")
    first = run.generate(["ROMEO:"], **GREEDY)[0]
    assert _answer(child) == f"ROMEO:\n{first}\n"  # the line's echo, then the continuation
    child.sendline("love")  # read from the carried state: as if the whole text were read
    second = run.generate(["ROMEO:" + first + "love"], **GREEDY)[0]
    assert _answer(child) == f"love\n{second}\n"
    child.sendline("/undo")
    assert "back to" in _answer(child)
    child.sendline(f"/save {tmp_path / 'text.txt'}")
    _answer(child)
    assert (tmp_path / "text.txt").read_text(encoding="utf-8") == "ROMEO:" + first + "love"
    child.sendline("/retry")  # greedy: the same continuation again
    assert _answer(child).endswith(f"{second}\n")
    child.sendline("/temperature -1")
    assert "temperature must be >= 0" in _answer(child)  # one line, the session goes on
    child.sendintr()  # Ctrl-C at the prompt: a new prompt, not an exit
    child.expect("> ")
    child.sendeof()  # Ctrl-D: the end, exit code 0
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_next_shows_the_models_softmax(trained_runs):
    run_dir = trained_runs("char", "lstm")
    child = _spawn(run_dir)
    child.sendline("/next")
    shown = [line.split(maxsplit=1) for line in _answer(child).splitlines()[1:] if line.strip()]
    run = textgen.load_run(run_dir, xla=False)
    logits = run.generator.prime(np.array([""]))[0].numpy()[0].astype(np.float64)
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    best = np.argsort(-probs)[:10]
    assert [float(p) for p, _ in shown] == pytest.approx(probs[best].tolist(), abs=1e-4)
    tokens = ["[UNK]", *run.vocab.tokens]
    assert [token for _, token in shown] == [repr(tokens[i]) for i in best]
    child.sendline("/quit")
    child.expect(pexpect.EOF)


def test_a_piped_session_writes_what_sample_writes(trained_runs):
    run_dir = trained_runs("char", "rnn")
    lines = "/seed 5\n/temperature 0.9\n\n/quit\n"  # --prompt is the first line
    result = subprocess.run(
        [sys.executable, "-m", "textgen.cli", "sample", "--interactive", "--run-dir",
         str(run_dir), "--length", "30", "--temperature", "0", "--prompt", "ROMEO:"],
        input=lines, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stderr
    first = run_cli(
        "sample", "--run-dir", run_dir, "--prompt", "ROMEO:", "--length", 30, "--temperature", 0
    ).output.removeprefix("ROMEO:")
    # an empty line continues the text as it stands, here seeded
    whole = "ROMEO:" + first.removesuffix("\n")
    run = textgen.load_run(run_dir, xla=False)
    second = run.generate([whole], max_new_tokens=30, temperature=0.9, seed=5)[0]
    assert result.stdout == first + second + "\n"


def test_ctrl_c_stops_a_continuation_where_it_is(trained_runs):
    """Ctrl-C mid-continuation: the text keeps what was shown, the session goes on."""
    fast = NumpyRun(RunFolder(trained_runs("char", "gru")))
    shown = []

    def echo(text="", nl=True, err=False):
        shown.append(text + ("\n" if nl else ""))

    writing = CoWriting(fast, SamplingSettings(max_new_tokens=50, temperature=0), echo)
    step, calls = writing.session.step, []

    def interrupted(token, state):  # the user presses Ctrl-C during the 12th token's step
        calls.append(token)
        if len(calls) == 12:
            raise KeyboardInterrupt
        return step(token, state)

    writing.session.step = interrupted
    writing.line("ROMEO:")
    text = "".join(shown)
    assert text.endswith(" [stopped]\n") and len(text) > len(" [stopped]\n")
    assert writing.place.text == "ROMEO:" + text.removesuffix(" [stopped]\n")
    writing.session.step = step
    writing.line("/undo")
    assert writing.place.text == "ROMEO:"


# Every setting `sample` takes, as options: a session's first continuation equals
# `sample --prompt` with the same options (on a word run: the repeats are words).
SESSION_SETTINGS = [
    ("--temperature", 0, "--no-repeat-ngram", 2),
    ("--temperature", 0, "--repetition-penalty", 1.6, "--repetition-window", 8),
    ("--temperature", 0.9, "--top-k", 5, "--repetition-penalty", 1.3),
    ("--temperature", 0.8, "--top-p", 1e-40),
    ("--temperature", 1.0, "--top-p", 0.8, "--no-repeat-ngram", 1),
    ("--temperature", 0.7, "--max-copy", 12),
]


@pytest.mark.parametrize("options", SESSION_SETTINGS, ids=lambda o: " ".join(map(str, o)))
def test_a_session_takes_every_setting_sample_takes(trained_runs, options):
    run_dir = trained_runs("word", "gru")
    common = ("--run-dir", run_dir, "--length", 25, "--seed", 3, *options)
    sampled = run_cli("sample", "--prompt", "ROMEO:", *common).output
    session = _piped(common, "/quit\n", "--prompt", "ROMEO:")  # a pipe: no echo of the line
    assert "ROMEO:" + session == sampled


def test_session_commands_set_what_the_options_set(trained_runs):
    run_dir = trained_runs("word", "gru")
    lines = "/no-repeat-ngram 2\n/repetition-penalty 1.4\n/max-copy 12\n/length 20\n\n/quit\n"
    session = _piped(("--run-dir", run_dir, "--temperature", 0, "--seed", 1), lines)
    sampled = run_cli(
        "sample", "--run-dir", run_dir, "--temperature", 0, "--length", 20, "--prompt", "",
        "--no-repeat-ngram", 2, "--repetition-penalty", 1.4, "--max-copy", 12,
    ).output  # fmt: skip
    assert session == sampled
    plain = run_cli(
        "sample", "--run-dir", run_dir, "--temperature", 0, "--length", 20, "--prompt", ""
    ).output
    assert plain != sampled  # (the settings change this text: the session honours them)


def _piped(options, lines: str, *first) -> str:
    """What `sample --interactive OPTIONS` prints to a pipe given `lines`."""
    from click.testing import CliRunner

    from textgen.cli.main import cli

    args = ["sample", "--interactive", *map(str, options), *map(str, first)]
    result = CliRunner().invoke(cli, args, input=lines)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_session_with_beams_continues_with_the_best_beam(trained_runs):
    run = trained_runs.loaded("word", "gru")
    shown = []
    echo = lambda text="", nl=True, err=False: shown.append(text + ("\n" if nl else ""))  # noqa: E731
    settings = SamplingSettings(beams=3, max_new_tokens=15, no_repeat_ngram=2)
    writing = CoWriting(NumpyRun(run.folder), settings, echo)
    writing.line("ROMEO:")
    best = run.generate(["ROMEO:"], settings)[0]
    assert "".join(shown) == best + "\n" and writing.place.text == "ROMEO:" + best
    writing.line("/beams 0")  # back to sampling
    writing.line("/temperature 0")
    writing.line("")
    second = run.generate(["ROMEO:" + best], max_new_tokens=15, temperature=0, no_repeat_ngram=2)
    assert "".join(shown) == best + "\n" + second[0] + "\n"
