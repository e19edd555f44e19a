"""Weight averaging: an exponential moving average of the weights (Polyak averaging).

With `train.ema` (the average's momentum, e.g. 0.999: about the last 1,000 steps) Keras'
optimizer keeps an average of every weight (`use_ema`), updated with each step inside
the compiled step. At each epoch's end the trainer validates the averaged weights too and
saves them as the run's best weights when they score better than the weights themselves
and than the best so far; training goes on from its own weights. The averages are
optimizer variables, saved in each checkpoint, so a resumed run goes on exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager


@contextmanager
def averaged_weights(optimizer, variables: Sequence) -> Iterator[None]:
    """Inside the block `variables` (the model's trainable ones) hold the optimizer's
    averages; afterwards their own values again."""
    own = [variable.numpy() for variable in variables]
    optimizer.finalize_variable_values(variables)
    try:
        yield
    finally:
        for variable, value in zip(variables, own):
            variable.assign(value)
