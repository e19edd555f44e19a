"""Flat settings (a config field's name -> value, as the CLI's options give them) sorted
into a run config's sections, a preset's own settings first."""

from __future__ import annotations

import dataclasses
from typing import Any

from textgen.core.config import SECTIONS
from textgen.core.errors import ConfigError
from textgen.core.presets import PRESETS


def settings_by_section(given: dict[str, Any], preset: str | None = None) -> dict[str, dict]:
    """Flat settings (a config field's name -> value) sorted into config sections.

    Unset values (None, or an empty tuple/list) and names that are no config field are
    left out; tuples become lists, as in `config.json`. With `preset`, the preset's own
    settings come first and the given ones override them.
    """
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    sections: dict[str, dict] = {
        name: dict(PRESETS.get(preset, {}).get(name, {})) for name in SECTIONS
    }
    fields = {f.name: name for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    for key, value in given.items():
        if key in fields and value is not None and value != () and value != []:
            sections[fields[key]][key] = list(value) if isinstance(value, tuple) else value
    steps_given = any(given.get(key) is not None for key in ("epochs", "steps_per_epoch"))
    if steps_given and given.get("minutes") is None:  # steps replace a preset's budget
        sections["train"].pop("minutes", None)
    return sections
