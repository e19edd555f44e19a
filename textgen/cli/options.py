"""The `textgen` command's options that several commands share, declared once.

Each option that sets a run's config is named after the config field it sets, so
`settings.settings_by_section` sorts what the user gave into config sections; each sampling
option is named after its `SamplingSettings` field.
"""

from __future__ import annotations

from dataclasses import MISSING, fields

import click

from textgen.core.config import (
    DataConfig,
    ModelConfig,
    SampleConfig,
    TrainConfig,
    validate_repetition,
)
from textgen.core.presets import PRESETS
from textgen.generate.settings import SamplingSettings
from textgen.runs.folder import DEFAULT_ROOT


def options_of(options):
    """A decorator that adds `options` (click.option decorators) in their order."""

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def opt(*flags: str, help: str, **settings):
    """`click.option` with its help last, a line per option."""
    return click.option(*flags, help=help, **settings)


def _ngram_given(ctx, param, value):
    """A given --no-repeat-ngram is 1 to MAX_NGRAM (the library reads 0 as off)."""
    validate_repetition(None, None, value)
    return value


# fmt: off
run_dir_option = click.option("--run-dir", type=click.Path(file_okay=False),
                              help="Run folder (default: the newest run under --root).")
root_option = click.option("--root", default=str(DEFAULT_ROOT), type=click.Path(file_okay=False),
                           help="Folder that holds the run folders.")
run_options = options_of([run_dir_option, root_option])
CONTROLS = ("repetition_penalty", "repetition_window", "no_repeat_ngram", "max_copy")


CHECKPOINTS = click.Choice(["best", "latest"])


def weights_option(what: str):
    return opt("--weights", type=CHECKPOINTS, default="best", help=f"Which checkpoint to {what}.")
# fmt: on


def field_options(*classes, only=(), extra=None):
    """An option for each field of `classes` that has help (or each named in `only`):
    `--name` sets the field `name` (a bool: --name/--no-name, left unset: the preset's
    value), of the field's type; `extra[name]` adds to or replaces the option's settings."""
    options = []
    for f in (f for cls in classes for f in fields(cls) if f.metadata.get("help")):
        if only and f.name not in only:
            continue
        flag, kind = "--" + f.name.replace("_", "-"), f.type.split("[")[0]
        default = f.default if f.default_factory is MISSING else ", ".join(f.default_factory())
        shown = {True: "on", False: "off", None: False}.get(default, str(default))
        settings = dict(help=f.metadata["help"], default=None, show_default=shown)
        if kind.startswith("bool"):
            flag = f"{flag}/--no-{flag[2:]}"
        elif f.metadata["choices"]:
            settings["type"] = click.Choice(f.metadata["choices"])
        elif kind.startswith(("tuple", "list")):
            settings.update(multiple=True, metavar=f.metadata.get("metavar"))
        else:
            settings["type"] = {"int": int, "float": float}.get(kind.split(" ")[0], str)
        settings.update((extra or {}).get(f.name, {}))
        flags = settings.pop("flags", f.metadata.get("flags") or (flag,))
        options.append(click.option(*flags, f.name, **settings))
    return options


def given(cls, opts: dict) -> dict:
    """The options a user gave for the fields of `cls` (unset ones left out)."""
    return {f.name: opts[f.name] for f in fields(cls) if opts.get(f.name) not in (None, ())}


# The repetition controls and the copy guard (shared by `sample` and `evaluate`).
NGRAM = {"no_repeat_ngram": {"callback": _ngram_given}}
control_options = options_of(field_options(SamplingSettings, only=CONTROLS, extra=NGRAM))


# The options that set a run's config (shared by `train` and `compare`).
train_settings = options_of([
    click.option("--preset", type=click.Choice(list(PRESETS)), help="Start from these settings."),
    *field_options(DataConfig, ModelConfig, TrainConfig, SampleConfig),
])  # fmt: skip
