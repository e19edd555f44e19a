"""Training speed: characters/s of textgen's training step against plain Keras `fit`.

    python scripts/bench_train.py [--steps 8] [--rounds 3] [--cells lstm,gru]

Reference model: char level, 2 x 256, embedding 64, vocabulary 65, batch 64 x 100, the
same random data for every variant. Variants, timed in turns (several rounds, median):

- baseline: plain Keras layers (`keras.layers.LSTM` / `GRU`) trained with `model.fit`;
- textgen: the model `textgen train` builds (fused layers) and its own training step
  (`Trainer`, XLA-compiled), run exactly as `textgen train` runs it.

Also checks the two reach the same loss after the same steps from the same weights, and
prints FLOP/s as a share of the float32 matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import benchlib
import keras
import numpy as np
import tensorflow as tf

from textgen.core.config import RunConfig
from textgen.data.prepared import PreparedData
from textgen.model.network import build_model
from textgen.runs.folder import RunFolder
from textgen.training.trainer import Trainer

BATCH, SEQ_LEN = 64, 100


def plain_keras_model(cell: str) -> keras.Model:
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(benchlib.VOCAB.size, benchlib.EMBEDDING)(ids)
    for _ in range(benchlib.LAYERS):
        x = layer(benchlib.UNITS, return_sequences=True)(x)
    return keras.Model(ids, keras.layers.Dense(benchlib.VOCAB.size)(x))


def corpus_ids(windows: int = 400) -> np.ndarray:
    return np.random.default_rng(0).integers(1, benchlib.VOCAB.size, windows * (SEQ_LEN + 1))


def keras_fit(cell: str, ids: np.ndarray, steps: int):
    model = plain_keras_model(cell)
    model.compile(
        keras.optimizers.Adam(2e-3, global_clipnorm=5.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    windows = ids[: len(ids) // (SEQ_LEN + 1) * (SEQ_LEN + 1)].reshape(-1, SEQ_LEN + 1)
    data = (
        tf.data.Dataset.from_tensor_slices((windows[:, :-1], windows[:, 1:]))
        .repeat()
        .batch(BATCH)
        .prefetch(tf.data.AUTOTUNE)
    )
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace outside the timing

    def run() -> float:
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        return steps * BATCH * SEQ_LEN / (time.perf_counter() - start)

    return run, model


def textgen_step(cell: str, ids: np.ndarray, steps: int, folder: str, xla: bool = True, **options):
    """A timed textgen training step; `options`: `precision`, `units`, `batch`."""
    batch = options.get("batch", BATCH)
    config = RunConfig().with_overrides(
        data={"seq_len": SEQ_LEN},
        model={
            "cell": cell,
            "layers": benchlib.LAYERS,
            "units": options.get("units", benchlib.UNITS),
            "embedding_dim": benchlib.EMBEDDING,
            "dropout": 0.0,
        },
        train={
            "batch_size": BATCH,
            "xla": xla,
            "sample_length": 0,
            "precision": options.get("precision", "float32"),
        },  # fmt: skip
    )
    data = PreparedData(benchlib.VOCAB, len(ids) // (SEQ_LEN + 1), ids, ids[:0], {})
    trainer = Trainer(config, RunFolder(folder), data, log=lambda _: None, verbose=0)
    for _ in range(2):
        trainer._train_step(trainer.iterator)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss = trainer._train_step(trainer.iterator)
        float(loss)
        return steps * batch * SEQ_LEN / (time.perf_counter() - start)

    return run, trainer


def same_loss_check(cell: str, ids: np.ndarray, steps: int = 20) -> tuple[float, float]:
    """Loss after `steps` identical batches: plain Keras layers vs textgen's, same weights."""
    windows = ids[: len(ids) // (SEQ_LEN + 1) * (SEQ_LEN + 1)].reshape(-1, SEQ_LEN + 1)
    per_pass = len(windows) // BATCH
    batches = [windows[(i % per_pass) * BATCH :][:BATCH] for i in range(steps)]
    losses = []
    weights = None
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for model in (plain_keras_model(cell), build_model(benchlib.VOCAB.size, _config(cell))):
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        optimizer = keras.optimizers.Adam(2e-3, global_clipnorm=5.0)

        @tf.function
        def step(x, y, model=model, optimizer=optimizer):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        for batch in batches:
            loss = step(batch[:, :-1], batch[:, 1:])
        losses.append(float(loss))
    return losses[0], losses[1]


def _config(cell: str):
    from textgen.core.config import ModelConfig

    return ModelConfig(
        cell=cell,
        layers=benchlib.LAYERS,
        units=benchlib.UNITS,
        embedding_dim=benchlib.EMBEDDING,
        dropout=0.0,
        skip_connections=False,  # plain_keras_model's shape: the logits read the top layer
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cells", default="lstm,gru")
    args = parser.parse_args()
    print(f"machine: {benchlib.machine()}")
    peak = benchlib.matmul_peak()
    print(f"float32 matmul peak, this run: {peak / 1e9:.0f} GFLOP/s")
    ids = corpus_ids()
    textgen_rates = {}
    for cell in args.cells.split(","):
        flops = 3 * benchlib.forward_flops_per_token(cell)  # forward + backward
        with tempfile.TemporaryDirectory() as tmp:
            variants = {
                "plain Keras fit": keras_fit(cell, ids, args.steps)[0],
                "textgen step, no XLA": textgen_step(cell, ids, args.steps, f"{tmp}/a", False)[0],
                "textgen step, XLA": textgen_step(cell, ids, args.steps, f"{tmp}/b")[0],
                "textgen step, bfloat16": textgen_step(
                    cell, ids, args.steps, f"{tmp}/c", precision="bfloat16"
                )[0],
            }
            rates = benchlib.interleaved(variants, args.rounds)
        base = rates["plain Keras fit"]
        print(f"\n{cell.upper()} 2 x 256, batch {BATCH} x {SEQ_LEN}:")
        for name, rate in rates.items():
            print(
                f"  {name:26s} {rate:8.0f} chars/s  {rate / base:5.2f}x fit  "
                f"{rate * flops / peak:6.1%} of peak"
            )
        keras_loss, textgen_loss = same_loss_check(cell, ids)
        print(
            f"  loss after 20 identical steps from the same weights: Keras layers "
            f"{keras_loss:.5f}, textgen layers {textgen_loss:.5f}"
        )
        textgen_rates[cell] = rates["textgen step, XLA"]
    if {"lstm", "gru"} <= textgen_rates.keys():
        print(f"\nGRU / LSTM training chars/s: {textgen_rates['gru'] / textgen_rates['lstm']:.2f}")


if __name__ == "__main__":
    main()
