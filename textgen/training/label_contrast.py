"""A labelled run's second objective: each window likelier under its items' own labels
than under other labels (docs/experiments.md, "Labels learned by contrast").

Trained on the next token alone, a model learns what the two kinds of item share long
before what tells them apart, so at a few hundred steps a sample asked for the rarer kind
reads as the commoner (classifier-free guidance can only amplify a difference the model
has learned). The contrast reads each window a second time with every label swapped for
the next one (label k -> k + 1, the last -> the first; its tokens and the label in mind
before the window), and adds `weight` x -log sigmoid(`SCALE` x the mean, over the
positions with a label in mind, of log p(token | own label) - log p(token | swapped)):
the model as a classifier of its own windows by Bayes' rule (GeDi, Krause et al. 2021,
trains its class-conditional model so). Windows without a label in mind add nothing. It
costs a second forward and backward pass a step, and only in runs with a label memory.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from textgen.model.label_memory import role_in_mind

# The per-position log-likelihood ratio's mean, scaled as a sum over this many positions:
# the posterior of a short item's worth of text.
SCALE = 10.0


class LabelContrast:
    """The contrast term of a model with a label memory, for its vocabulary's `roles`
    (`textgen.data.items.token_roles`)."""

    def __init__(self, roles: list[int], weight: float):
        roles = np.asarray(roles, np.int32)
        labels = int(roles.max())
        token_of = {k: int(np.flatnonzero(roles == k)[0]) for k in range(1, labels + 1)}
        swap = np.arange(len(roles), dtype=np.int32)
        for k, token in token_of.items():
            swap[token] = token_of[k % labels + 1]
        self.weight = weight
        self.roles = roles.tolist()
        self.swap_ids = tf.constant(swap)
        self.swap_labels = tf.constant([0] + [k % labels + 1 for k in range(1, labels + 1)])

    @classmethod
    def of_run(cls, config, roles: list[int]) -> LabelContrast | None:
        """A run's term; None without a label memory, at weight 0, or in a stateful run
        (whose swapped reading would need a state of its own): `RunConfig.contrasts_labels`."""
        return cls(roles, config.train.label_contrast) if config.contrasts_labels else None

    def swapped(self, inputs: tuple) -> tuple:
        """The window with every label swapped for the next one."""
        ids, before = inputs
        return tf.gather(self.swap_ids, ids), tf.gather(self.swap_labels, before)

    def labelled(self, inputs: tuple) -> tf.Tensor:
        """1.0 where a label is in mind at the position (as `LabelMemory` keeps it), else 0."""
        ids, before = inputs
        role = role_in_mind(self.roles, ids)
        role = tf.where(role == 0, before[:, None], role)  # before the window's first setter
        return tf.cast(role > 0, tf.float32)

    def per_window(self, inputs: tuple, own: tf.Tensor, swapped: tf.Tensor) -> tf.Tensor:
        """The term for each window (batch,), from the per-token losses (batch, time) read
        with the own labels and with the swapped ones."""
        mask = self.labelled(inputs)
        count = tf.reduce_sum(mask, axis=1)
        gap = tf.reduce_sum(mask * tf.cast(swapped - own, tf.float32), axis=1)
        ratio = SCALE * gap / tf.maximum(count, 1.0)
        return self.weight * tf.where(count > 0, tf.nn.softplus(-ratio), 0.0)
