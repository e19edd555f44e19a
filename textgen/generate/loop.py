"""The generation loop's numeric core: the network stepped token by token, each token
chosen by a `TokenChoice`, a chunk of tokens per call (numbers only, so XLA can compile it).

`LoopPlan` says how the loop runs: XLA or not, tokens per iteration (`unroll`), tokens per
call (`chunk_size`), and the step's layout. Without XLA each loop iteration pays the
executor for every loop variable (the weights among them), so the default export draws
blocks of `UNROLL` tokens per iteration and steps the network feature-major, (units,
batch), whose gates split as views (docs/performance.md). The text is the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from textgen.generate.rules.healing import strip_bytes
from textgen.generate.rules.label_guidance import LabelGuidance, twice
from textgen.generate.rules.seeded_draw import SeededDraw
from textgen.generate.rules.temperature import Temperature
from textgen.generate.rules.token_choice import Sampling, TokenChoice

# Tokens per iteration of the default export's generation loop (no XLA): 8 ran faster
# than 1, 16 and 32 (docs/performance.md).
UNROLL = 8


def default_chunk_size(vocab_size: int, jit_compile: bool = True) -> int:
    """Tokens per call of the generation core: 64 for characters with XLA, 256 without
    (each call of the core costs a fixed time there: up to 1.2x the tokens/s at batch 1,
    docs/performance.md), fewer for big vocabularies.

    The core draws a whole chunk's sampling noise at once, (chunk, batch, vocab) floats.
    """
    return int(min(64 if jit_compile else 256, max(8, (1 << 17) // vocab_size)))


@dataclass(frozen=True)
class LoopPlan:
    """How the generation loop runs (see the module doc)."""

    jit_compile: bool
    unroll: int  # tokens per loop iteration
    chunk_size: int  # tokens per call of the core

    @property
    def feature_major(self) -> bool:
        """Step the network with (units, batch) state: faster without XLA; XLA runs the
        batch-major step faster."""
        return not self.jit_compile

    def layout(self, state):
        """The state between the callers' (batch, units) and the step's layout: transposed
        when the step runs feature-major (the same call converts either way)."""
        return tf.nest.map_structure(tf.transpose, state) if self.feature_major else state


# The loops a chunk may run (`ChunkLoop.draw`), each a superset of the next: included
# texts and excluded strings (with the repetition controls, a token per iteration),
# excluded strings alone, the repetition controls (with top-k/p decided each step),
# top-k/p, neither.
VARIANTS = ("included", "excluded", "repeating", "filtering", "plain")


def loop_variant(settings) -> str:
    """The loop resolved `SamplingSettings` need (`VARIANTS`); a loop further up the list
    writes the same text, slower."""
    from textgen.generate.rules.repetition import Repetition
    from textgen.generate.rules.truncation import Truncation

    s = settings
    if s.include:
        return "included"
    if s.exclude:
        return "excluded"
    if Repetition.in_use(s.repetition_penalty, s.no_repeat_ngram or 0):
        return "repeating"
    top_p = 1.0 if s.top_p is None else float(s.top_p)
    return "filtering" if Truncation.in_use(s.top_k or 0, top_p) else "plain"


def blocked_loop(body_of, loop_vars, block: int, blocks_while, tokens_while, **limits):
    """Run `body_of(block)` (a body of `block` tokens written out one after another) while
    `blocks_while` holds, then `body_of(1)` while `tokens_while` holds. `limits`:
    `block_iterations` and `token_iterations`, the loops' maximum_iterations."""
    if block > 1:
        loop_vars = tf.while_loop(
            blocks_while, body_of(block), loop_vars,
            maximum_iterations=limits.get("block_iterations"),
        )  # fmt: skip
    return tf.while_loop(
        tokens_while, body_of(1), loop_vars, maximum_iterations=limits.get("token_iterations")
    )


class ChunkLoop:
    """`draw(...)`: up to a chunk of tokens for every row (see `draw`); `draw_until_done`:
    chunks until every row is done (its tokens, a stop string found by `finish`, or the
    checks on candidates left it none). `pieces`: the tokens' texts the checks read."""

    def __init__(
        self, one_step, plan: LoopPlan, vocab_size: int, finish, pieces, copy_guard=None,
        unwritten=None,
    ):  # fmt: skip
        self.one_step, self.plan, self.vocab_size = one_step, plan, vocab_size
        self.unwritten = unwritten  # (vocab,) -inf on tokens never written, or None
        self.copy_guard, self.finish, self.pieces = copy_guard, finish, pieces
        self.draw = tf.function(self._draw, jit_compile=plan.jit_compile, autograph=False)

    def _draw(
        self, logits, state, history, tail, prev, counts, t0, max_new_tokens, sampling,
        exact=False, strength=None, variant=None, owing=None,
    ):  # fmt: skip
        """Up to a chunk's steps of drawing tokens from the network's `logits`, `state`,
        each row's token `history`, copy-guard `tail` and previous token `prev`.

        `variant` (a Python str, or None: chosen in the graph by each request's settings)
        runs one of the loops (`VARIANTS`) alone: a caller that knows its settings (the
        library, in process) builds one loop, not all of them.

        Runs min(chunk, most tokens any row still needs) steps; `t0` keys the noise (a
        scalar, or (batch,): each row's own next step). With `exact` (a Python bool) a
        row's logits, state, history and tail stop at its max_new_tokens (a state to
        continue from); otherwise they run on with the others (faster). `strength`
        (batch,): label guidance (`guidance`), the network's rows twice as many.
        `owing`: what each row's completion still owes of its included texts
        (`rules.inclusion.Owing`; None: the included texts are not drawn).
        Returns the token ids (chunk, batch), without XLA (steps, batch) (a row's ids past
        its max_new_tokens are junk), the steps taken, the logits, state, history and tail
        after them, the counts, which rows the copy guard ended (no candidate left), and
        the `owing` after them (if given).
        """
        size = self.plan.chunk_size
        steps = tf.minimum(size, tf.reduce_max(max_new_tokens - counts))
        noise = self._noise(sampling, t0, steps, tf.shape(prev)[0], logits.shape)
        weights = self.one_step.read_weights(self.plan.feature_major)
        state = self.plan.layout(state)
        wanted = tf.clip_by_value(max_new_tokens - counts, 0, steps)

        def run(filtering, repeating: bool, constrained: bool, unroll: int = self.plan.unroll,
                including: bool = False):  # fmt: skip
            guard, pieces = self.copy_guard, self.pieces
            including = including and owing is not None
            choice = TokenChoice(sampling, filtering, repeating, constrained, guard, pieces, size,
                                 self.unwritten, including)  # fmt: skip
            states = choice.start(history, tail, prev, owing)
            logits_out, state_out, chunk, states = self._tokens(
                choice, weights, noise, steps, logits, state, states, wanted if exact else None,
                strength, unroll,
            )  # fmt: skip
            *after, owing_out = choice.finish(states, history, tail, prev, owing)
            owed = () if owing is None else (owing_out,)
            return (logits_out, state_out, chunk, *after, *owed)

        # Few loops, each as small as it can be (the time to build the graph grows with
        # each): a loop with repetition controls filters only when a row uses top-k/p,
        # decided each step (sorting a word vocabulary per token costs ~7x); a loop with
        # excluded strings and included texts has the repetition controls too and draws a
        # token per iteration; a generator with a copy guard runs the guard in each loop.
        drawn = self._run_loop(run, sampling, variant, including=owing is not None)
        logits, state, chunk, history, tail, ended_at, *owed = drawn
        ended = ended_at < wanted  # the checks ended the row before it was done
        counts = counts + tf.minimum(wanted, ended_at)
        state = self.plan.layout(state)
        return (chunk, steps, logits, state, history, tail, counts, ended, *owed)

    def _run_loop(self, run, sampling: Sampling, variant: str | None, including: bool):
        """`run(filtering, repeating, constrained, unroll, including)`'s loop for `variant`
        (None: each row's settings choose, in the graph; without `including`, the loop of
        included texts is not built)."""
        loops = {
            "included": lambda: run(sampling.filtering, True, True, unroll=1, including=True),
            "excluded": lambda: run(sampling.filtering, True, True, unroll=1),
            "repeating": lambda: run(sampling.filtering, True, False),
            "filtering": lambda: run(True, False, False),
            "plain": lambda: run(False, False, False),
        }
        if self.copy_guard is not None:  # the guard's loops keep the repetition controls
            loops["filtering"] = loops["plain"] = loops["repeating"]
        if variant is not None:
            return loops[variant]()

        def unconstrained():
            if self.copy_guard is not None:
                return loops["repeating"]()
            filtered = lambda: tf.cond(sampling.filtering, loops["filtering"], loops["plain"])  # noqa: E731
            return tf.cond(sampling.repeating, loops["repeating"], filtered)

        def constrained():  # (without included texts, the loop needs none of their ops)
            return tf.cond(sampling.excluded.excluding, loops["excluded"], unconstrained)

        if not including:
            return constrained()
        return tf.cond(sampling.included.including, loops["included"], constrained)

    def draw_until_done(
        self, logits, state, history, tail, prev, counts, t, max_new_tokens, sampling,
        exact=False, strength=None, variant=None, skip=None, owing=None,
    ):  # fmt: skip
        """Draw chunks until every row has `max_new_tokens` tokens, holds a stop string or
        was ended by the copy guard.

        Starts from the network's `logits`, `state`, token `history`, copy-guard `tail`
        and each row's previous token `prev`; `t` is the index of the next token (it keys
        the sampling noise; (batch,): each row's own), `counts` the tokens each row has so
        far; `exact`, `strength`, `variant`, `owing`: see `ChunkLoop.draw`; `skip`
        (batch,): bytes the text drawn begins with that a stop string is not looked for in
        (a healed prompt's, `rules.healing`; None: none). Returns the ids drawn (batch,
        1 + steps) after `prev`, how many each row drew, and the logits, state, history,
        tail, counts, t and `owing` (None if not given) after.
        """
        # Chunks of ids, time-major; the first holds each row's previous token.
        chunks = tf.TensorArray(tf.int32, size=0, dynamic_size=True, infer_shape=False)
        chunks = chunks.write(0, prev[None])
        text = tf.fill(tf.shape(prev), "")
        before = counts
        owed = () if owing is None else (owing,)

        def body(t, logits, state, history, tail, prev, counts, max_new, text, chunks, *owed):
            chunk, steps, logits, state, history, tail, new_counts, ended, *owed = self.draw(
                logits, state, history, tail, prev, counts, t, max_new, sampling, exact, strength,
                variant, *owed,
            )  # fmt: skip
            max_new = tf.where(ended, new_counts, max_new)
            ids = tf.transpose(chunk[:steps])  # (batch, steps)
            chunks = chunks.write(chunks.size(), chunk[:steps])
            stops = self.finish.stops
            if stops:  # a row whose text holds a stop string needs no more tokens
                piece = self.finish.text(tf.concat([prev[:, None], ids], 1), new_counts - counts)
                text = tf.strings.join([text, piece])
                found = stops.found(text if skip is None else strip_bytes(text, skip))
                max_new = tf.where(found, new_counts, max_new)
            last = tf.gather(ids, tf.maximum(new_counts - counts - 1, 0), batch_dims=1)
            prev = tf.where(new_counts > counts, last, prev)
            return (
                t + steps, logits, state, history, tail, prev, new_counts, max_new, text, chunks,
                *owed,
            )  # fmt: skip

        t, logits, state, history, tail, _, counts, _, _, chunks, *owed = tf.while_loop(
            lambda *loop: tf.reduce_any(loop[6] < loop[7]),  # counts < max_new
            body,
            (t, logits, state, history, tail, prev, counts, max_new_tokens, text, chunks, *owed),
        )
        sequence = tf.transpose(chunks.concat())  # (batch, 1 + steps)
        owing = owed[0] if owed else None
        return sequence, counts - before, logits, state, history, tail, counts, t, owing

    def _noise(self, sampling: Sampling, t0, steps, batch, logits_shape):
        """What each step adds to the scaled logits, (steps, batch, vocab); XLA needs a
        static size: the whole chunk."""
        drawn = self.plan.chunk_size if self.plan.jit_compile else steps
        per_row = t0.shape.rank == 1
        steps = t0[None, :] + tf.range(drawn)[:, None] if per_row else t0 + tf.range(drawn)
        noise = tf.cond(
            tf.reduce_any(Temperature.graph_drawn(sampling.temperature)),
            lambda: SeededDraw.noise(sampling.seeds, steps, self.vocab_size, per_row),
            lambda: tf.zeros([drawn, batch, self.vocab_size]),
        )
        noise = SeededDraw.graph(noise, sampling.temperature)
        # a static batch stays static in the loop
        noise.set_shape([self.plan.chunk_size if self.plan.jit_compile else None, *logits_shape])
        return noise

    def _tokens(
        self, choice: TokenChoice, weights, noise, steps, logits, state, states, wanted, strength,
        unroll: int,
    ):  # fmt: skip
        """`steps` tokens: the loop over the network and the choice, blocks of `unroll`;
        a row past its `wanted` tokens (batch,) keeps its logits and states (None: runs on);
        `strength` (batch,) guides each row by its twin (None: no twins)."""
        feature_major = self.plan.feature_major

        def body_of(block: int):
            def body(i, logits, state, chunk, states):
                drawn = []
                # The block's noise sliced once (each op in the loop costs per token).
                block_noise = tf.unstack(tf.gather(noise, i + tf.range(block)))
                for k in range(block):
                    scored = logits if strength is None else LabelGuidance.graph(logits, strength)
                    ids, new_states = choice(scored, block_noise[k], states, lambda k=k: i + k)
                    fed = ids if strength is None else twice(ids)
                    new = self.one_step.step(weights, fed, state, feature_major)
                    if wanted is None:
                        (logits, state), states = new, new_states
                    else:  # rows that have their tokens stay as they are
                        on = i + k < wanted
                        states = _rows_where(on, new_states, states)
                        on = on if strength is None else twice(on)
                        logits = _rows_where(on, new[0], logits)
                        state = _rows_where(on, new[1], state, feature_major)
                    drawn.append(ids)
                rows = (i + tf.range(block))[:, None]
                chunk = tf.tensor_scatter_nd_update(chunk, rows, tf.stack(drawn))
                return i + block, logits, state, chunk, states

            return body

        chunk = tf.zeros_like(noise[:, :, 0], tf.int32)
        _, logits, state, chunk, states = blocked_loop(
            body_of, (tf.constant(0), logits, state, chunk, states), unroll,
            lambda i, *_: i + unroll <= steps, lambda i, *_: i < steps,
            block_iterations=self.plan.chunk_size // unroll, token_iterations=self.plan.chunk_size,
        )  # fmt: skip
        return logits, state, chunk, states


def _rows_where(on, new, old, feature_major: bool = False):
    """`new` where a row is `on` (batch,), else `old`, for nested tensors with the batch
    first (last if `feature_major`)."""

    def pick(n, o):
        rank = n.shape.rank
        shape = [1] * (rank - 1) + [-1] if feature_major else [-1] + [1] * (rank - 1)
        return tf.where(tf.reshape(on, shape), n, o)

    return tf.nest.map_structure(pick, new, old)
