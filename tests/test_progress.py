"""Training's progress as the output can show it: Keras' bar on a terminal, a few plain
lines in a log file or a pipe, only the summary with --quiet."""

import sys

import pytest

from tests.conftest import run_cli
from textgen.training.progress import SECONDS, PlainProgress

pexpect = pytest.importorskip("pexpect", reason="needs pexpect (the test extras)")


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_plain_progress_writes_a_line_a_tenth_of_a_long_epoch():
    lines, clock = [], _Clock()
    progress = PlainProgress(1000, lines.append, clock)
    for step in range(1, 1001):
        clock.now = step * 0.5  # 500 s an epoch: long
        progress.update(step, [("loss", 2.0 - step / 1000)])
    assert len(lines) == 9  # 10% ... 90%; the epoch's end has its own line
    assert lines[0] == "   10% (100/1000 steps, loss 1.9000, 50 s)"
    assert not any("\r" in line or "\x1b" in line or "\b" in line for line in lines)


def test_plain_progress_is_silent_on_short_epochs():
    lines, clock = [], _Clock()
    progress = PlainProgress(1000, lines.append, clock)
    for step in range(1, 1001):
        clock.now = step * (SECONDS / 2000)  # the whole epoch in 15 s
        progress.update(step, [("loss", 1.0)])
    assert lines == []


def _in_a_terminal(*args) -> tuple[int, str]:
    """`textgen train ARGS` in a pseudo-terminal: its exit code and what it showed."""
    command = [sys.executable, "-m", "textgen.cli", "train", *map(str, args)]
    child = pexpect.spawn(command[0], command[1:], encoding="utf-8", timeout=300)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


@pytest.mark.slow
def test_a_log_file_gets_plain_lines_and_a_terminal_the_bar(tmp_path, corpus_file):
    tiny = ["--corpus", corpus_file, "--units", 16, "--layers", 1, "--embedding-dim", 8,
            "--epochs", 3, "--steps-per-epoch", 20, "--batch-size", 8, "--seq-len", 24,
            "--no-xla"]  # fmt: skip
    log = run_cli("train", *tiny, "--root", tmp_path / "a", "--samples", 1).output  # a pipe
    assert "epoch 3: loss" in log and "Samples from" in log and "  sample: " in log
    assert not any(c in log for c in "\r\x1b\b") and len(log.splitlines()) < 100
    (run,) = (tmp_path / "a").iterdir()
    quiet = run_cli("train", "--run-dir", run, "--resume", "--quiet").output.splitlines()
    assert len(quiet) < 10 and quiet[-1].startswith("Sample with:")
    assert quiet[0].startswith(f"Trained {run}: epoch 3") and "best validation" in quiet[0]
    code, terminal = _in_a_terminal(*tiny, "--root", tmp_path / "c", "--samples", 0)
    assert code == 0 and "Epoch 1/3" in terminal and "\r" in terminal and "step" in terminal
