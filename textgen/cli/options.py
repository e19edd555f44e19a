"""The `textgen` command's options that several commands share, declared once.

Each option that sets a run's config is named after the config field it sets, so
`config.settings_by_section` sorts what the user gave into config sections; each sampling
option is named after its `SamplingSettings` field.
"""

from __future__ import annotations

import click

from textgen.core.config import (
    CELLS,
    ITEM_MODES,
    LEVELS,
    LR_SCHEDULES,
    MAX_COPY,
    MAX_NGRAM,
    REPETITION_HISTORY,
    validate_repetition,
)
from textgen.core.presets import PRESETS
from textgen.runs.folder import DEFAULT_ROOT


def _apply(options):
    """A decorator that adds `options` (click.option decorators) in their order."""

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _ngram_given(ctx, param, value):
    """A given --no-repeat-ngram is 1 to MAX_NGRAM (the library reads 0 as off)."""
    validate_repetition(None, None, value)
    return value


# fmt: off
run_dir_option = click.option("--run-dir", type=click.Path(file_okay=False),
                              help="Run folder (default: the newest run under --root).")
root_option = click.option("--root", default=str(DEFAULT_ROOT), type=click.Path(file_okay=False),
                           help="Folder that holds the run folders.")
run_options = _apply([run_dir_option, root_option])
max_copy_option = click.option(
    "--max-copy", type=int, default=0, metavar="N",
    help=f"Never write a span of N characters found in the training text, 2-{MAX_COPY} "
    "(default 0: off). Its index is built once per run and cached.")
# The repetition controls and the copy guard (shared by `sample` and `evaluate`).
control_options = _apply([
    click.option("--repetition-penalty", type=float,
                 help="Divide the logits of recently used tokens by F (CTRL's rule; 1: off)."),
    click.option("--repetition-window", type=int,
                 help=f"Tokens the penalty looks back on, 1-{REPETITION_HISTORY} (default 64)."),
    click.option("--no-repeat-ngram", type=int, callback=_ngram_given,
                 help=f"Never repeat an n-gram of this many tokens, 1-{MAX_NGRAM} (default off)."),
    max_copy_option,
])
CONTROLS = ("repetition_penalty", "repetition_window", "no_repeat_ngram", "max_copy")


def weights_option(what: str):
    return click.option("--weights", type=click.Choice(["best", "latest"]), default="best",
                        help=f"Which checkpoint to {what}.")
# fmt: on


def _setting(flag: str, kind, help: str, **extra):
    """An option that sets the config field named like it (`--seq-len`: seq_len)."""
    return click.option(flag, type=kind, help=help, **extra)


_ON_OFF = {"default": None}  # a --x/--no-x flag left unset keeps the preset's value
# The options that set a run's config (shared by `train` and `compare`).
train_settings = _apply([
    click.option("--corpus", "sources", multiple=True, metavar="SOURCE",
                 help="Text file, directory, glob, tfds:NAME or 'shakespeare' (built in); with "
                 "--items, LABEL=PATH labels a file's items. Repeatable."),
    _setting("--items", click.Choice(ITEM_MODES), "Train on items: each line or paragraph of "
             "a text file is one (JSONL/CSV: each record). Samples are then whole items."),
    click.option("--text-field", "--text-column", "text_field",
                 help="JSONL key / CSV column holding an item's text (default: text)."),
    click.option("--label-field", "--label-column", "label_field",
                 help="JSONL key / CSV column holding an item's label (default: none)."),
    _setting("--preset", click.Choice(list(PRESETS)), "Start from these settings."),
    _setting("--level", click.Choice(LEVELS), "Tokens: characters or words."),
    click.option("--lowercase/--no-lowercase", help="Lowercase the text first.", **_ON_OFF),
    _setting("--max-vocab", int, "Keep the N most frequent tokens (word: 10000)."),
    _setting("--cell", click.Choice(CELLS), "Recurrent cell type (default gru)."),
    _setting("--layers", int, "Number of stacked recurrent layers."),
    _setting("--units", int, "Units per recurrent layer."),
    _setting("--embedding-dim", int, "Size of the token embedding."),
    _setting("--dropout", float, "Dropout after each recurrent layer, in [0, 1)."),
    click.option("--skip-connections/--no-skip-connections", **_ON_OFF,
                 help="Logits read every recurrent layer's output, not only the top's "
                 "(default on)."),
    _setting("--logits-init", float,
             "Logits layer's initial range, times Glorot's (default: 8 for LSTM, else 1)."),
    _setting("--memory-span", int,
             "Chrono-init LSTM/GRU gates to remember 1..N steps (default 100; 0: Keras' init)."),
    _setting("--seq-len", int, "Tokens per training window."),
    _setting("--batch-size", int, "Windows per batch."),
    _setting("--epochs", int, "Epochs to train (with --resume: the new total)."),
    _setting("--steps-per-epoch", int, "Batches per epoch (default: one pass)."),
    _setting("--learning-rate", float, "Adam learning rate."),
    _setting("--lr-schedule", click.Choice(LR_SCHEDULES), "Learning-rate decay."),
    _setting("--clipnorm", float, "Clip the global gradient norm (0: off)."),
    _setting("--val-fraction", float, "Tail of each source held out for validation."),
    _setting("--patience", int, "Stop after N epochs without improvement (0: off)."),
    _setting("--val-tokens", int, "Validate on at most N tokens (1M; 0: all)."),
    _setting("--max-minutes", float, "Stop (validate and save) after this long."),
    _setting("--temperature", float, "Default sampling temperature of the run."),
    _setting("--seed", int, "Random seed for weights and data order."),
    click.option("--xla/--no-xla", help="XLA-compile the training step (default on).", **_ON_OFF),
    click.option("--stateful/--no-stateful", **_ON_OFF,
                 help="Carry the RNN state across windows (truncated BPTT; default off)."),
    _setting("--tfds-manual-dir", click.Path(), "Offline files for tfds: sources."),
    _setting("--data-dir", click.Path(), "Cache for corpora and TFDS (default: data)."),
])  # fmt: skip
