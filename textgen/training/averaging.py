"""The average of a run's last epochs' weights, kept as its best weights when better.

Checkpoint averaging, a late form of stochastic weight averaging (Izmailov et al., 2018):
at the end of the last epoch, the model's weights are averaged with those of the previous
epochs' checkpoints (the run's latest checkpoints, which it keeps anyway): the averages of
the last 2, 3, ..., `average_last` epochs are validated and the best kept if better. The
weights a cosine schedule wanders between near its end score better averaged than alone
("Presets by time budget" in docs/experiments.md). Nothing is kept while training, so
resuming is unchanged: the averages are made from files on disk.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from textgen.training.checkpoints import save_best


def save_average(trainer, step: int) -> None:
    """After the last epoch (at `step`, before its latest checkpoint is saved): average the
    weights with the previous epochs' (2, 3, ... `average_last` epochs in all), validate
    each average, and save the best as the best weights if better than any epoch's. Not in
    distributed runs."""
    count = trainer.config.train.average_last
    earlier = epoch_checkpoints(trainer.latest.checkpoints, trainer.steps_per_epoch, step)
    if trainer.distributed or len(earlier) < 1:
        return
    own = [w.numpy() for w in trainer.model.weights]
    for epochs in range(2, min(count, len(earlier) + 1) + 1):
        assign_average(trainer.model, earlier[-(epochs - 1) :])
        loss = trainer.validation_loss()
        kept = loss < float(trainer.best_val_loss)
        if kept:
            trainer.best_val_loss.assign(loss)
            save_best(trainer.best, trainer.model, trainer.folder.numpy_weights_file, step)
        assign_weights(trainer.model, own)
        verdict = "kept as the best weights" if kept else "not better, not kept"
        trainer.log(
            f"The last {epochs} epochs' weights averaged: validation loss {loss:.4f}, {verdict}"
        )


def epoch_checkpoints(paths: list[str], steps_per_epoch: int, step: int) -> list[str]:
    """The checkpoints among `paths` saved at an epoch's end before `step` (not those an
    interruption saved mid-epoch, nor a fine-tune's first weights), oldest first."""
    ends = []
    for path in paths:
        number = int(path.rsplit("-", 1)[1])
        if 0 < number < step and number % steps_per_epoch == 0:
            ends.append(path)
    return ends


def assign_average(model, paths: list[str]) -> list[np.ndarray]:
    """Give `model` the mean of its weights and those saved in the checkpoints `paths`;
    its own weights are returned (to put back with `assign_weights`)."""
    own = [w.numpy() for w in model.weights]
    total = [w.astype(np.float64) for w in own]
    for path in paths:
        tf.train.Checkpoint(model=model).read(path).expect_partial()
        total = [t + w.numpy() for t, w in zip(total, model.weights)]
    assign_weights(model, [(t / (len(paths) + 1)).astype(w.dtype) for t, w in zip(total, own)])
    return own


def assign_weights(model, values: list[np.ndarray]) -> None:
    for weight, value in zip(model.weights, values):
        weight.assign(value)
