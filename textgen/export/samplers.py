"""Any sampler by where its model is: a TF Serving server, a LiteRT export, a run folder.

All three take a `SamplingSettings` and give the same text for the same seed
(`textgen.generate.sampler`); `textgen sample` opens one by its options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textgen.generate.sampler import Sampler
from textgen.generate.settings import SamplingSettings


def open_sampler(
    server: str | None = None,
    litert: str | None = None,
    run_dir: str | None = None,
    root: str | None = None,
    prompts: Sequence[str] = (),
    settings: SamplingSettings | None = None,
    before_tensorflow: Callable[[], None] | None = None,
    **run_options,
) -> Sampler:
    """A `RemoteSampler` for a server URL, a `LiteRTSampler` for a LiteRT export folder,
    else the run in `run_dir` (default: the newest under `root`), opened by `open_run` for
    `prompts` and `settings` with `run_options` (backend, weights, xla)."""
    if server:
        from textgen.export.client import RemoteSampler

        return RemoteSampler(server)
    if litert:
        from textgen.export.litert_sampler import LiteRTSampler

        return LiteRTSampler(litert)
    from textgen.runs.folder import RunFolder
    from textgen.runs.open import open_run

    folder = RunFolder.find(run_dir, root)
    return open_run(folder, prompts, settings, before_tensorflow=before_tensorflow, **run_options)
