"""Generation speed: tokens/s of textgen's generator against two baselines, same run.

    python scripts/bench_generate.py [--tokens 300] [--rounds 5] [--cells lstm,gru]

Reference model: char level, 2 x 256, embedding 64, vocabulary 65, random weights
(speed does not depend on what the weights are). For each cell, at batch 1 and 64:

- baseline (a): the TF text-generation tutorial's way, a one-step `tf.function`
  called from a Python loop, state carried;
- baseline (b): the Keras LSTM example's way, the whole window re-run per token
  (window 100; batch 1 only, it is that slow);
- textgen in process, XLA-compiled core (what `textgen sample` uses);
- textgen's default export (no XLA: loads in a stock TF Serving), via the SavedModel;
- textgen's export with `--xla`, via the SavedModel;
- streaming (`Run.stream`, batch 1) against in-process generation;
- reading a 500-character prompt (`score`, and the first token after it) through the
  default export, which reads prompts in blocks of UNROLL tokens, against the same
  export reading one token per loop iteration.

Prints tokens/s, ratios to baseline (a), and generation FLOP/s as a share of the
float32 matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import benchlib
import numpy as np
import tensorflow as tf

from textgen.export.saved_model import ServingModule
from textgen.generate.generator import Generator
from textgen.generate.loop import UNROLL
from textgen.generate.rules.seeded_draw import SeededDraw
from textgen.generate.rules.temperature import Temperature
from textgen.generate.rules.token_choice import sampling_scores
from textgen.model.one_step import OneStep

PROMPT = "ROMEO:"
LONG_PROMPT = ("ROMEO:\nBut soft, what light through yonder window breaks?\n" * 10)[:500]


def tutorial_baseline(model, batch: int, tokens: int):
    """(a): a one-step tf.function, called once per token from Python."""
    one_step = OneStep(model)

    @tf.function
    def step(ids, state, seeds, t):
        logits, state = one_step(ids, state)
        ones = tf.ones([tf.shape(ids)[0]])
        noise = SeededDraw.graph(SeededDraw.noise(seeds, t, benchlib.VOCAB.size), ones)
        scores = sampling_scores(logits, Temperature.graph(ones), ids, ones, noise, False)
        ids = tf.argmax(scores, axis=-1, output_type=tf.int32)
        return ids, state

    def run() -> float:
        ids = tf.fill([batch], 1)
        state = one_step.zero_state(batch)
        seeds = tf.constant([[0, i] for i in range(batch)], tf.int64)
        start = time.perf_counter()
        out = []
        for t in range(tokens):
            ids, state = step(ids, state, seeds, tf.constant(t))
            out.append(ids.numpy())
        return batch * tokens / (time.perf_counter() - start)

    return run


def window_baseline(model, tokens: int, window: int = 100):
    """(b): the last 100 tokens through the model again for every token (as the Keras
    example does with its fixed-length seed window)."""
    forward = tf.function(lambda ids: model(ids, training=False)[:, -1])
    forward(tf.zeros([1, window], tf.int32))  # trace before timing

    def run() -> float:
        ids = [1] * window
        start = time.perf_counter()
        for _ in range(tokens):
            logits = forward(tf.constant([ids[-window:]], tf.int32)).numpy()[0]
            probs = np.exp(logits - logits.max())
            ids.append(int(np.random.choice(len(probs), p=probs / probs.sum())))
        return tokens / (time.perf_counter() - start)

    return run


def generator_rate(generate, batch: int, tokens: int):
    prompts = tf.constant([PROMPT] * batch)
    settings = (
        tf.fill([batch], tokens),
        tf.fill([batch], 1.0),
        tf.fill([batch], 0),
        tf.fill([batch], 1.0),
        tf.range(batch, dtype=tf.int64),
    )

    def run() -> float:
        start = time.perf_counter()
        out = generate(prompts, *settings)
        tf.nest.flatten(out)[0].numpy()
        return batch * tokens / (time.perf_counter() - start)

    run()  # trace / compile outside the timing
    return run


def in_process(generator: Generator):
    def generate(prompts, max_new, temperature, top_k, top_p, seed):
        seeds = tf.stack([seed, tf.zeros_like(seed)], 1)
        off = (  # the repetition controls off, nothing excluded or included
            tf.ones_like(temperature), tf.fill(tf.shape(top_k), 64), tf.zeros_like(top_k),
            tf.fill(tf.shape(top_k), ""), tf.fill(tf.shape(top_k), ""),
        )
        return generator.generate_ids(prompts, max_new, temperature, top_k, top_p, seeds, *off)

    return generate


def exported(generator: Generator, directory: str):
    """The generator saved as `textgen export` saves it; its loaded signatures."""
    module = ServingModule(generator)
    signatures = {"generate": module.generate, "score": module.score}
    tf.saved_model.save(module, directory, signatures=signatures)
    return tf.saved_model.load(directory).signatures


def generate_signature(signatures):
    signature = signatures["generate"]
    return lambda *args: signature(
        prompt=args[0], max_new_tokens=args[1], temperature=args[2], top_k=args[3],
        top_p=args[4], seed=args[5],
    )  # fmt: skip


def prompt_reading(signatures):
    """Reading a LONG_PROMPT-character prompt through an export, in prompt characters
    per second: the `score` signature, and the first token after it (`generate`)."""
    prompt = tf.constant([LONG_PROMPT])
    first = dict(
        max_new_tokens=tf.fill([1], 1), temperature=tf.fill([1], 1.0), top_k=tf.fill([1], 0),
        top_p=tf.fill([1], 1.0), seed=tf.zeros([1], tf.int64),
    )  # fmt: skip

    def timed(call):
        def run() -> float:
            start = time.perf_counter()
            call()
            return len(LONG_PROMPT) / (time.perf_counter() - start)

        run()
        return run

    score, generate = signatures["score"], signatures["generate"]
    return {
        "score": timed(lambda: score(text=prompt)["mean_nll"].numpy()),
        "first token": timed(lambda: generate(prompt=prompt, **first)["text"].numpy()),
    }


def streaming(generator: Generator, tokens: int):
    def run() -> float:
        start = time.perf_counter()
        for _ in generator.stream(PROMPT, max_new_tokens=tokens, temperature=1.0, seed=1):
            pass
        return tokens / (time.perf_counter() - start)

    run()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cells", default="lstm,gru")
    args = parser.parse_args()
    print(f"machine: {benchlib.machine()}")
    peak = benchlib.matmul_peak()
    print(f"float32 matmul peak, this run: {peak / 1e9:.0f} GFLOP/s")
    summary = {}
    for cell in args.cells.split(","):
        model = benchlib.reference_model(cell)
        plain = Generator(model, benchlib.VOCAB, unroll=UNROLL, frozen=True)  # as `textgen export`
        xla = Generator(model, benchlib.VOCAB, jit_compile=True)
        skips = benchlib.reference_model(cell, skip_connections=True)  # textgen's default
        xla_skips = Generator(skips, benchlib.VOCAB, jit_compile=True)
        flops = benchlib.forward_flops_per_token(cell)
        with tempfile.TemporaryDirectory() as tmp:
            plain_signatures = exported(plain, f"{tmp}/plain")
            export_plain = generate_signature(plain_signatures)
            export_xla = generate_signature(exported(xla, f"{tmp}/xla"))
            for batch in (1, 64):
                variants = {
                    "baseline (a) tutorial one-step loop": tutorial_baseline(
                        model, batch, min(args.tokens, 200)
                    ),
                    "textgen in process (XLA)": generator_rate(in_process(xla), batch, args.tokens),
                    "textgen in process (XLA), skip connections": generator_rate(
                        in_process(xla_skips), batch, args.tokens
                    ),
                    "textgen export (default)": generator_rate(export_plain, batch, args.tokens),
                    "textgen export --xla": generator_rate(export_xla, batch, args.tokens),
                }
                if batch == 1:
                    variants["baseline (b) window re-run"] = window_baseline(model, 100)
                    variants["textgen stream (XLA)"] = streaming(xla, args.tokens)
                rates = benchlib.interleaved(variants, args.rounds)
                base = rates["baseline (a) tutorial one-step loop"]
                print(f"\n{cell.upper()} 2 x 256, batch {batch}:")
                for name, rate in rates.items():
                    print(
                        f"  {name:44s} {rate:9.0f} tokens/s  {rate / base:6.2f}x (a)  "
                        f"{rate * flops / peak:6.1%} of peak"
                    )
                in_process_rate = rates["textgen in process (XLA)"]
                skip_share = rates["textgen in process (XLA), skip connections"] / in_process_rate
                print(f"  skip connections / without (in process): {skip_share:.2f}")
                if batch == 1:
                    share = rates["textgen stream (XLA)"] / in_process_rate
                    print(f"  streaming / in-process generation: {share:.2f}")
                summary[cell, batch] = rates["textgen in process (XLA)"]
            # The default export reads prompts in blocks of UNROLL tokens too; against
            # the same export reading one token per loop iteration.
            single = exported(Generator(model, benchlib.VOCAB, frozen=True), f"{tmp}/single")
            ways = {"blocks": plain_signatures, "one token per iteration": single}
            variants = {
                (what, way): run
                for way, signatures in ways.items()
                for what, run in prompt_reading(signatures).items()
            }
            rates = benchlib.interleaved(variants, args.rounds)
            prompt_chars = len(LONG_PROMPT)
            print(f"\n{cell.upper()} 2 x 256, a {prompt_chars}-character prompt, default export:")
            for what in ("score", "first token"):
                blocks, single_rate = rates[what, "blocks"], rates[what, "one token per iteration"]
                print(
                    f"  {what:12s} read in blocks of {UNROLL} {blocks:7.0f} chars/s, one token per "
                    f"iteration {single_rate:7.0f}: {blocks / single_rate:.2f}x"
                )
    if ("lstm", 1) in summary and ("gru", 1) in summary:
        for batch in (1, 64):
            ratio = summary["gru", batch] / summary["lstm", batch]
            print(f"GRU / LSTM in-process tokens/s, batch {batch}: {ratio:.2f}")


if __name__ == "__main__":
    main()
