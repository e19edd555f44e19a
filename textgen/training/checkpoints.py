"""Saving a run's checkpoints: one clear error when it fails, the best weights for NumPy too."""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from textgen.core.errors import RunError
from textgen.model.numpy_step import write_weights


def save_checkpoint(manager: tf.train.CheckpointManager, step: int) -> str:
    """Save a checkpoint (its path returned); a full disk or unwritable folder is one
    clear error.

    CheckpointManager writes the files first and its index last, so a failed save leaves
    the previous checkpoint in place and in use.
    """
    try:
        return manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as err:
        reason = getattr(err, "strerror", None) or str(err).strip().splitlines()[0][:200]
        raise RunError(
            f"cannot save a checkpoint in {manager.directory}: {reason}; the last good "
            f"checkpoint is kept ({manager.latest_checkpoint or 'none yet'}). Free disk "
            "space or fix the folder's permissions, then resume with --resume"
        ) from None


def save_best(manager: tf.train.CheckpointManager, model, numpy_file: Path, step: int) -> None:
    """Save the best checkpoint, then its weights for sampling without TensorFlow
    (`numpy_file`, naming the checkpoint: a crash in between leaves it naming an older
    one, which `textgen sample` then does not use)."""
    path = save_checkpoint(manager, step)
    try:
        write_weights(model, numpy_file, os.path.basename(path))
    except OSError as err:
        raise RunError(f"cannot write {numpy_file}: {err}") from None
