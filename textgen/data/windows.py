"""Token ids -> (input, target) windows -> shuffled, batched, prefetched tf.data pipelines.

With `labels` (a `LabelsBefore`, for a model with a label memory) each window's input is
(its ids, the label in mind before its first token), so the label of an item that began
before the window is known from the window's first token on, as in generation.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def split_input_target(window: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A window of seq_len+1 ids -> (its first seq_len ids, its last seq_len ids)."""
    return window[..., :-1], window[..., 1:]


def make_windows(ids: np.ndarray, seq_len: int) -> np.ndarray:
    """Non-overlapping windows of seq_len+1 ids, (num_windows, seq_len+1); the rest is dropped."""
    num_windows = len(ids) // (seq_len + 1)
    return np.asarray(ids[: num_windows * (seq_len + 1)], np.int32).reshape(
        num_windows, seq_len + 1
    )


class LabelsBefore:
    """The label in mind just before any position of a text's `ids`: that of the last
    token before it that sets or clears one (`textgen.data.items.token_roles`), 0 (none)
    if none does or it clears. Holds only those tokens' positions and labels."""

    CHUNK = 1 << 24  # ids read at a time (the text may be a large memory-mapped array)

    def __init__(self, ids: np.ndarray, roles: list[int]):
        roles = np.asarray(roles, np.int32)
        positions, labels = [], []
        for start in range(0, len(ids), self.CHUNK):
            role = roles[np.asarray(ids[start : start + self.CHUNK])]
            setting = np.flatnonzero(role)
            positions.append(setting + start)
            labels.append(np.maximum(role[setting], 0))
        self.positions = np.concatenate(positions) if positions else np.zeros(0, np.int64)
        self.labels = np.concatenate(labels).astype(np.int32) if labels else np.zeros(0, np.int32)

    def __call__(self, starts: np.ndarray) -> np.ndarray:
        """The label in mind before each of the positions `starts` (int32, their shape)."""
        last = np.searchsorted(self.positions, starts) - 1  # the last setting token before
        if not len(self.labels):
            return np.zeros(np.shape(starts), np.int32)
        return np.where(last >= 0, self.labels[np.maximum(last, 0)], 0).astype(np.int32)


# Batches ready ahead of the step. A fixed number, not AUTOTUNE: reading a batch is a
# NumPy index (microseconds), so autotuning has nothing to tune, and its background
# threads made an old iterator's destruction (when the garbage collector frees it, e.g.
# in the middle of tracing a generator after training) wait for up to a minute.
PREFETCH = 2


def _options() -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = False
    return options


def training_dataset(
    ids: np.ndarray,
    seq_len: int,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    labels: LabelsBefore | None = None,
) -> tf.data.Dataset:
    """Endless batches of (inputs, targets), (batch, seq_len) int32, reshuffled each pass.

    `ids` may be a memory-mapped array of any size: each batch reads its windows from it,
    in an order drawn by a stateless permutation of the window indices per pass (TF's
    `index_shuffle` op, seeded by seed and pass number). Nothing but a step counter is
    state: `start_step` picks up exactly where a run stopped (no iterator checkpoint).
    """
    window = seq_len + 1
    num_windows = len(ids) // window
    if num_windows < 1:
        raise ValueError(f"{len(ids)} ids make no window of {window}")
    offsets = np.arange(window)

    def read_windows(indices: np.ndarray) -> np.ndarray:
        return np.asarray(ids[indices[:, None] * window + offsets], np.int32)

    def read_labels(indices: np.ndarray) -> np.ndarray:
        return labels(indices * window)

    def window_indices(steps: tf.Tensor) -> tf.Tensor:
        passes, positions = steps // num_windows, steps % num_windows
        seed_column = tf.fill(tf.shape(steps), tf.constant(seed, tf.int64))
        seeds = tf.stack([seed_column, passes, tf.zeros_like(passes)], 1)  # (batch, 3)
        max_index = tf.constant(num_windows - 1, tf.int64)
        return tf.raw_ops.RandomIndexShuffle(index=positions, seed=seeds, max_index=max_index)

    def batch_of_windows(steps: tf.Tensor) -> tuple:
        indices = window_indices(steps)
        windows = tf.numpy_function(read_windows, [indices], tf.int32, stateful=False)
        windows.set_shape([batch_size, window])
        inputs, targets = split_input_target(windows)
        if labels is None:
            return inputs, targets
        before = tf.numpy_function(read_labels, [indices], tf.int32, stateful=False)
        before.set_shape([batch_size])
        return (inputs, before), targets

    dataset = (
        tf.data.Dataset.counter(start=start_step * batch_size)
        .batch(batch_size, drop_remainder=True)
        .map(batch_of_windows)
        .prefetch(PREFETCH)
    )
    options = _options()
    # Several workers: each takes its share of every global batch (the data is one stream).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def stream_windows_per_pass(num_ids: int, seq_len: int, batch_size: int) -> int:
    """Stateful training: windows of seq_len+1 tokens in each of the batch_size streams."""
    return (num_ids // batch_size - 1) // seq_len


def stateful_dataset(
    ids: np.ndarray, seq_len: int, batch_size: int, start_step: int = 0
) -> tf.data.Dataset:
    """Endless batches for truncated backpropagation through time (char-rnn's way).

    The ids are cut into `batch_size` contiguous streams; batch k holds window k of every
    stream, so row b of batch k+1 continues row b of batch k exactly where it ended and
    the RNN state can be carried over. Each pass starts again at window 0 (the trainer
    resets the state there). Like `training_dataset`, the only state is the step.
    """
    stream = len(ids) // batch_size
    per_pass = stream_windows_per_pass(len(ids), seq_len, batch_size)
    if per_pass < 1:
        raise ValueError(f"{len(ids)} ids make no window of {seq_len + 1} in {batch_size} streams")
    rows = np.arange(batch_size)[:, None] * stream + np.arange(seq_len + 1)

    def read_windows(step: np.ndarray) -> np.ndarray:
        return np.asarray(ids[rows + (int(step) % per_pass) * seq_len], np.int32)

    def batch_of_windows(step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        windows = tf.numpy_function(read_windows, [step], tf.int32, stateful=False)
        windows.set_shape([batch_size, seq_len + 1])
        return split_input_target(windows)

    dataset = tf.data.Dataset.counter(start=start_step).map(batch_of_windows).prefetch(PREFETCH)
    options = _options()
    return dataset.with_options(options)


def validation_dataset(
    ids: np.ndarray, seq_len: int, batch_size: int, labels: LabelsBefore | None = None
) -> tf.data.Dataset:
    """One pass over the validation windows, in order, the last batch possibly smaller."""
    windows = make_windows(ids, seq_len)
    if labels is None:
        dataset = tf.data.Dataset.from_tensor_slices(windows).batch(batch_size)
        dataset = dataset.map(split_input_target)
    else:
        before = labels(np.arange(len(windows)) * (seq_len + 1))
        dataset = tf.data.Dataset.from_tensor_slices((windows, before)).batch(batch_size)
        dataset = dataset.map(lambda w, b: ((w[:, :-1], b), w[:, 1:]))
    dataset = dataset.prefetch(PREFETCH)
    return dataset.with_options(_options())
