"""The `textgen` command's options that several commands share, declared once.

Each option that sets a run's config is named after the config field it sets, so
`config.settings_by_section` sorts what the user gave into config sections.
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
)
from textgen.core.presets import PRESETS
from textgen.runs.folder import DEFAULT_ROOT

run_dir_option = click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    help="Run folder (default: the newest run under --root).",
)
root_option = click.option(
    "--root",
    default=str(DEFAULT_ROOT),
    type=click.Path(file_okay=False),
    help="Folder that holds the run folders.",
)


def control_options(command):
    """The repetition controls and the copy guard (shared by `sample` and `evaluate`)."""
    options = [
        click.option(
            "--repetition-penalty",
            type=float,
            help="Divide the logits of recently used tokens by F (CTRL's rule; 1: off).",
        ),
        click.option(
            "--repetition-window",
            type=int,
            help=f"Tokens the penalty looks back on, 1-{REPETITION_HISTORY} (default 64).",
        ),
        click.option(
            "--no-repeat-ngram",
            type=int,
            help=f"Never repeat an n-gram of this many tokens, 1-{MAX_NGRAM} (default off).",
        ),
        max_copy_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


max_copy_option = click.option(
    "--max-copy",
    type=int,
    default=0,
    metavar="N",
    help=f"Never write a span of N characters found in the training text, 2-{MAX_COPY} "
    "(default 0: off). Its index is built once per run and cached.",
)


def control_settings(opts: dict) -> dict:
    """The repetition controls and copy guard given, checked (ConfigError: exit code 2)."""
    from textgen.core.config import validate_max_copy, validate_repetition

    names = ("repetition_penalty", "repetition_window", "no_repeat_ngram")
    validate_repetition(*(opts[name] for name in names))
    validate_max_copy(opts["max_copy"])
    return {name: opts[name] for name in (*names, "max_copy")}


def weights_option(what: str):
    return click.option(
        "--weights",
        type=click.Choice(["best", "latest"]),
        default="best",
        help=f"Which checkpoint to {what}.",
    )


def train_settings(command):
    """The options that set a run's config (shared by `train` and `compare`); each option's
    name is the config field it sets (`config.settings_by_section` sorts them)."""
    for option in reversed(_SETTING_OPTIONS):
        command = option(command)
    return command


_SETTING_OPTIONS = [
    click.option(
        "--corpus",
        "sources",
        multiple=True,
        metavar="SOURCE",
        help="Text file, directory, glob, tfds:NAME or 'shakespeare' (built in); with "
        "--items, LABEL=PATH labels a file's items. Repeatable.",
    ),
    click.option(
        "--items",
        type=click.Choice(ITEM_MODES),
        help="Train on items: each line or paragraph of a text file is one (JSONL/CSV: each "
        "record). Samples are then whole items.",
    ),
    click.option(
        "--text-field",
        "--text-column",
        "text_field",
        help="JSONL key / CSV column holding an item's text (default: text).",
    ),
    click.option(
        "--label-field",
        "--label-column",
        "label_field",
        help="JSONL key / CSV column holding an item's label (default: none).",
    ),
    click.option("--preset", type=click.Choice(list(PRESETS)), help="Start from these settings."),
    click.option("--level", type=click.Choice(LEVELS), help="Tokens: characters or words."),
    click.option("--lowercase/--no-lowercase", default=None, help="Lowercase the text first."),
    click.option("--max-vocab", type=int, help="Keep the N most frequent tokens (word: 10000)."),
    click.option("--cell", type=click.Choice(CELLS), help="Recurrent cell type (default gru)."),
    click.option("--layers", type=int, help="Number of stacked recurrent layers."),
    click.option("--units", type=int, help="Units per recurrent layer."),
    click.option("--embedding-dim", type=int, help="Size of the token embedding."),
    click.option("--dropout", type=float, help="Dropout after each recurrent layer, in [0, 1)."),
    click.option(
        "--skip-connections/--no-skip-connections",
        default=None,
        help="Logits read every recurrent layer's output, not only the top's (default on).",
    ),
    click.option(
        "--logits-init",
        type=float,
        help="Logits layer's initial range, times Glorot's (default: 8 for LSTM, else 1).",
    ),
    click.option(
        "--memory-span",
        type=int,
        help="Chrono-init LSTM/GRU gates to remember 1..N steps (default 100; 0: Keras' init).",
    ),
    click.option("--seq-len", type=int, help="Tokens per training window."),
    click.option("--batch-size", type=int, help="Windows per batch."),
    click.option("--epochs", type=int, help="Epochs to train (with --resume: the new total)."),
    click.option("--steps-per-epoch", type=int, help="Batches per epoch (default: one pass)."),
    click.option("--learning-rate", type=float, help="Adam learning rate."),
    click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), help="Learning-rate decay."),
    click.option("--clipnorm", type=float, help="Clip the global gradient norm (0: off)."),
    click.option("--val-fraction", type=float, help="Tail of each source held out for validation."),
    click.option("--patience", type=int, help="Stop after N epochs without improvement (0: off)."),
    click.option("--val-tokens", type=int, help="Validate on at most N tokens (1M; 0: all)."),
    click.option("--max-minutes", type=float, help="Stop (validate and save) after this long."),
    click.option("--temperature", type=float, help="Default sampling temperature of the run."),
    click.option("--seed", type=int, help="Random seed for weights and data order."),
    click.option(
        "--xla/--no-xla", default=None, help="XLA-compile the training step (default on)."
    ),
    click.option(
        "--stateful/--no-stateful",
        default=None,
        help="Carry the RNN state across windows (truncated BPTT; default off).",
    ),
    click.option("--tfds-manual-dir", type=click.Path(), help="Offline files for tfds: sources."),
    click.option(
        "--data-dir", type=click.Path(), help="Cache for corpora and TFDS (default: data)."
    ),
]
