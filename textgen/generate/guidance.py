"""Label guidance in the graph: classifier-free guidance (Sanchez et al., 2023).

An item run learns items with their label and, one in five, without it. A guided row is
read twice, with its label and without (its twin, in the second half of the batch); each
step takes its token from `unlabelled + strength x (labelled - unlabelled)` and feeds it
to both. Strength 1 is the labelled logits themselves (no guidance); above 1 the label's
pull is strengthened, so a sample keeps to its kind where the label token alone fades.
"""

from __future__ import annotations

import tensorflow as tf


def guided_logits(logits: tf.Tensor, strength: tf.Tensor) -> tf.Tensor:
    """(batch, vocab) logits to choose from: `logits` (2 x batch, vocab) holds each row's
    labelled reading, then its unlabelled twin; `strength` (batch,), 1: the labelled
    logits unchanged (as `reference.guided_logits` in NumPy)."""
    batch = tf.shape(strength)[0]
    labelled, unlabelled = logits[:batch], logits[batch:]
    mixed = unlabelled + strength[:, None] * (labelled - unlabelled)
    return tf.where(strength[:, None] == 1.0, labelled, mixed)


def twice(x: tf.Tensor, axis: int = 0) -> tf.Tensor:
    """`x` for the labelled rows and again for their twins."""
    return tf.concat([x, x], axis=axis)
