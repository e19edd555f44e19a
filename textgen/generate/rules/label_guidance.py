"""Label guidance: classifier-free guidance (Sanchez et al., 2023).

An item run learns items with their label and, one in five, without it. A guided row is
read twice, with its label and without (its twin); each step takes its token from
`unlabelled + strength x (labelled - unlabelled)` and feeds it to both. Strength 1 is the
labelled logits themselves (no guidance); above 1 the label's pull is strengthened, so a
sample keeps to its kind where the label token alone fades. In the graph the twins ride
in the second half of the batch.
"""

from __future__ import annotations

import numpy as np

from textgen.core.lazy_tf import tf


class LabelGuidance:
    """The logits a guided row chooses from, given its two readings."""

    @staticmethod
    def numpy(labelled: np.ndarray, unlabelled: np.ndarray, strength: float) -> np.ndarray:
        """(vocab,) float32: unlabelled + strength x (labelled - unlabelled); strength 1:
        the labelled logits unchanged."""
        labelled = labelled.astype(np.float32)
        if strength == 1.0:
            return labelled
        unlabelled = unlabelled.astype(np.float32)
        return unlabelled + np.float32(strength) * (labelled - unlabelled)

    @staticmethod
    def graph(logits: tf.Tensor, strength: tf.Tensor) -> tf.Tensor:
        """(batch, vocab): `logits` (2 x batch, vocab) holds each row's labelled reading,
        then its twin's; `strength` (batch,)."""
        batch = tf.shape(strength)[0]
        labelled, unlabelled = logits[:batch], logits[batch:]
        mixed = unlabelled + strength[:, None] * (labelled - unlabelled)
        return tf.where(strength[:, None] == 1.0, labelled, mixed)


def twice(x: tf.Tensor, axis: int = 0) -> tf.Tensor:
    """`x` for the labelled rows and again for their twins."""
    return tf.concat([x, x], axis=axis)
