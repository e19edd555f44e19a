"""Token ids -> (input, target) windows -> shuffled, batched, prefetched tf.data pipelines."""

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


def training_dataset(ids: np.ndarray, seq_len: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """Endless batches of (inputs, targets), (batch, seq_len) int32, reshuffled each pass.

    Only window *indices* are shuffled, so a checkpoint of the iterator stays small and a
    resumed run sees exactly the batches it would have seen.
    """
    windows = tf.constant(make_windows(ids, seq_len))  # (num_windows, seq_len + 1)
    num_windows = int(windows.shape[0])
    dataset = (
        tf.data.Dataset.range(num_windows)
        .shuffle(num_windows, seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .map(lambda index: split_input_target(tf.gather(windows, index)))
        .prefetch(tf.data.AUTOTUNE)
    )
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options)


def validation_dataset(ids: np.ndarray, seq_len: int, batch_size: int) -> tf.data.Dataset:
    """One pass over the validation windows, in order, the last batch possibly smaller."""
    windows = make_windows(ids, seq_len)
    return (
        tf.data.Dataset.from_tensor_slices(windows)
        .batch(batch_size)
        .map(split_input_target)
        .prefetch(tf.data.AUTOTUNE)
    )
