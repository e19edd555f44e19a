"""An epoch's progress as the user's output can show it: Keras' bar on a terminal, plain
lines where the output is a file or a pipe (a log under nohup, CI, a notebook's
subprocess), nothing when quiet.

Keras' `Progbar` redraws one line with carriage returns and escape codes, which in a log
file become a frame per update (a 2-minute run wrote 240 KB). `PlainProgress` takes the
same `update` calls and writes a line only every `EVERY` of a long epoch; the epoch's
own line (`epoch_log.report_epoch`) says the rest.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import keras

QUIET, BAR, PLAIN = 0, 1, 2  # the trainer's `verbose`
EVERY = 0.1  # a plain line each tenth of an epoch ...
SECONDS = 30.0  # ... but only once 30 s have passed since the last line (long epochs)


class PlainProgress:
    """`update(current, values)` as `keras.utils.Progbar`'s, writing plain lines."""

    def __init__(self, target: int, log: Callable[[str], None], clock=time.perf_counter):
        self.target, self.log, self.clock = target, log, clock
        self.started = self.last = clock()
        self.next = EVERY

    def update(self, current: int, values=None) -> None:
        share, now = current / max(self.target, 1), self.clock()
        if share < self.next or current >= self.target or now - self.last < SECONDS:
            return
        figures = "".join(f", {name} {float(value):.4f}" for name, value in values or ())
        self.log(
            f"  {share:4.0%} ({current}/{self.target} steps{figures}, "
            f"{now - self.started:.0f} s)"
        )
        self.last, self.next = now, (int(share / EVERY) + 1) * EVERY


class _Silent:
    def update(self, current: int, values=None) -> None:
        pass


def shown_progress(quiet: bool, stream=None) -> int:
    """How a command shows training's progress on `stream` (default stdout): nothing when
    quiet, the bar on a terminal, plain lines in a file or a pipe."""
    stream = sys.stdout if stream is None else stream
    return QUIET if quiet else BAR if stream.isatty() else PLAIN


def epoch_progress(target: int, verbose: int, log: Callable[[str], None]):
    """The progress display of an epoch of `target` steps (`verbose`: QUIET, BAR, PLAIN)."""
    if verbose == BAR:
        return keras.utils.Progbar(target, verbose=1, stateful_metrics=["loss"])
    if verbose == PLAIN:
        return PlainProgress(target, log)
    return _Silent()
