"""User-facing error types.

Every error a user can cause is one of these. The CLI prints its message as one line
and exits with `exit_code`; library users catch them like any exception.
"""


class TextgenError(Exception):
    """Base class: something the user can fix. `exit_code` is what the CLI returns."""

    exit_code = 1


class ConfigError(TextgenError, ValueError):
    """A setting is out of range or unknown (a usage error, exit code 2)."""

    exit_code = 2


class CorpusError(TextgenError):
    """The training text is missing, unreadable, empty or too short."""


class CorpusTooShort(CorpusError):
    """The corpus is too short for the run's windows, batch or split (fixed by settings
    or more text: a usage error, exit code 2, as the issue #47 asks)."""

    exit_code = 2


class RunError(TextgenError):
    """A run folder is missing, incomplete, or cannot be written."""


class ExportError(TextgenError):
    """An export cannot be written where it was asked for."""


class ServerError(TextgenError):
    """A TF Serving server could not be reached or answered with an error."""
