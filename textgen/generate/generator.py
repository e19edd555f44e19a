"""The generator: prompt strings in, generated strings out, all in one TensorFlow graph.

`Generator` is a `tf.Module` holding the trained layers (through `OneStep`) and the
vocabulary tables (through `Tokenizer`). The sampler calls it in process; the export
saves this same module as a SavedModel, so the two cannot drift apart. Its parts: the
loop plan and numeric core (`loop`), the token choice and its rules (`rules`), priming
and scoring (`priming`), stop strings (`stops`), streaming (`streaming`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import keras
import tensorflow as tf

from textgen.core.config import MAX_EXCLUDE_CHARS, MAX_NEW_TOKENS, REPETITION_HISTORY, SampleConfig
from textgen.data.tokenizers import Tokenizer, string_tensor
from textgen.data.vocabulary import UNK, Vocabulary
from textgen.generate.beams import BeamSearch
from textgen.generate.constrained_search import ConstrainedSearch
from textgen.generate.continuation import continue_text
from textgen.generate.copy_guard import CopyGuard
from textgen.generate.graph_finish import GraphFinish
from textgen.generate.loop import ChunkLoop, LoopPlan, default_chunk_size, loop_variant
from textgen.generate.pieces import TokenPieces
from textgen.generate.priming import prime
from textgen.generate.rules.healing import Healing, strip_bytes
from textgen.generate.rules.inclusion import IncludedTexts, Owing
from textgen.generate.rules.token_choice import Sampling
from textgen.generate.rules.unwritten import Unwritten
from textgen.generate.settings import CONSTRAINTS, CONTROLS, DRAWN, SERVED, SamplingSettings
from textgen.generate.stops import StopStrings
from textgen.generate.streaming import stream_completion
from textgen.model.one_step import OneStep

_STRINGS = tf.TensorSpec([None], tf.string)
_INTS = tf.TensorSpec([None], tf.int32)
_FLOATS = tf.TensorSpec([None], tf.float32)
_SEEDS = tf.TensorSpec([None, 2], tf.int64)
# Per-row sampling settings (the settings table's `served` rows): the drawn ones, each row's
# [seed, stream], the repetition controls.
_SPEC = {name: tf.TensorSpec([None], dtype) for name, dtype in SERVED.items()}
_SETTINGS = (
    *(_SPEC[n] for n in DRAWN), _SEEDS, *(_SPEC[n] for n in CONTROLS),
    *(_SPEC[n] for n in CONSTRAINTS),
)  # fmt: skip


class Generator(tf.Module):
    """Generates text from a trained model: `generate(prompts, settings)` and `score(texts)`.

    Every prompt is read as the start of a line: the start token (the newline) is fed
    first, so an empty prompt is valid. Stop strings and the copy guard are fixed when
    the generator is built; generation of a row ends once its text holds a stop string,
    which is cut from the completion with what follows.

    Tokens are drawn by a numeric core (`loop.ChunkLoop`) that runs a chunk of steps per
    call; `jit_compile=True` compiles it with XLA. Without XLA its loop draws `unroll`
    tokens per iteration (`loop.UNROLL` in the default export) and `frozen` (an export:
    weights that no longer change) transposes the kernels for the feature-major step once
    instead of per call. String work stays outside the core. The text is the same either
    way.

    Out-of-range settings never fail the graph (a server must not crash on a request):
    see `rules.Sampling.of_request`; max_new_tokens above the cap is cut to the cap.
    """

    def __init__(
        self,
        model: keras.Model,
        vocab: Vocabulary,
        stop: Sequence[str] = (),
        max_new_tokens_cap: int = MAX_NEW_TOKENS,
        defaults: SampleConfig | None = None,
        jit_compile: bool = False,
        chunk_size: int | None = None,
        copy_guard: CopyGuard | None = None,
        unroll: int = 1,
        frozen: bool = False,
    ):
        super().__init__(name="generator")
        chunk_size = chunk_size or default_chunk_size(vocab.size, jit_compile)
        self.plan = LoopPlan(jit_compile, unroll, chunk_size)
        self.one_step = OneStep(model, frozen=frozen and self.plan.feature_major)
        self.tokenizer = Tokenizer(vocab)
        self.vocab_size = vocab.size
        self.stops = StopStrings(stop)
        self.max_new_tokens_cap = max_new_tokens_cap
        self.defaults = defaults or SampleConfig()
        self.copy_guard = copy_guard
        # Item and label markers (textgen.data.items) are never printed.
        self.finish = GraphFinish(self.tokenizer, self.stops)
        self.pieces = copy_guard.pieces if copy_guard else TokenPieces(vocab)
        self.unwritten = Unwritten([UNK, *vocab.tokens]).graph_or_none()
        self.healing = None  # prompts ending inside a word healed (`rules.healing`)
        if self.tokenizer.level.heals and copy_guard is None:  # (checks see no healing)
            self.healing = Healing([UNK, *vocab.tokens])
            self.healing.graph_tables()  # built once, outside any graph function
        self.chunk_loop = ChunkLoop(self.one_step, self.plan, vocab.size, self.finish,
                                    self.pieces, copy_guard, self.unwritten)  # fmt: skip
        # The checks on candidates read the completion's last characters.
        self.tail_size = max(copy_guard.tail_size if copy_guard else 0, MAX_EXCLUDE_CHARS - 1)
        batch_of = lambda *shape: tf.TensorSpec([None, *shape], tf.float32)  # noqa: E731
        state_spec = tf.nest.map_structure(
            lambda x: batch_of(x.shape[1]), self.one_step.zero_state(1)
        )
        history_spec = tf.TensorSpec([None, REPETITION_HISTORY], tf.int32)
        tail_spec = tf.TensorSpec([None, self.tail_size], tf.int32)
        loop_specs = [
            batch_of(vocab.size), state_spec, history_spec, tail_spec, _INTS, _INTS,
            tf.TensorSpec([], tf.int32), _INTS, _INTS, Owing.spec(), *_SETTINGS,
        ]  # fmt: skip
        self._loop_specs = loop_specs
        self.continue_stream = tf.function(
            self._continue_stream, input_signature=loop_specs, autograph=False
        )
        # The same with label guidance: its strength first, the network's rows twice.
        self.continue_guided_stream = tf.function(
            lambda strength, *loop: self._continue_stream(*loop, strength=strength),
            input_signature=[_FLOATS, *loop_specs],
            autograph=False,
        )

    # -- the graph functions ----------------------------------------------------------

    @tf.function(input_signature=[_STRINGS, _INTS, *_SETTINGS], autograph=False)
    def generate_ids(self, prompts, max_new_tokens, *rows):
        """The generation loop. Returns completion strings (batch,) and token counts."""
        sampling = self.sampling(*rows)
        return self._generate(prompts, max_new_tokens, sampling)

    @tf.function(input_signature=[_STRINGS, _STRINGS, _FLOATS, _INTS, *_SETTINGS], autograph=False)
    def generate_guided_ids(self, prompts, unlabelled, strength, max_new_tokens, *rows):
        """`generate_ids` with label guidance (`guidance`): each row's `unlabelled` prompt
        read too, its tokens chosen with `strength` (batch,), 1: none."""
        sampling = self.sampling(*rows)
        return self._generate(prompts, max_new_tokens, sampling, unlabelled, strength)

    def _generate(
        self, prompts, max_new_tokens, sampling, unlabelled=None, strength=None, variant=None
    ):  # fmt: skip
        max_new_tokens = tf.where(max_new_tokens < 0, self.defaults.length, max_new_tokens)
        max_new_tokens = tf.minimum(max_new_tokens, self.max_new_tokens_cap)
        batch = tf.shape(prompts)[0]
        read = prompts if strength is None else tf.concat([prompts, unlabelled], 0)
        primed, skip = self._prime_healed(read, healable(sampling))  # (+ twins, read alike)
        owing = None
        if including(variant):
            owing = Owing.start(sampling.included, prompts, max_new_tokens)
        sequence, counts, *_ = self.chunk_loop.draw_until_done(
            primed.logits, primed.state, primed.history[:batch], self.empty_tail(prompts),
            primed.last_ids[:batch], tf.zeros([batch], tf.int32), 0, max_new_tokens, sampling,
            strength=strength, variant=variant, skip=skip, owing=owing,
        )  # fmt: skip
        completion = strip_bytes(self.finish.text(sequence, counts), skip)
        counts = self.finish.tokens_through_stop(sequence, counts, completion, -skip)
        return self.finish.completion(completion), counts

    @tf.function(
        input_signature=[_STRINGS, _INTS, _INTS, _FLOATS, _INTS, _INTS, _STRINGS, _STRINGS],
        autograph=False,
    )
    def beam_search_ids(
        self, prompts, max_new_tokens, beams, penalty, window, ngram, exclude, include
    ):  # fmt: skip
        """Beam search (`beams`; a row with `include` texts: `constrained_search`), `beams`
        (batch,) hypotheses per prompt: the finished ones best first, (batch, max(beams))."""
        zeros = tf.zeros_like(max_new_tokens)
        included = IncludedTexts.of(include, self.tokenizer.encode)
        s = Sampling.of_request(
            self.defaults, tf.cast(zeros, tf.float32), zeros, tf.ones_like(penalty),
            tf.zeros([tf.shape(prompts)[0], 2], tf.int64), (penalty, window, ngram), exclude,
            included,
        )  # fmt: skip
        max_new_tokens = tf.where(max_new_tokens < 0, self.defaults.length, max_new_tokens)
        max_new_tokens = tf.clip_by_value(max_new_tokens, 1, self.max_new_tokens_cap)
        primed, skip = self._prime_healed(prompts, healable(s))
        width = tf.maximum(beams, 1)

        plain = BeamSearch(self).search(
            primed, width, max_new_tokens, s.controls, s.repeating, s.excluded, skip
        )  # fmt: skip

        def constrained():  # (built once: the plain search's rows are kept where none)
            owing = Owing.start(included, prompts, max_new_tokens)
            found = ConstrainedSearch(self).search(
                primed, width, max_new_tokens, s.controls, s.repeating, s.excluded, included,
                owing,
            )  # fmt: skip
            rows = tf.reduce_any(included.lengths > 0, axis=1)[:, None]
            return type(found)(*(tf.where(rows, a, b) for a, b in zip(found, plain)))

        return tf.cond(included.including, constrained, lambda: plain)._asdict()

    @tf.function(input_signature=[_STRINGS, _STRINGS, _INTS, _INTS, *_SETTINGS], autograph=False)
    def continue_from(self, texts, states, max_new_tokens, chunk_tokens, *rows):
        """One chunk of a generation carried in bytes between calls
        (`continuation.continue_text`)."""
        return continue_text(self, texts, states, max_new_tokens, chunk_tokens, *rows)

    @tf.function(
        input_signature=[_STRINGS, _STRINGS, _FLOATS, _STRINGS, _INTS, _INTS, *_SETTINGS],
        autograph=False,
    )
    def continue_guided_from(
        self, texts, twin_texts, strengths, states, max_new_tokens, chunk_tokens, *rows
    ):  # fmt: skip
        """`continue_from` with label guidance: a new row's twin reads `twin_texts` (its
        text without the label) and the row is guided with `strengths` (1: not guided)
        until it ends; its state carries the twin (`continuation.continue_text`)."""
        return continue_text(
            self, texts, states, max_new_tokens, chunk_tokens, *rows, guide=(twin_texts, strengths)
        )

    @tf.function(input_signature=[_STRINGS], autograph=False)
    def score(self, texts):
        """Mean negative log-likelihood per token (nats) and token counts of `texts`.

        Each text is scored from the start of a line; a text with no tokens scores 0.
        """
        primed = self._prime(texts, with_nll=True)
        mean = tf.math.divide_no_nan(primed.nll, tf.cast(primed.counts, tf.float32))
        return {"mean_nll": mean, "num_tokens": primed.counts}

    @tf.function(input_signature=[_STRINGS], autograph=False)
    def prime(self, prompts):
        """The network after reading `prompts` whole: next-token logits, state, history,
        last token id."""
        primed = self._prime(prompts)
        return primed.logits, primed.state, primed.history, primed.last_ids

    @tf.function(input_signature=[_STRINGS, tf.TensorSpec([None], tf.bool)], autograph=False)
    def prime_to_continue(self, prompts, heal):
        """Start a streamed generation of the first rows of `prompts` (as many as `heal`;
        the rest their twins): `prime`'s tensors as the generation starts from them (a
        row healed where `heal`, `rules.healing`), and the bytes each text drawn begins
        with that are not shown."""
        primed, skip = self._prime_healed(prompts, heal)
        return primed.logits, primed.state, primed.history, primed.last_ids, skip

    @tf.function(input_signature=[_STRINGS, _INTS, _STRINGS], autograph=False)
    def owing(self, prompts, max_new_tokens, include):
        """What a stream of `max_new_tokens` after `prompts` owes of the texts `include`."""
        included = IncludedTexts.of(include, self.tokenizer.encode)
        return Owing.start(included, prompts, max_new_tokens)

    def _continue_stream(
        self, logits, state, history, tail, prev, counts, t, until, skip, owing, *rows,
        strength=None, variant=None,
    ):  # fmt: skip
        """One stretch of a streamed generation: tokens until each row has `until` (fewer
        if the copy guard ends it); their text (batch,) without its first `skip` bytes,
        and the loop state after them (`owing` too)."""
        sampling = self.sampling(*rows, variant=variant)
        given = Owing(*owing) if including(variant) else None
        sequence, drawn, logits, state, history, tail, counts, t, owing_after = (
            self.chunk_loop.draw_until_done(
                logits, state, history, tail, prev, counts, t, until, sampling,
                strength=strength, variant=variant, skip=skip, owing=given,
            )
        )  # fmt: skip
        owing = owing if owing_after is None else owing_after
        text = strip_bytes(self.finish.text(sequence, drawn), skip)
        prev = tf.gather(sequence, drawn, batch_dims=1)
        return text, logits, state, history, tail, prev, counts, t, owing

    def traced(self, kind: str, variant: str):  # a graph function for one loop alone
        return traced(self, kind, variant)

    # -- building blocks ------------------------------------------------------------

    def sampling(self, temperature, top_k, top_p, seeds, *rows, variant=None) -> Sampling:
        """The per-row settings tensors (`_SETTINGS`' order; a continuation's may leave out
        the last, `include`) made safe (`Sampling`); for a loop `variant` that draws no
        included texts (`loop.VARIANTS`), none are read."""
        controls, constraints = rows[: len(CONTROLS)], rows[len(CONTROLS) :]
        exclude, *include = constraints
        included = None
        if include and including(variant):
            included = IncludedTexts.of(include[0], self.tokenizer.encode)
        return Sampling.of_request(
            self.defaults, temperature, top_k, top_p, seeds, controls, exclude, included
        )  # fmt: skip

    def _prime(self, prompts, with_nll: bool = False):
        return prime(self.one_step, self.tokenizer, self.plan, prompts, with_nll)

    def _prime_healed(self, prompts, heal):
        """The network after reading `prompts` to continue (its first rows, as many as
        `heal` (batch,) bools; the rest, their twins, are read alike), a row in `heal`
        healed where it ends inside a word, and the bytes (batch,) each completion's text
        begins with that are not shown."""
        batch = tf.shape(heal)[0]
        if self.healing is None:
            return self._prime(prompts), tf.zeros([batch], tf.int32)
        rows = tf.tile(heal, [tf.shape(prompts)[0] // batch])
        primed = prime(
            self.one_step, self.tokenizer, self.plan, prompts, healing=(self.healing, rows)
        )  # fmt: skip
        healed = primed.healed[:batch]
        logits = self.healing.graph(primed.logits[:batch], healed)
        logits = tf.concat([logits, primed.logits[batch:]], 0)
        return primed._replace(logits=logits), self.healing.graph_skip(healed)

    def empty_tail(self, prompts):  # the checks' tail of a completion not yet begun
        return tf.fill([tf.shape(prompts)[0], self.tail_size], -1)

    # -- Python API -------------------------------------------------------------------

    def resolve(self, settings: SamplingSettings | None = None, **changes) -> SamplingSettings:
        """`settings` with keyword `changes`, unset ones from the generator's defaults."""
        return SamplingSettings.of(settings, **changes).with_defaults(self.defaults)

    def row_tensors(self, settings: SamplingSettings, streams: Sequence[int]) -> tuple:
        """The per-row setting tensors of `_SETTINGS` for resolved `settings`."""
        batch = len(streams)
        fill = lambda name: tf.fill([batch], tf.constant(settings.served(name), SERVED[name]))  # noqa: E731
        seeds = [[settings.seed, stream] for stream in streams]
        seeds = tf.constant(seeds, tf.int64, shape=[batch, 2])
        return (*map(fill, DRAWN), seeds, *map(fill, CONTROLS), *map(fill, CONSTRAINTS))

    def generate(
        self,
        prompts: Sequence[str],
        settings: SamplingSettings | None = None,
        streams: Sequence[int] | None = None,
        unlabelled: Sequence[str] | None = None,
        **changes,
    ) -> list[str]:
        """Completions of `prompts` (the generated text only), drawn as one batch.

        Row i draws with (seed, stream i) unless `streams` says otherwise. The
        generator's own stop strings and copy guard apply (fixed when it was built).
        `unlabelled`: the prompts without their label, for label guidance.
        """
        settings = self.resolve(settings, **changes)
        streams = range(len(prompts)) if streams is None else streams
        size = [len(prompts)]
        rows = (tf.fill(size, settings.max_new_tokens), *self.row_tensors(settings, list(streams)))
        variant = loop_variant(settings)
        if unlabelled is not None and settings.guided():
            completion, _ = traced(self, "guided", variant)(
                string_tensor(list(prompts)), string_tensor(list(unlabelled)),
                tf.fill(size, float(settings.label_strength)), *rows,
            )  # fmt: skip
        else:
            completion, _ = traced(self, "generate", variant)(string_tensor(list(prompts)), *rows)
        return [c.decode("utf-8") for c in completion.numpy()]

    def stream(
        self,
        prompt: str,
        settings: SamplingSettings | None = None,
        unlabelled: str | None = None,
        **changes,
    ) -> Iterator[str]:
        """Yield the completion of one prompt piece by piece as tokens are drawn: the
        same text as `generate([prompt], ...)` with the same settings (and `unlabelled`)."""
        settings = self.resolve(settings, **changes)
        return stream_completion(self, prompt, settings, unlabelled if settings.guided() else None)


def including(variant: str | None) -> bool:
    """Whether a loop `variant` (None: chosen in the graph) draws included texts."""
    return variant in (None, "included")


def healable(sampling: Sampling) -> tf.Tensor:
    """(batch,) the rows whose prompt may be healed: those with no excluded strings (the
    checks on candidates read a token's whole text, the backed-off part too) and no
    included texts (the NumPy samplers' rule: an owed text may have to start at once)."""
    strings = (sampling.excluded.valid, sampling.included.strings.valid)
    return ~tf.reduce_any(tf.concat(strings, axis=1), axis=1)


def traced(generator: Generator, kind: str, variant: str):
    """A graph function for one loop `variant` alone (`loop.VARIANTS`): `kind`
    "generate" (`generate_ids`' inputs), "guided" (`generate_guided_ids`'), "stream"
    (`continue_stream`'s) or "guided_stream". The library knows its settings, so it
    builds the one loop they need (a fraction of the time to build all); the export's
    functions choose among the loops in the graph, by each request's settings."""
    cache = generator.__dict__.setdefault("_by_variant", {})  # (not saved with the module)
    if (kind, variant) not in cache:
        v = variant
        functions = {
            "generate": (lambda prompts, most, *rows: generator._generate(
                prompts, most, generator.sampling(*rows, variant=v), variant=v),
                [_STRINGS, _INTS, *_SETTINGS]),
            "guided": (lambda prompts, plain, strength, most, *rows: generator._generate(
                prompts, most, generator.sampling(*rows, variant=v), plain, strength, variant=v),
                [_STRINGS, _STRINGS, _FLOATS, _INTS, *_SETTINGS]),
            "stream": (lambda *loop: generator._continue_stream(*loop, variant=v),
                       generator._loop_specs),
            "guided_stream": (lambda strength, *loop: generator._continue_stream(
                *loop, strength=strength, variant=v), [_FLOATS, *generator._loop_specs]),
        }  # fmt: skip
        function, signature = functions[kind]
        cache[kind, variant] = tf.function(function, input_signature=signature, autograph=False)
    return cache[kind, variant]
