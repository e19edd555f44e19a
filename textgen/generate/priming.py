"""Reading prompts through the network: the state to generate from, or their scores."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from textgen.core.config import REPETITION_HISTORY
from textgen.generate.loop import LoopPlan, blocked_loop


class Primed(NamedTuple):
    """The network after reading each row's start token and prompt."""

    logits: tf.Tensor  # (batch, vocab) for the next token
    state: tuple  # per layer, (h, c) or (h,)
    last_ids: tf.Tensor  # (batch,) each row's last token
    history: tf.Tensor  # (batch, REPETITION_HISTORY) the last tokens read, oldest first, -1 empty
    nll: tf.Tensor  # (batch,) summed NLL of the prompt's tokens (with_nll), else zeros
    counts: tf.Tensor  # (batch,) prompt tokens
    healed: tf.Tensor | None = None  # (batch,) the last token backed off (-1 none), if healing


def prime(
    one_step, tokenizer, plan: LoopPlan, prompts: tf.Tensor, with_nll=False, healing=None
) -> Primed:
    """Feed each row's start token and prompt (batch,) strings through the network.

    With `healing` ((`rules.healing.Healing`, (batch,) bools: the rows that may heal)) a
    row's last token is backed off where it heals (`Primed.healed`); the logits are as
    the network gives them (the caller masks the rows it draws from: a guided row's twin
    must stay unmasked).

    With `plan.unroll` > 1 the prompts are read in blocks of that many tokens while at
    least half a block is prompt (rows that end inside a block are masked), then one
    token per iteration; `with_nll` sums the NLL of each prompt token after the first.
    """
    ids = tokenizer.encode(prompts)  # ragged (batch, tokens)
    healed = None
    if healing is not None:
        ids, healed = healing[0].graph_split(ids, healing[1])
    batch = tf.shape(prompts)[0]
    start = tf.fill([batch, 1], tokenizer.start_id)
    ids = tf.concat([tf.RaggedTensor.from_tensor(start), ids], axis=1)
    empty = Primed(
        tf.zeros([batch, one_step.head.units]), one_step.zero_state(batch), start[:, 0],
        tf.fill([batch, REPETITION_HISTORY], -1), tf.zeros([batch]), tf.zeros([batch], tf.int32),
    )  # fmt: skip
    return feed(one_step, plan, ids, empty, with_nll)._replace(healed=healed)


def feed(one_step, plan: LoopPlan, ids: tf.RaggedTensor, start: Primed, with_nll=False) -> Primed:
    """Feed token `ids` (ragged (batch, tokens), a row may have none) through the network
    from `start` (its logits, state (batch, units), last ids and history). Blocks as in
    `prime`; `with_nll`: the summed NLL of each token after a row's first."""
    batch = tf.shape(start.last_ids)[0]
    lengths = tf.cast(ids.row_lengths(), tf.int32)  # (batch,)
    padded = ids.to_tensor()  # (batch, max_len)
    steps, block = tf.shape(padded)[1], plan.unroll
    padded = tf.pad(padded, [[0, 0], [0, max(block, 1)]])  # room for a masked last block
    last = tf.gather(padded, tf.maximum(lengths - 1, 0), batch_dims=1)
    last_ids = tf.where(lengths > 0, last, start.last_ids)
    feature_major = plan.feature_major
    weights = one_step.read_weights(feature_major)

    def token(t, logits, state, nll):
        new_logits, new_state = one_step.step(weights, padded[:, t], state, feature_major)
        active = t < lengths  # (batch,)
        if with_nll:  # NLL of the token after position t, for rows that have one
            target = padded[:, t + 1]
            token_nll = tf.nn.sparse_softmax_cross_entropy_with_logits(target, new_logits)
            nll = nll + tf.where(t + 1 < lengths, token_nll, 0.0)
        logits = tf.where(active[:, None], new_logits, logits)
        rows = active[None, :] if feature_major else active[:, None]
        state = tf.nest.map_structure(lambda new, old: tf.where(rows, new, old), new_state, state)
        return t + 1, logits, state, nll

    def body_of(size: int):
        def body(*loop):
            for _ in range(size):
                loop = token(*loop)
            return loop

        return body

    loop = (tf.constant(0), start.logits, plan.layout(start.state), tf.zeros([batch]))
    _, logits, state, nll = blocked_loop(
        body_of, loop, block, lambda t, *_: t + block // 2 < steps, lambda t, *_: t < steps
    )
    history = pushed_history(start.history, padded, lengths)
    return Primed(logits, plan.layout(state), last_ids, history, nll, lengths - 1)


def pushed_history(history: tf.Tensor, ids: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
    """Each row's last REPETITION_HISTORY tokens, oldest first (the repetition controls'),
    after the first `counts` (batch,) of its `ids` (batch, steps) follow `history`."""
    read = tf.concat([history, ids], axis=1)
    positions = counts[:, None] + tf.range(REPETITION_HISTORY)[None, :]
    return tf.gather(read, positions, batch_dims=1)
