"""Fine-tuning: a new run that starts from a trained one (`textgen train --init-from RUN`).

A fine-tune is a way to start a run, not another training loop. Its config is the
parent's model and tokens with fine-tuning's training defaults (`config.fine_tune_config`),
its vocabulary the parent's with the new text's tokens appended
(`tokenizers.extend_vocabulary`), its first weights the parent's with rows and columns
added for those tokens (`models.copy_weights_growing_vocabulary`). From then on the
trainer trains it as any run: resume, export and multi-worker need no special case. The
parent run folder is only read.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from textgen.core.errors import ConfigError, RunError
from textgen.runs.folder import RunFolder
from textgen.runs.run import Run

VOCAB_MODES = ("extend", "keep")  # add the new text's tokens / keep the parent's as is


@dataclass
class Parent:
    """The run a fine-tune starts from, loaded once."""

    run: Run
    which: str  # "best" or "latest"

    @classmethod
    def load(cls, run_dir: str | os.PathLike, which: str = "best") -> Parent:
        """The run in `run_dir` with its `which` weights; RunError if it is not a usable run."""
        if which not in ("best", "latest"):
            raise ConfigError(f"init weights must be best or latest, got {which!r}")
        folder = RunFolder(run_dir)
        folder.require_complete()
        return cls(Run(folder, weights=which, xla=False), which)

    def weights_digest(self) -> str:
        """sha256 of the checkpoint files the weights were read from."""
        return _sha256(checkpoint_files(self.run.weights_path))

    def lineage(self, vocab_mode: str, vocab_size: int) -> dict:
        """What the fine-tune's config.json records of where it came from."""
        folder = self.run.folder
        return {
            "path": str(folder.path.resolve()),
            "config_sha256": _sha256([folder.config_file]),
            "weights": self.which,
            "checkpoint": os.path.basename(self.run.weights_path),
            "weights_sha256": self.weights_digest(),
            "vocab": vocab_mode,
            "parent_vocab_size": self.run.vocab.size,
            "tokens_added": vocab_size - self.run.vocab.size,
        }


def checkpoint_files(prefix: str) -> list[Path]:
    """The files of the checkpoint `prefix` (its index and data shards), sorted."""
    prefix_path = Path(prefix)
    return sorted(prefix_path.parent.glob(prefix_path.name + ".*"))


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(path.read_bytes())
        except OSError as err:
            raise RunError(f"cannot read {path}: {err.strerror or err}") from None
    return digest.hexdigest()


def parent_initializer(lineage: dict, parent: Parent | None = None):
    """A function that gives a fine-tune's freshly built model its parent's weights: those
    of `parent` if given, else loaded (only when called) from the `lineage` the fine-tune's
    config recorded, checked to be the weights it started from."""
    from textgen.model.network import copy_weights_growing_vocabulary

    def initialize(model) -> None:
        source = parent or Parent.load(lineage["path"], lineage["weights"])
        if parent is None and source.weights_digest() != lineage["weights_sha256"]:
            raise RunError(
                f"the parent run {lineage['path']} has other {lineage['weights']} weights than "
                "when this fine-tune started; start the fine-tune again"
            )
        copy_weights_growing_vocabulary(source.run.model, model)

    return initialize
