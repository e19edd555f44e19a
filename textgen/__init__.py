"""textgen: character- and word-level RNN text generation with Keras and TensorFlow.

Library use, as the CLI does it::

    import textgen
    run_dir = textgen.train(textgen.RunConfig.from_preset("quick"))
    run = textgen.load_run(run_dir)
    print(run.generate(["ROMEO:"], max_new_tokens=200, temperature=0.8, seed=1))

Names are imported lazily so that `import textgen` (and `textgen --help`) does not pay
for importing TensorFlow.
"""

import os

__version__ = "0.1.0"

# TensorFlow's CPU allocator hands large buffers back to the OS after every op, so each
# training step faults its activations in afresh (25-55k page faults per step here, a third
# of the step's time in the kernel). Its BFC allocator keeps them: 1.2x training chars/s
# for the 2 x 256 LSTM, ~1.4x for the quick preset, same loss (scripts/bench_allocator.py).
# Read when TensorFlow makes its first CPU tensor, so it must be set before that; a user's
# own setting wins.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

_LAZY = {
    "DataConfig": "textgen.core.config",
    "ModelConfig": "textgen.core.config",
    "TrainConfig": "textgen.core.config",
    "SampleConfig": "textgen.core.config",
    "RunConfig": "textgen.core.config",
    "TextgenError": "textgen.core.errors",
    "Run": "textgen.runs.run",
    "load_run": "textgen.runs.run",
    "train": "textgen.training.start",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'textgen' has no attribute {name!r}")
