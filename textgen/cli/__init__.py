"""The `textgen` command: click commands and their shared options."""

from textgen.cli.main import cli, main

__all__ = ["cli", "main"]
