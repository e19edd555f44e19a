"""The optimizer a run trains with: Adam (AdamW with a weight decay), its learning-rate
schedule (constant, cosine, or a budget's plan) and gradient clipping."""

from __future__ import annotations

import keras

from textgen.core.config import RunConfig
from textgen.training.plan import Plan, PlannedDecay


def build_optimizer(
    config: RunConfig, total_steps: int, variables: list
) -> tuple[keras.optimizers.Optimizer, PlannedDecay | None]:
    """The run's optimizer, built for `variables`, and the budget's schedule (None without
    a budget), which `plan_run` sets once the plan is made."""
    cfg = config.train
    learning_rate, schedule = cfg.learning_rate, None
    if cfg.minutes or config.plan:  # a budget: its plan's schedule (training.plan)
        learning_rate = schedule = PlannedDecay(cfg.learning_rate)
        if config.plan:
            schedule.set(Plan.from_dict(config.plan))
    elif cfg.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate, decay_steps=total_steps, alpha=0.1
        )
    clip = cfg.clipnorm or None
    if cfg.weight_decay:  # every weight but biases (docs/experiments.md, "Presets")
        optimizer = keras.optimizers.AdamW(learning_rate, cfg.weight_decay, global_clipnorm=clip)
        optimizer.exclude_from_weight_decay(var_names=["bias"])
    else:
        optimizer = keras.optimizers.Adam(learning_rate, global_clipnorm=clip)
    optimizer.build(variables)
    return optimizer, schedule
