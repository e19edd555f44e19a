"""How training stops early: Ctrl-C and SIGTERM (progress saved), and a diverged loss."""

from __future__ import annotations

import signal

from textgen.core.errors import TextgenError
from textgen.runs.folder import RunFolder


class TrainingInterrupted(TextgenError):
    """Ctrl-C (SIGINT) or SIGTERM during training; the latest state was saved to `folder`.

    `exit_code` is what a shell reports for the signal: 130 for SIGINT, 143 for SIGTERM.
    """

    def __init__(self, folder: RunFolder, signal_number: int = signal.SIGINT):
        name = signal.Signals(signal_number).name
        super().__init__(
            f"Stopped by {name}; progress saved. Resume with: "
            f"textgen train --run-dir {folder.path} --resume"
        )
        self.folder, self.signal_name = folder, name
        self.exit_code = 128 + signal_number


class TrainingDiverged(TextgenError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Kubernetes, Docker and batch schedulers send), handled as Ctrl-C is."""


class SigtermFlag:
    """Within the block, SIGTERM sets `received` (main thread only; else unchanged).

    The handler only records the signal: an exception raised from a signal handler can
    land inside a TensorFlow C++ call and come out as another error. The training loop
    checks the flag after each step and stops there, saving.
    """

    def __init__(self):
        self.received = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: signals cannot be handled here
            self._previous = None
        return self

    def _handle(self, signum, frame):
        self.received = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
