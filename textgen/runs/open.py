"""Opening a run to sample from: without TensorFlow whenever that can serve the request."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textgen.core.errors import ConfigError, TextgenError
from textgen.generate.sampler import Sampler
from textgen.generate.settings import SamplingSettings
from textgen.runs.folder import RunFolder

BACKENDS = ("auto", "numpy", "tensorflow")


def open_run(
    folder: RunFolder,
    prompts: Sequence[str] = (),
    settings: SamplingSettings | None = None,
    backend: str = "auto",
    weights: str = "best",
    xla: bool = True,
    before_tensorflow: Callable[[], None] | None = None,
) -> Sampler:
    """The run's sampler for `prompts` and `settings`: `NumpyRun` (no TensorFlow) when it
    can serve them and `backend` is auto or numpy, else the TensorFlow generator (`Run`).
    Both write the same text. `backend="numpy"` that cannot serve is a ConfigError saying
    why; `before_tensorflow` runs before TensorFlow is imported."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend != "tensorflow":
        from textgen.runs.numpy_run import AUTO_MOST_TOKENS, NumpyRun

        try:
            if weights != "best":
                raise ConfigError("it samples the best weights only")
            sampler = NumpyRun(folder)
            most = AUTO_MOST_TOKENS if backend == "auto" else None
            sampler.check(prompts, settings or SamplingSettings(), most)
            return sampler
        except TextgenError as why:
            if backend == "numpy":
                raise ConfigError(f"--backend numpy cannot serve this: {why}") from None
    if before_tensorflow is not None:
        before_tensorflow()
    from textgen.runs.run import Run

    return Run(folder, weights=weights, xla=xla)
