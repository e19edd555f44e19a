"""Named starting points for a run's settings, each tuned for a time budget on 2 cores."""

from __future__ import annotations

from typing import Any

# Each preset's measurements and the settings tried for it: docs/experiments.md, "Presets".
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Two minutes on 2 CPU cores (a time budget: textgen.training.plan): names, line breaks
    # and common words.
    "quick": {
        "data": {"seq_len": 100},
        "model": {
            "cell": "gru",
            "layers": 2,
            "units": 128,
            "embedding_dim": 64,
            "dropout": 0.0,
            "memory_span": 0,  # Keras' initialization, as measured
            "embedding_init": 0.05,
        },
        "train": {
            "batch_size": 32,
            "minutes": 2.0,
            "learning_rate": 5e-3,
            "lr_schedule": "cosine",
            "patience": 0,
        },
    },
    # Word level, eight minutes on 2 CPU cores (a time budget): lowercased words, the 6000
    # most frequent (the rest read as [UNK], never generated; a smaller softmax is a faster
    # step). Regularised as the shakespeare preset: perplexity 61.9 against 77.9 without.
    "words": {
        "data": {"level": "word", "lowercase": True, "seq_len": 50, "max_vocab": 6000},
        "model": {
            "cell": "gru",
            "layers": 2,
            "units": 256,
            "embedding_dim": 128,
            "dropout": 0.3,
            "variational_dropout": True,
            "memory_span": 20,
            "skip_connections": False,  # as measured
        },
        "train": {
            "batch_size": 32,
            "minutes": 8.0,
            "learning_rate": 1e-2,
            "lr_schedule": "cosine",
            "weight_decay": 0.2,
            "average_last": 2,
            "patience": 0,
        },
    },
    # Twenty minutes on 2 CPU cores (a time budget), for Tiny Shakespeare.
    "shakespeare": {
        "data": {"seq_len": 100},
        "model": {
            "cell": "gru",
            "layers": 2,
            "units": 512,
            "embedding_dim": 128,
            "dropout": 0.3,
            "variational_dropout": True,  # with weight decay 0.2: 1.451 against 1.467
            "memory_span": 0,
            "embedding_init": 0.05,
            "skip_connections": False,  # as measured
        },
        "train": {
            "batch_size": 32,  # twice the updates of 64 in the same time: 1.467 against 1.488
            "minutes": 20.0,
            "learning_rate": 3e-3,
            "lr_schedule": "cosine",
            "weight_decay": 0.2,
            "average_last": 3,  # the best of the last 2 and 3 averaged: 1.4491 against 1.4510
            "patience": 0,
        },
    },
}
