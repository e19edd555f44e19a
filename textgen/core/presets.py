"""Named starting points for a run's settings, each tuned for a time budget on 2 cores."""

from __future__ import annotations

from typing import Any

# Each preset's measurements and the settings tried for it: docs/experiments.md, "Presets".
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Under two minutes on 2 CPU cores: names, line breaks and common words.
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
            "epochs": 5,
            "steps_per_epoch": 200,
            "learning_rate": 5e-3,
            "lr_schedule": "cosine",
            "patience": 0,
        },
    },
    # Word level, under ten minutes on 2 CPU cores: lowercased words, the 6000 most frequent
    # (the rest read as [UNK], never generated; a smaller softmax is a faster step).
    "words": {
        "data": {"level": "word", "lowercase": True, "seq_len": 50, "max_vocab": 6000},
        "model": {
            "cell": "gru",
            "layers": 2,
            "units": 256,
            "embedding_dim": 128,
            "dropout": 0.1,
            "memory_span": 20,
            "skip_connections": False,  # as measured
        },
        "train": {
            "batch_size": 32,
            "epochs": 8,
            "learning_rate": 1e-2,
            "lr_schedule": "cosine",
            "patience": 0,
        },
    },
    # Under 30 minutes on 2 CPU cores, validation loss <= 1.50 on Tiny Shakespeare. The
    # cosine schedule ends at step 1840 (~21 minutes alone); max_minutes guards a slower or
    # busier machine (the best checkpoint is kept).
    "shakespeare": {
        "data": {"seq_len": 100},
        "model": {
            "cell": "gru",
            "layers": 2,
            "units": 512,
            "embedding_dim": 128,
            "dropout": 0.2,
            "memory_span": 0,
            "embedding_init": 0.05,
            "skip_connections": False,  # as measured
        },
        "train": {
            "batch_size": 64,
            "epochs": 8,
            "steps_per_epoch": 230,
            "learning_rate": 3e-3,
            "lr_schedule": "cosine",
            "patience": 0,
            "max_minutes": 28.0,
        },
    },
}
