"""How big a model is: parameters, state sizes, and the memory training it takes."""

from __future__ import annotations

import os

from textgen.core.config import ModelConfig, RunConfig
from textgen.core.errors import ConfigError


def state_sizes(config: ModelConfig) -> list[list[int]]:
    """Per layer, the sizes of its state tensors: [units, units] for LSTM, else [units];
    then [embedding_dim] with a label memory."""
    sizes = [[config.units] * (2 if config.cell == "lstm" else 1)] * config.layers
    return sizes + ([[config.embedding_dim]] if config.label_memory else [])


GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def parameter_count(vocab_size: int, config: ModelConfig) -> int:
    """Weights of `build_model(vocab_size, config)`, computed without building it."""
    count = vocab_size * config.embedding_dim + config.head_inputs * vocab_size + vocab_size
    count += config.label_memory * config.embedding_dim
    return count + recurrent_parameter_count(config)


def recurrent_parameter_count(config: ModelConfig) -> int:
    """Weights of the recurrent layers alone (the embedding and the logits layer, whose
    sizes follow the vocabulary's, left out)."""
    count, inputs = 0, config.embedding_dim
    for _ in range(config.layers):
        biases = 2 if config.cell == "gru" else 1  # GRU (reset_after): two bias vectors
        count += GATES[config.cell] * config.units * (inputs + config.units + biases)
        inputs = config.units
    return count


def training_memory_bytes(vocab_size: int, config: ModelConfig, batch: int, seq_len: int) -> int:
    """About what training needs: float32 weights, gradients and two Adam moments, plus
    the activations one step keeps for its backward pass (gates, states, logits)."""
    per_token = config.layers * (GATES[config.cell] + 2) * config.units
    per_token += config.embedding_dim + 3 * vocab_size  # embeddings; logits, softmax, grads
    return 4 * (4 * parameter_count(vocab_size, config) + batch * seq_len * per_token)


def check_memory(config: RunConfig, vocab_size: int) -> None:
    """Refuse a model that cannot train in this machine's memory, before anything is written."""
    needed = training_memory_bytes(
        vocab_size, config.model, config.train.batch_size, config.data.seq_len
    )
    available = available_memory_bytes()
    if available and needed > available:
        params = parameter_count(vocab_size, config.model)
        raise ConfigError(
            f"the model is too large for this machine: {params:,} parameters and about "
            f"{needed / 2**30:,.1f} GiB to train (weights, Adam state and the activations of "
            f"a {config.train.batch_size} x {config.data.seq_len} batch), but "
            f"{available / 2**30:,.1f} GiB of memory is available; lower --units, --layers, "
            "--embedding-dim, --batch-size or --seq-len"
        )


def peak_memory_bytes(reset: bool = False) -> int | None:
    """This process's peak resident memory so far (Linux's VmHWM), None where it cannot
    be read; `reset`: count the peak from now on (the kernel's clear_refs)."""
    try:
        if reset:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else physical memory, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
