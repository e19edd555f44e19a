"""Co-writing: a text written in turns with the model, driven by lines of text.

Each line that is not a command is added to the text and the model continues it
(streamed through `echo`), reading only the new text (`textgen.generate.numpy_loop`). Lines
starting with / are commands: settings, /next, /retry, /undo, /reset, /save (`COMMANDS`).
`textgen sample --interactive` is `interact` (a terminal or a pipe); a notebook can drive it:
`CoWriting(textgen.load_run(path), SamplingSettings()).line("ROMEO:")`.
"""

from __future__ import annotations

import dataclasses
import sys

from textgen.core.errors import ConfigError
from textgen.generate.settings import SamplingSettings


def _setting_commands() -> dict[str, tuple[str, type, str]]:
    """A command for each number or list of texts a user may set in `SamplingSettings`
    (its table: the fields with help), named as its `textgen sample` option: `/flag` ->
    (field, type, help); a list's command adds a text ('-': none)."""
    commands = {"/seed": ("seed", int, "the seed of the next continuations")}
    kinds = {"int": int, "float": float, "tuple[str,": tuple}
    for f in dataclasses.fields(SamplingSettings):
        kind = kinds.get(f.type.split(" ")[0])
        if f.metadata.get("help") and kind:
            flag = (f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),))[0]
            commands["/" + flag[2:]] = (f.name, kind, f.metadata["help"])
    return commands


_USAGE = {int: "N", float: "X", tuple: "TEXT"}
# The settings commands: the setting each sets, the type of its value, its help.
SETTINGS = _setting_commands()
COMMANDS = {
    **{f"{name} {_USAGE[kind]}": what for name, (_, kind, what) in SETTINGS.items()},
    "/label L": "an item run's kind of item ('-': none)",
    "/next": "the 10 most likely next tokens, with their probabilities",
    "/retry": "draw the last continuation again",
    "/undo": "drop the last continuation",
    "/reset": "start a new, empty text",
    "/save FILE": "write the whole text to FILE",
    "/quit": "leave (Ctrl-D too); Ctrl-C stops a continuation",
    "/help": "this list",
}


class CoWriting:
    """The session's state: the text's place, the places to undo to, the settings."""

    def __init__(self, sampler, settings: SamplingSettings, echo=None):
        if not hasattr(sampler, "session"):
            raise ConfigError("--interactive writes with a run folder, --litert or --server")
        self.sampler, self.session, self.echo = sampler, sampler.session(), echo or _print
        settings = sampler.settings(settings)  # what this sampler cannot honour: one line
        if settings.max_new_tokens is None:  # a turn's continuation: shorter than a sample
            settings = SamplingSettings.of(settings, max_new_tokens=200)
        self.settings = settings
        self.place = self.session.start()
        self.undo: list = []  # the places before each continuation, newest last
        self.stream = 0  # a retry draws with the next stream: another continuation

    def line(self, text: str) -> bool:
        """Handle one line typed; False once the session should end."""
        if not text.startswith("/"):
            labels = self.sampler.labels
            (read,) = self.settings.prompts_to_read([text], self.sampler.items, labels)
            unlabelled = self.settings.unlabelled([text], labels)[0] if labels else None
            self.place = self.session.read_prompt(self.place, read, unlabelled)
            self.stream = 0
            self.continuation()
            return True
        name, _, value = text.strip().partition(" ")
        if name == "/quit":
            return False
        try:
            self.command(name, value.strip())
        except ConfigError as err:
            self.echo(f"Error: {err}", err=True)
        return True

    def command(self, name: str, value: str) -> None:
        if name in SETTINGS and SETTINGS[name][1] is tuple:  # one more text, or '-': none
            setting = SETTINGS[name][0]
            texts = () if value in ("", "-") else (*(getattr(self.settings, setting) or ()), value)
            changed = dataclasses.replace(self.settings, **{setting: texts or None})
            self.settings = self.sampler.settings(SamplingSettings.of(changed))
        elif name in SETTINGS:
            setting, kind, _ = SETTINGS[name]
            try:
                given = kind(value)
            except ValueError:
                raise ConfigError(f"{name} takes a number, got {value!r}") from None
            if setting == "beams" and given == 0:  # back to sampling
                self.settings = dataclasses.replace(self.settings, beams=None)
            elif setting == "beams":  # the most likely text: nothing drawn, so no draw settings
                drawn = dict.fromkeys(("temperature", "top_k", "top_p"))
                changed = dataclasses.replace(self.settings, beams=given, **drawn)
                self.settings = self.sampler.settings(changed)
            else:
                changed = SamplingSettings.of(self.settings, **{setting: given})
                self.settings = self.sampler.settings(changed)
        elif name == "/label":
            label = None if value in ("", "-") else value
            SamplingSettings(label=label).prompts_to_read(
                [""], self.sampler.items, self.sampler.labels
            )
            strength = self.settings.label_strength if label else None  # none without one
            self.settings = dataclasses.replace(self.settings, label=label, label_strength=strength)
        elif name == "/next":
            for token, prob in self.session.next_tokens(self.place):
                self.echo(f"{prob:8.4f}  {token!r}")
        elif name == "/retry" and self.undo:
            self.place, self.stream = self.undo.pop(), self.stream + 1
            self.continuation()
        elif name == "/undo" and self.undo:
            self.place = self.undo.pop()
            self.echo(f"(undone: the text is back to {len(self.place.text)} characters)")
        elif name in ("/retry", "/undo"):
            raise ConfigError(f"{name}: no continuation to {name[1:]}")
        elif name == "/reset":
            self.place, self.undo = self.session.start(), []
        elif name == "/save" and value:
            self._save(value)
        elif name == "/help":
            for usage, what in COMMANDS.items():
                self.echo(f"  {usage:24s} {what}")
        else:
            raise ConfigError(f"unknown command {name!r} (or a missing value); /help lists them")

    def continuation(self) -> None:
        """Continue the text, streamed; Ctrl-C stops it where it is. A setting this
        sampler cannot honour (say --max-copy without the training text) is one line."""
        self.undo.append(self.place)
        defaults = getattr(self.sampler, "defaults", None)  # (a server fills its own)
        resolved = self.settings.with_defaults(defaults) if defaults else self.settings
        try:
            if resolved.beams:  # the most likely continuation, shown once it is found
                return self._best_beam(resolved)
            for shown, place in self.session.draw(self.place, resolved, self.stream):
                self.place = place
                self.echo(shown, nl=False)
        except KeyboardInterrupt:
            self.echo(" [stopped]", nl=False)
        except ConfigError as err:
            self.echo(f"Error: {err}", err=True)
            return
        self.echo()

    def _best_beam(self, resolved: SamplingSettings) -> None:
        if hasattr(self.session, "best_beam"):  # a server searches
            text = self.session.best_beam(self.place, resolved)
        else:
            from textgen.generate.numpy_beams import beam_search

            found = [b for b in beam_search(self.session, self.place, resolved) if b.num_tokens]
            text = found[0].completion if found else ""
        self.place = self.session.read(self.place, text)
        self.echo(text)

    def _save(self, path: str) -> None:
        from textgen.core.fileio import atomic_write_text
        from textgen.data.items import strip_markers

        try:
            atomic_write_text(path, strip_markers(self.place.text))
        except OSError as err:
            raise ConfigError(f"cannot write {path}: {err.strerror or err}") from None
        self.echo(f"(saved {len(self.place.text)} characters to {path})")


def interact(writing: CoWriting, first: str = "") -> None:
    """Co-write from stdin, a line at a time, until /quit or its end: a terminal gets line
    editing and history, a pipe works too. `first`, if given, is the first line."""
    terminal = sys.stdin.isatty()
    if terminal:
        import readline  # noqa: F401  (input() gets line editing and history)

        writing.echo("Write a line and the model continues it; /help lists the commands.")
    if first and not writing.line(first):
        return
    while True:
        try:
            text = input("> " if terminal else "")
        except EOFError:
            break
        except KeyboardInterrupt:
            writing.echo()
            continue
        try:
            if not writing.line(text):
                break
        except KeyboardInterrupt:  # while reading a long line: the text is as it was
            writing.echo(" [stopped]")


def _print(text: str = "", nl: bool = True, err: bool = False) -> None:
    """The default `echo` (click.echo's arguments): to stdout, or stderr with `err`."""
    out = sys.stderr if err else sys.stdout
    out.write(text + ("\n" if nl else ""))
    out.flush()
