"""What a resumed or fine-tuned run may change of the config it starts from."""

from __future__ import annotations

import dataclasses

from textgen.core.config import RunConfig, TrainConfig
from textgen.core.errors import ConfigError

# Settings a resumed run may change (recorded in its config.json); any other setting
# given with --resume must equal the run's. The corpus may be named differently (moved
# files) as long as its text is the same: training checks its fingerprint instead.
CHANGEABLE_ON_RESUME = {
    "data": {"sources", "tfds_manual_dir", "data_dir"},
    "train": {
        "epochs", "steps_per_epoch", "learning_rate", "lr_schedule", "clipnorm", "patience",
        "keep_checkpoints", "sample_length", "xla", "val_tokens", "max_minutes",
    },
    "sample": {"length", "temperature", "top_k", "top_p", "stop"},
}  # fmt: skip


def resume_settings(saved: RunConfig, settings: dict[str, dict]) -> tuple[RunConfig, list[str]]:
    """The run's config with the changeable `settings` applied, and what changed.

    `settings` holds what the user gave, by section (as for `RunConfig.with_overrides`).
    Raises ConfigError naming every given setting that contradicts the run.
    """
    conflicts, changes, allowed = [], [], {}
    for section, values in settings.items():
        for name, value in values.items():
            if value is None:
                continue
            old = getattr(getattr(saved, section), name)
            if value == old:
                continue
            if name in CHANGEABLE_ON_RESUME.get(section, ()):
                allowed.setdefault(section, {})[name] = value
                changes.append(f"{name} {old!r} -> {value!r}")
            else:
                conflicts.append(f"{name} is {old!r} in the run, {value!r} given")
    if conflicts:
        raise ConfigError(
            "these settings differ from the run being resumed: "
            + "; ".join(conflicts)
            + " (drop them, or start a new run)"
        )
    return saved.with_overrides(**allowed), changes


# What a fine-tune (`train --init-from RUN`) takes from its parent and may not change: the
# settings that fix the weights' shapes and what a token is.
FIXED_BY_PARENT = {
    "data": ("level", "lowercase"),
    "model": ("cell", "layers", "units", "embedding_dim", "skip_connections"),
}


def fine_tune_config(parent: RunConfig, settings: dict[str, dict]) -> RunConfig:
    """A fine-tune's config: the parent's data, model and sample settings, textgen's
    training defaults (not the parent's budget; they also fine-tune best, see
    docs/experiments.md, "Fine-tuning"), and the user's `settings` (by section) on top.
    Raises ConfigError naming every setting that `FIXED_BY_PARENT` keeps and the user
    gave otherwise."""
    conflicts = []
    for section, names in FIXED_BY_PARENT.items():
        for name in names:
            given, kept = (
                settings.get(section, {}).get(name),
                getattr(getattr(parent, section), name),
            )
            if given is not None and given != kept:
                conflicts.append(f"{name} is {kept!r} in the parent run, {given!r} given")
    if conflicts:
        raise ConfigError(
            "a fine-tune keeps its parent's model and tokens: " + "; ".join(conflicts)
        )
    # the parent's labels keep their tokens, in the parent's order (textgen.data.corpus)
    data = dataclasses.replace(parent.data, label_order=list(parent.corpus.get("labels", {})))
    fresh = dataclasses.replace(
        parent, data=data, train=TrainConfig(), preset=None, textgen_version="", corpus={},
        parent={}, plan={},
    )  # fmt: skip
    return fresh.with_overrides(**settings)
