"""The `textgen` command: a thin click layer over the library.

Each command parses its options, calls one library function and prints what it returns.
Heavy imports (TensorFlow) happen inside the commands so `textgen --help` is instant.
Every user error is printed as one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import os
import sys

import click

from textgen.cli.runs import evaluate, export, info, serve_web
from textgen.cli.sample import sample
from textgen.cli.train import compare, train
from textgen.core.errors import TextgenError


class TextgenGroup(click.Group):
    """A click group that reports every error as one line, never a traceback."""

    def main(self, args=None, prog_name=None, **kwargs):
        kwargs.pop("standalone_mode", None)
        debug = "--debug" in (sys.argv[1:] if args is None else list(args))
        try:
            code = super().main(args, prog_name or "textgen", standalone_mode=False, **kwargs)
        except click.ClickException as err:  # usage errors: bad option values and so on
            _fail(err.format_message(), err.exit_code)
        except TextgenError as err:
            _fail(str(err), err.exit_code)
        except (KeyboardInterrupt, click.Abort):
            _fail("aborted", 130)
        except Exception as err:  # a bug or an unforeseen failure: still one line
            if debug or os.environ.get("TEXTGEN_DEBUG", "") not in ("", "0"):
                raise
            first = (str(err).strip().splitlines() or [""])[0][:300]
            hint = "rerun with --debug or TEXTGEN_DEBUG=1 for the traceback"
            _fail(f"{type(err).__name__}: {first} ({hint})", 1)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    sys.exit(code)


@click.group(
    cls=TextgenGroup,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.version_option(package_name="textgen")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
def cli(debug: bool) -> None:
    """Train RNN text generators, sample from them, and export them to TF Serving."""


for command in (train, compare, sample, evaluate, info, export, serve_web):
    cli.add_command(command)


def main() -> None:
    cli.main()
