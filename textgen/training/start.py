"""Starting and resuming a run: the corpus made ready, the run folder written, the
trainer run, under a tf.distribute strategy for one machine or many.

The loop itself is `textgen.training.trainer.Trainer`; this module decides what it trains on and
where it writes (only the chief writes the run folder under multi-worker training).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

import textgen
from textgen.core.config import RunConfig
from textgen.core.errors import ConfigError, CorpusError, RunError
from textgen.data.items import token_roles
from textgen.data.levels import level_class
from textgen.data.prepared import prepare_data
from textgen.model.sizes import check_memory
from textgen.runs.folder import DEFAULT_ROOT, RunFolder
from textgen.training.config_changes import fine_tune_config, resume_settings
from textgen.training.distribute import Cluster, make_cluster
from textgen.training.finetune import VOCAB_MODES, Parent, parent_initializer
from textgen.training.plan import Plan, budget_report
from textgen.training.trainer import Trainer

# how a collective fails when another worker is gone: it times out, or it aborts
_LOST_CONTACT = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.AbortedError,
)


def train(
    config: RunConfig | None = None,
    run_dir: str | os.PathLike | None = None,
    root: str | os.PathLike = DEFAULT_ROOT,
    resume: bool = False,
    epochs: int | None = None,
    log: Callable[[str], None] = print,
    verbose: int = 1,
    settings: dict[str, dict] | None = None,
    strategy: str = "auto",
    init_from: str | os.PathLike | None = None,
    init_weights: str = "best",
    vocab: str = "extend",
    auto_size: bool = False,
    dry_run: bool = False,
) -> Path | None:
    """Train a model; returns the run folder (None on a worker other than the chief).

    A new run needs `config`; `resume=True` continues one (the newest under `root` unless
    `run_dir` is given), `settings` (by section) changing what `CHANGEABLE_ON_RESUME`
    lists, `epochs` short for `settings={"train": {"epochs": N}}`. `strategy`: a
    `textgen.training.distribute` name. `init_from` fine-tunes a new run from that run's
    `init_weights`, its vocabulary extended by the new text's tokens or kept (`vocab`).
    The run folder is written once the data is ready and the model fits in memory.
    `auto_size`: a new budget run's size and regularisation chosen by the sizing rule
    (`textgen.training.auto_size`), what `settings` gives kept. `dry_run`: log the plan
    and return None, no run folder written.
    """
    started = time.perf_counter()  # a budget counts from here (textgen.training.plan)
    settings = {section: dict(values) for section, values in (settings or {}).items()}
    if epochs is not None:
        settings.setdefault("train", {})["epochs"] = epochs
    cluster = make_cluster(strategy)  # first: a multi-worker strategy must precede other ops
    if cluster.workers > 1 and run_dir is None:
        raise ConfigError("--strategy multi-worker needs --run-dir (the same on every worker)")
    sizer = (settings, started, log) if auto_size else None
    folder, config, prepared, initialize = _the_run(
        config, run_dir, root, resume, settings, log, cluster, init_from, init_weights, vocab,
        sizer,
    )  # fmt: skip
    _check_strategy(config, cluster)
    if dry_run:
        from textgen.training.auto_size import dry_run_lines

        for line in dry_run_lines(config, prepared, started):
            log(line)
        return None
    return _fit(folder, config, prepared, initialize, cluster, resume, log, verbose, started)


def _fit(folder, config, prepared, initialize, cluster, resume, log, verbose, started):
    """Write the run folder, train, report: the folder (None on a worker but the chief)."""
    trainer_log, trainer_folder = log, folder
    if not cluster.is_chief:  # other workers write to a private folder, removed at the end
        trainer_folder = RunFolder(tempfile.mkdtemp(prefix="textgen-worker-"))
        trainer_log, verbose = (lambda line: None), 0  # the chief reports
    trainer = _write_run_folder(
        trainer_folder, config, prepared, cluster, resume, trainer_log, verbose, folder, initialize,
        started,
    )  # fmt: skip
    try:
        trainer.fit()
        if config.train.minutes and cluster.is_chief:
            log(budget_report(Plan.from_dict(config.plan), time.perf_counter() - started))
    except _LOST_CONTACT as err:
        if cluster.workers == 1:
            raise
        raise RunError(
            f"[{cluster.task}] lost contact with another worker "
            f"({type(err).__name__}); the run is safe at its last checkpoint in "
            f"{folder.path}: restart every worker with the same command and --resume"
        ) from None
    finally:
        if not cluster.is_chief:
            shutil.rmtree(trainer_folder.path, ignore_errors=True)
    if cluster.workers > 1:  # every worker's own line: equal digests show they agree
        log(f"[{cluster.task}] weights sha256 {weights_digest(trainer.model)}")
    return folder.path if cluster.is_chief else None


def _check_strategy(config: RunConfig, cluster: Cluster) -> None:
    """Refuse what trains on one device or machine only under a distribution strategy."""
    if config.train.stateful and cluster.strategy is not None:
        raise ConfigError("--stateful trains on one device only; drop --strategy")
    if config.train.minutes and cluster.workers > 1:
        raise ConfigError("--minutes plans one machine's run; with several, give --epochs")


def _the_run(
    config, run_dir, root, resume, settings, log, cluster, init_from, init_weights, vocab, sizer
):  # fmt: skip
    """(folder, config, prepared data, first-weights initializer or None) of the run to
    train: a fine-tune, a resumed run or a new one."""
    if init_from is not None:
        if resume:
            raise ConfigError(
                "--init-from starts a new run and --resume continues one; give one of them"
            )
        return _fine_tune_run(init_from, init_weights, vocab, settings, run_dir, root, cluster, log)
    if resume:
        folder, config, prepared = _resumed_run(run_dir, root, settings, log)
        # used only if the fine-tune stopped before its step-0 checkpoint
        initialize = parent_initializer(config.parent) if config.parent else None
        return folder, config, prepared, initialize
    config = (config or RunConfig()).with_overrides(**settings)
    folder, prepared, config = _new_run(config, run_dir, root, cluster, sizer=sizer)
    return folder, config, prepared, None


def _resumed_run(run_dir, root, settings: dict[str, dict], log):
    """The run to resume, its config with the allowed changes, and its data (same text)."""
    folder = RunFolder.find(run_dir, root, need_weights=False)
    config, changes = resume_settings(folder.load_config(), settings)
    prepared = prepare_data(config, vocab=folder.load_vocab())
    if prepared.fingerprint["sha256"] != config.corpus.get("sha256"):
        raise CorpusError(
            f"the corpus changed since run {folder.path} started "
            "(its sha256 differs); resume needs the same text"
        )
    for change in changes:
        log(f"Changed on resume: {change}")
    return folder, config, prepared


def _fine_tune_run(init_from, init_weights, vocab, settings, run_dir, root, cluster, log):
    """A fine-tune's new folder, config (with its lineage), data and first weights."""
    if vocab not in VOCAB_MODES:
        raise ConfigError(f"vocab must be one of {', '.join(VOCAB_MODES)}; got {vocab!r}")
    parent = Parent.load(init_from, init_weights)
    config = fine_tune_config(parent.run.config, settings)
    parent_vocab = parent.run.vocab
    if vocab == "extend" and not level_class(parent_vocab.level).extendable:
        raise ConfigError(
            f"--vocab extend: a {parent_vocab.level} run keeps its parent's pieces "
            "(a character they lack is read as its bytes); use --vocab keep"
        )
    folder, prepared, config = _new_run(
        config,
        run_dir,
        root,
        cluster,
        vocab=parent_vocab if vocab == "keep" else None,
        extend=parent_vocab if vocab == "extend" else None,
    )
    config.parent = parent.lineage(vocab, prepared.vocab.size)
    added = prepared.vocab.size - parent_vocab.size
    unit = level_class(config.data.level).unit
    log(
        f"Fine-tuning {parent.run.folder.path} ({init_weights} weights): vocabulary {vocab}, "
        f"{parent_vocab.size} tokens"
        + (f" + {added} new {unit}" if vocab == "extend" else " (new ones read as [UNK])")
    )
    return folder, config, prepared, parent_initializer(config.parent, parent)


def _new_run(
    config: RunConfig, run_dir, root, cluster: Cluster, vocab=None, extend=None, sizer=None
):  # fmt: skip
    """The new run's folder (not yet written), data and config (with the corpus record).
    `vocab`/`extend`: a vocabulary to use, or to extend (see `prepare_data`); `sizer`:
    (settings given, the budget's start, log) to size the run by the rule."""
    if cluster.is_chief and run_dir is not None and RunFolder(run_dir).exists():
        raise RunError(
            f"{run_dir} already holds a run; pass --resume to continue it "
            "or choose another --run-dir"
        )
    if sizer is not None:  # the rule's batch and window, before the corpus is checked
        from textgen.training.auto_size import recipe, size_run

        config = recipe(config, sizer[0])
    prepared = prepare_data(config, vocab=vocab, extend=extend)
    # A new model keeps its items' labels in mind if asked; a fine-tune if its parent does.
    fine_tune = vocab is not None or extend is not None
    if config.model.label_input and (config.model.label_memory or not fine_tune):
        config.model.label_memory = max(token_roles(prepared.vocab.tokens))
    if sizer is not None:
        config = size_run(config, prepared, *sizer)
    check_memory(config, prepared.vocab.size)
    folder = (
        RunFolder(run_dir) if run_dir else RunFolder.create(root, RunFolder.default_name(config))
    )
    config.textgen_version = textgen.__version__
    config.corpus = prepared.fingerprint
    return folder, prepared, config


def _write_run_folder(
    folder, config, prepared, cluster, resume, log, verbose, chief_folder, initialize=None,
    started=None,
):  # fmt: skip
    """Write config and vocabulary to `folder` and build the trainer; a failure leaves no
    half-made folder behind (a resumed chief's folder is kept, it holds the run)."""
    new_folder = None if folder.path.exists() and cluster.is_chief else folder.path
    try:
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.save_config(config)
        prepared.vocab.save(folder.vocab_file)
        return Trainer(
            config,
            folder,
            prepared,
            strategy=cluster.strategy,
            log=log,
            verbose=verbose,
            # A worker resumes from the chief's checkpoints; a new run restores none (a
            # fine-tune's step-0 checkpoint may already be there, being written).
            restore_dir=chief_folder.latest_dir if resume and not cluster.is_chief else None,
            initialize=initialize,
            started=started,
        )
    except BaseException as err:
        if new_folder is not None and (not resume or not cluster.is_chief):
            shutil.rmtree(new_folder, ignore_errors=True)
        if isinstance(err, OSError):
            raise RunError(f"cannot write run folder {folder.path}: {err.strerror}") from None
        raise


def weights_digest(model) -> str:
    """A sha256 of every weight's bytes: equal on every worker after synchronous training."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()
