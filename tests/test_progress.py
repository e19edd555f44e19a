"""Training's progress as the output can show it: Keras' bar on a terminal, a few plain
lines in a log file or a pipe, only the summary with --quiet."""

import subprocess
import sys

import pytest

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


def _train(*args, tty: bool = False):
    command = [sys.executable, "-m", "textgen.cli", "train", *map(str, args)]
    if tty:
        child = pexpect.spawn(command[0], command[1:], encoding="utf-8", timeout=300)
        child.expect(pexpect.EOF)
        child.close()
        return child.exitstatus, child.before
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout


@pytest.mark.slow
def test_a_log_file_gets_plain_lines_and_a_terminal_the_bar(tmp_path, corpus_file):
    tiny = ["--corpus", corpus_file, "--units", 16, "--layers", 1, "--embedding-dim", 8,
            "--epochs", 3, "--steps-per-epoch", 20, "--batch-size", 8, "--seq-len", 24,
            "--no-xla", "--samples", 2]  # fmt: skip
    code, log = _train(*tiny, "--root", tmp_path / "a")
    assert code == 0 and "epoch 3: loss" in log and "Samples from" in log
    assert not any(c in log for c in "\r\x1b\b") and len(log.splitlines()) < 100
    code, quiet = _train(*tiny, "--root", tmp_path / "b", "--quiet")
    lines = quiet.splitlines()
    assert code == 0 and len(lines) < 10 and lines[-1].startswith("Sample with:")
    assert "Trained" in quiet and "best validation" in quiet and "Total params" not in quiet
    code, terminal = _train(*tiny, "--root", tmp_path / "c", tty=True)
    assert code == 0 and "Epoch 1/3" in terminal and "\r" in terminal and "step" in terminal
