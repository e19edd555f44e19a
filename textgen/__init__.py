"""textgen: character- and word-level RNN text generation with Keras and TensorFlow.

Library use, as the CLI does it::

    import textgen
    run_dir = textgen.train(textgen.RunConfig.from_preset("quick"))
    run = textgen.load_run(run_dir)
    print(run.generate(["ROMEO:"], max_new_tokens=200, temperature=0.8, seed=1))

Names are imported lazily so that `import textgen` (and `textgen --help`) does not pay
for importing TensorFlow.
"""

__version__ = "0.1.0"

_LAZY = {
    "DataConfig": "textgen.config",
    "ModelConfig": "textgen.config",
    "TrainConfig": "textgen.config",
    "SampleConfig": "textgen.config",
    "RunConfig": "textgen.config",
    "TextgenError": "textgen.errors",
    "Run": "textgen.runs",
    "load_run": "textgen.runs",
    "train": "textgen.training",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'textgen' has no attribute {name!r}")
