"""The training loop: one custom step under a tf.distribute strategy, for one machine or many.

Keras 3's `fit` does not run under MultiWorkerMirroredStrategy, so the step is a
`tf.function` called through `strategy.run`; on one machine the strategy is the default
one. Users still get Keras' optimizers, losses, metrics and progress bar, plus a CSV
log, TensorBoard summaries and `tf.train.CheckpointManager` checkpoints that hold the
weights, the optimizer state and the step (the data order is a function of the step).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import textgen
from textgen.config import RunConfig
from textgen.corpus import load_corpus
from textgen.dataset import stateful_dataset, stream_windows_per_pass, training_dataset
from textgen.distribute import make_cluster
from textgen.errors import ConfigError, CorpusError, RunError, TextgenError
from textgen.evaluation import WindowLoss, loss_figures
from textgen.generation import Generator
from textgen.models import (
    build_model,
    forward_from_state,
    parameter_count,
    state_sizes,
    training_memory_bytes,
)
from textgen.runs import DEFAULT_ROOT, RunFolder, damaged_checkpoint_message
from textgen.token_ids import corpus_ids
from textgen.tokenizers import Vocabulary, count_tokens

CSV_FIELDS = ["epoch", "step", "loss", "val_loss", "learning_rate", "seconds", "tokens_per_sec"]


class TrainingInterrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM during training; the latest state was saved to `folder`.

    `exit_code` is what a shell reports for the signal: 130 for SIGINT, 143 for SIGTERM.
    """

    def __init__(self, folder: RunFolder, signal_number: int = signal.SIGINT):
        name = signal.Signals(signal_number).name
        super().__init__(f"stopped by {name}; saved to {folder.path}")
        self.folder, self.signal_name = folder, name
        self.exit_code = 128 + signal_number


class TrainingDiverged(TextgenError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM (what Kubernetes, Docker and batch schedulers send), handled as Ctrl-C is."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Within the block, SIGTERM raises `_Terminated` (main thread only; else unchanged)."""

    def handler(signum, frame):
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class PreparedData:
    """Everything training needs from the corpus, computed before any file is written."""

    vocab: Vocabulary
    num_windows: int  # training windows of seq_len+1 tokens
    train_ids: np.ndarray  # memory-mapped from the data cache (textgen.token_ids)
    val_ids: np.ndarray
    fingerprint: dict


def prepare_data(config: RunConfig, vocab: Vocabulary | None = None) -> PreparedData:
    """Stream the corpus: fingerprint it, build (or reuse) the vocabulary, encode it to
    ids on disk, check sizes. Memory stays small whatever the corpus size."""
    data = config.data
    corpus = load_corpus(data)
    fingerprint = corpus.fingerprint()
    if vocab is None:
        counts = count_tokens(corpus.train_chunks(), data.level, data.lowercase)
        vocab = Vocabulary.from_counts(counts, data.level, data.lowercase, data.vocab_limit)
    ids = corpus_ids(corpus, fingerprint["sha256"], vocab, data.data_dir)
    window = data.seq_len + 1
    if len(ids.train) < window:
        raise CorpusError(
            f"the corpus is too short: {len(ids.train)} training tokens, but one window "
            f"needs seq_len+1 = {window}; lower --seq-len or add text"
        )
    windows = len(ids.train) // window
    if config.train.stateful:
        windows = stream_windows_per_pass(len(ids.train), data.seq_len, config.train.batch_size)
        if windows < 1:
            raise CorpusError(
                f"--stateful cuts the corpus into {config.train.batch_size} streams of "
                f"{len(ids.train) // config.train.batch_size} tokens, shorter than one window "
                f"of {window}; lower --batch-size or --seq-len"
            )
    elif windows < config.train.batch_size:
        raise CorpusError(
            f"the corpus makes {windows} training windows of {window} tokens, fewer than "
            f"--batch-size {config.train.batch_size}; lower --batch-size or --seq-len"
        )
    return PreparedData(vocab, windows, ids.train, ids.validation, fingerprint)


# Settings a resumed run may change (recorded in its config.json); any other setting
# given with --resume must equal the run's. The corpus may be named differently (moved
# files) as long as its text is the same: its fingerprint is checked instead.
CHANGEABLE_ON_RESUME = {
    "data": {"sources", "tfds_manual_dir", "data_dir"},
    "train": {
        "epochs", "steps_per_epoch", "learning_rate", "lr_schedule", "clipnorm", "patience",
        "keep_checkpoints", "sample_length", "xla", "val_tokens", "max_minutes",
    },
    "sample": {"length", "temperature", "top_k", "top_p", "stop"},
}  # fmt: skip


def resume_settings(saved: RunConfig, settings: dict[str, dict]) -> tuple[RunConfig, list[str]]:
    """The run's config with the changeable `settings` applied, and what changed.

    `settings` holds what the user gave, by section (as for `RunConfig.with_overrides`).
    Raises ConfigError naming every given setting that contradicts the run.
    """
    conflicts, changes, allowed = [], [], {}
    for section, values in settings.items():
        for name, value in values.items():
            if value is None:
                continue
            old = getattr(getattr(saved, section), name)
            if value == old:
                continue
            if name in CHANGEABLE_ON_RESUME.get(section, ()):
                allowed.setdefault(section, {})[name] = value
                changes.append(f"{name} {old!r} -> {value!r}")
            else:
                conflicts.append(f"{name} is {old!r} in the run, {value!r} given")
    if conflicts:
        raise ConfigError(
            "these settings differ from the run being resumed: "
            + "; ".join(conflicts)
            + " (drop them, or start a new run)"
        )
    return saved.with_overrides(**allowed), changes


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
) -> Path | None:
    """Train a model; returns the run folder.

    A new run needs `config`. With `resume=True` the run's own config is used (the
    newest run under `root` unless `run_dir` is given); `settings` (by section, as the
    user gave them) may change what `CHANGEABLE_ON_RESUME` lists and must otherwise
    equal the run's; `epochs` is a shorthand for `settings={"train": {"epochs": N}}`.
    The run folder is written only once the data is ready and the model fits in memory.
    `strategy` is a `textgen.distribute` strategy name; under multi-worker training only
    the chief writes the run folder, and other workers return None.
    """
    settings = {section: dict(values) for section, values in (settings or {}).items()}
    if epochs is not None:
        settings.setdefault("train", {})["epochs"] = epochs
    cluster = make_cluster(strategy)  # first: a multi-worker strategy must precede other ops
    if cluster.workers > 1 and run_dir is None:
        raise ConfigError("--strategy multi-worker needs --run-dir (the same on every worker)")
    if resume:
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
    else:
        config = (config or RunConfig()).with_overrides(**settings)
        if cluster.is_chief and run_dir is not None and RunFolder(run_dir).exists():
            raise RunError(
                f"{run_dir} already holds a run; pass --resume to continue it "
                "or choose another --run-dir"
            )
        prepared = prepare_data(config)
        check_memory(config, prepared.vocab.size)
        folder = (
            RunFolder(run_dir)
            if run_dir
            else RunFolder.create(root, RunFolder.default_name(config))
        )
        config.textgen_version = textgen.__version__
        config.corpus = prepared.fingerprint
    if config.train.stateful and cluster.strategy is not None:
        raise ConfigError("--stateful trains on one device only; drop --strategy")
    chief_folder = folder
    if not cluster.is_chief:  # other workers write to a private folder, removed at the end
        folder = RunFolder(tempfile.mkdtemp(prefix="textgen-worker-"))
        log = lambda line: None  # noqa: E731 (the chief reports)
        verbose = 0
    new_folder = None if folder.path.exists() and cluster.is_chief else folder.path
    try:
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.save_config(config)
        prepared.vocab.save(folder.vocab_file)
        trainer = Trainer(
            config,
            folder,
            prepared,
            strategy=cluster.strategy,
            log=log,
            verbose=verbose,
            restore_dir=None if cluster.is_chief else chief_folder.latest_dir,
        )
    except BaseException as err:
        if new_folder is not None and (not resume or not cluster.is_chief):  # none half-made
            shutil.rmtree(new_folder, ignore_errors=True)
        if isinstance(err, OSError):
            raise RunError(f"cannot write run folder {folder.path}: {err.strerror}") from None
        raise
    try:
        trainer.fit()
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as err:
        if cluster.workers == 1:
            raise
        raise RunError(
            f"[{cluster.task}] lost contact with another worker "
            f"({type(err).__name__}); the run is safe at its last checkpoint in "
            f"{chief_folder.path}: restart every worker with the same command and --resume"
        ) from None
    finally:
        if not cluster.is_chief:
            shutil.rmtree(folder.path, ignore_errors=True)
    if cluster.workers > 1:
        print(f"[{cluster.task}] weights sha256 {weights_digest(trainer.model)}", flush=True)
    return chief_folder.path if cluster.is_chief else None


def weights_digest(model) -> str:
    """A sha256 of every weight's bytes: equal on every worker after synchronous training."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


class Trainer:
    """Owns the model, optimizer, data iterator and checkpoints of one run."""

    def __init__(
        self,
        config: RunConfig,
        folder: RunFolder,
        data: PreparedData,
        strategy: tf.distribute.Strategy | None = None,
        log: Callable[[str], None] = print,
        verbose: int = 1,
        restore_dir: Path | None = None,
    ):
        self.restore_dir = restore_dir  # another worker's checkpoints to resume from
        self.config, self.folder, self.data, self.log, self.verbose = (
            config,
            folder,
            data,
            log,
            verbose,
        )
        train_cfg = config.train
        keras.utils.set_random_seed(train_cfg.seed)
        self.strategy = strategy or tf.distribute.get_strategy()
        seq_len, batch = config.data.seq_len, train_cfg.batch_size
        # Stateful: windows in order, state carried; one pass = every stream's windows once.
        self.windows_per_pass = (
            stream_windows_per_pass(len(data.train_ids), seq_len, batch)
            if train_cfg.stateful
            else data.num_windows // batch
        )
        self.steps_per_epoch = train_cfg.steps_per_epoch or self.windows_per_pass
        total_steps = self.steps_per_epoch * train_cfg.epochs

        with self.strategy.scope():
            self.model = build_model(data.vocab.size, config.model)
            learning_rate = train_cfg.learning_rate
            if train_cfg.lr_schedule == "cosine":
                learning_rate = keras.optimizers.schedules.CosineDecay(
                    train_cfg.learning_rate, decay_steps=total_steps, alpha=0.1
                )
            self.optimizer = keras.optimizers.Adam(
                learning_rate, global_clipnorm=train_cfg.clipnorm or None
            )
            self.optimizer.build(self.model.trainable_variables)
        # Progress, as variables so a checkpoint carries it: outside the strategy's scope,
        # each worker keeps its own (equal) copy and reads it without a collective.
        self.loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.loss_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.best_val_loss = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
        self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

        if train_cfg.stateful:
            with self.strategy.scope():  # the RNN state carried from window to window
                self.rnn_state = tuple(
                    tuple(tf.Variable(tf.zeros([batch, size]), trainable=False) for size in sizes)
                    for sizes in state_sizes(config.model)
                )
        else:
            self.rnn_state = ()
        self.iterator = self._batches(start_step=0)
        self.has_validation = len(data.val_ids) >= 2

        self.checkpoint = tf.train.Checkpoint(
            model=self.model,
            optimizer=self.optimizer,
            loss_sum=self.loss_sum,
            loss_steps=self.loss_steps,
            step=self.step,
            best_val_loss=self.best_val_loss,
            bad_epochs=self.bad_epochs,
            # Dropout's random state: Keras keeps it outside what tf.train.Checkpoint saves
            # for the model, and without it a resumed run would drop different units.
            rng_state=[v.value for v in self.model.non_trainable_variables],
            **(
                {"rnn_state": [v for layer in self.rnn_state for v in layer]}
                if self.rnn_state
                else {}
            ),
        )
        self.latest = tf.train.CheckpointManager(
            self.checkpoint, str(folder.latest_dir), max_to_keep=train_cfg.keep_checkpoints
        )
        self.best = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=self.model), str(folder.best_dir), max_to_keep=1
        )
        self.generator = Generator(self.model, data.vocab)
        # XLA fuses the fused cells' gate maths and the optimizer update: measured 1.4x for LSTM
        # (scripts/bench_train.py). Only on the default strategy: no collectives inside.
        xla = train_cfg.xla and strategy is None
        self._compiled_replica_step = tf.function(self._replica_step, jit_compile=xla)
        self.window_loss = WindowLoss(  # a stateful run is scored with its state carried
            self.model,
            config.data.seq_len,
            train_cfg.batch_size,
            jit_compile=xla,
            state_sizes=state_sizes(config.model) if train_cfg.stateful else None,
        )

    def _batches(self, start_step: int):
        """The training batches from `start_step` on, distributed over the replicas.

        The data order is a function of the step alone (see `textgen.dataset`), so a
        resumed run rebuilds its iterator at the restored step instead of checkpointing
        it (a multi-worker iterator cannot be checkpointed).
        """
        cfg, seq_len = self.config.train, self.config.data.seq_len
        ids = self.data.train_ids
        if cfg.stateful:
            dataset = stateful_dataset(ids, seq_len, cfg.batch_size, start_step=start_step)
        else:
            dataset = training_dataset(
                ids, seq_len, cfg.batch_size, cfg.seed, start_step=start_step
            )
        return iter(self.strategy.experimental_distribute_dataset(dataset))

    # -- the compiled steps -----------------------------------------------------------

    def _replica_step(self, inputs, targets):
        """Forward, backward and update on one replica's batch; XLA-compiled if `xla`.

        Stateful runs start from the state the previous window ended in (zeros at the
        start of each pass) and keep the new one; gradients stop at the window's start.
        """
        if self.rnn_state:
            fresh = tf.equal(self.step % self.windows_per_pass, 0)
            start = tuple(
                tuple(tf.where(fresh, tf.zeros_like(v), v) for v in layer)
                for layer in self.rnn_state
            )
        with tf.GradientTape() as tape:
            if self.rnn_state:
                logits, end = forward_from_state(self.model, inputs, start, training=True)
                for variables, values in zip(self.rnn_state, end):
                    for variable, value in zip(variables, values):
                        variable.assign(tf.stop_gradient(value))
            else:
                logits = self.model(inputs, training=True)  # (batch, time, vocab)
            per_token = self.loss_fn(targets, logits)  # (batch, time)
            loss = tf.nn.compute_average_loss(
                tf.reduce_mean(per_token, axis=1), global_batch_size=self.config.train.batch_size
            )
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        return loss

    @tf.function
    def _train_step(self, iterator):
        loss = self.strategy.run(self._compiled_replica_step, args=next(iterator))
        loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        self.loss_sum.assign_add(tf.cast(loss, tf.float64))
        self.loss_steps.assign_add(1)
        self.step.assign_add(1)
        return loss

    def epoch_loss(self) -> float:
        """Mean training loss of the current epoch so far."""
        return float(self.loss_sum) / max(int(self.loss_steps), 1)

    def validation_loss(self) -> float | None:
        """Mean per-token loss over the validation text (its first `val_tokens` tokens)."""
        if not self.has_validation:
            return None
        cap = self.config.train.val_tokens or len(self.data.val_ids)
        return self.window_loss(self.data.val_ids[: cap + 1])[0]

    # -- the loop ----------------------------------------------------------------------

    def fit(self) -> None:
        """Train until the configured epochs are done or validation stops improving."""
        cfg = self.config.train
        try:
            if self.restore_dir and (path := tf.train.latest_checkpoint(str(self.restore_dir))):
                self.checkpoint.restore(path)
                restored = path
            else:
                restored = self.latest.restore_or_initialize()
        except Exception as err:  # a damaged checkpoint: say which, never a traceback
            hint = "restore the files from a backup, or start a new run"
            path = self.latest.latest_checkpoint
            raise RunError(damaged_checkpoint_message(path, err, hint)) from None
        if restored:
            self.log(f"Resuming {self.folder.path} at step {int(self.step)} ({restored})")
            self.iterator = self._batches(start_step=int(self.step))
            if cfg.lr_schedule == "constant":  # the checkpoint holds the old rate: use the config's
                self.optimizer.learning_rate = cfg.learning_rate
        else:
            self.model.summary(print_fn=self.log)
            self.log(f"Run folder: {self.folder.path}")
        writer = tf.summary.create_file_writer(str(self.folder.tensorboard_dir))
        start_epoch = int(self.step) // self.steps_per_epoch
        if start_epoch >= cfg.epochs:
            self.log(f"All {cfg.epochs} epochs are done; pass --epochs N to train further.")
            return
        if cfg.patience and int(self.bad_epochs) >= cfg.patience:
            self.log("This run already stopped early (no validation improvement).")
            return
        tokens_per_step = cfg.batch_size * self.config.data.seq_len
        try:
            with _sigterm_as_interrupt():
                self._epochs(start_epoch, tokens_per_step, writer)
        except KeyboardInterrupt as stop:
            self._save(self.latest, int(self.step))
            signum = signal.SIGTERM if isinstance(stop, _Terminated) else signal.SIGINT
            raise TrainingInterrupted(self.folder, signum) from None
        finally:
            writer.close()

    def _epochs(self, start_epoch: int, tokens_per_step: int, writer) -> None:
        cfg = self.config.train
        deadline = time.perf_counter() + 60 * cfg.max_minutes if cfg.max_minutes else math.inf
        for epoch in range(start_epoch, cfg.epochs):
            self.log(f"Epoch {epoch + 1}/{cfg.epochs}")
            done_in_epoch = int(self.step) - epoch * self.steps_per_epoch
            if done_in_epoch == 0:
                self.loss_sum.assign(0.0)
                self.loss_steps.assign(0)
            bar = keras.utils.Progbar(
                self.steps_per_epoch, verbose=self.verbose, stateful_metrics=["loss"]
            )
            if done_in_epoch:
                bar.update(done_in_epoch, [("loss", self.epoch_loss())])
            started = time.perf_counter()
            for i in range(done_in_epoch, self.steps_per_epoch):
                loss = self._train_step(self.iterator)
                if not math.isfinite(float(loss)):
                    self._stop_on_bad_loss(float(loss), int(self.step))
                bar.update(i + 1, [("loss", self.epoch_loss())])
                if time.perf_counter() > deadline:
                    break
            seconds = time.perf_counter() - started
            steps_run = int(self.step) - epoch * self.steps_per_epoch - done_in_epoch
            val_loss = self.validation_loss()
            self._end_epoch(epoch, val_loss, seconds, steps_run * tokens_per_step, writer)
            if cfg.patience and int(self.bad_epochs) >= cfg.patience:
                self.log(
                    f"Stopping early: validation loss has not improved for "
                    f"{cfg.patience} epochs (best {float(self.best_val_loss):.4f})."
                )
                break
            if time.perf_counter() > deadline:
                self.log(f"Stopping: the time limit ({cfg.max_minutes:g} minutes) is reached.")
                break

    def _save(self, manager: tf.train.CheckpointManager, step: int) -> None:
        """Save a checkpoint; a full disk or unwritable folder is one clear error.

        CheckpointManager writes the files first and its index last, so a failed save
        leaves the previous checkpoint in place and in use.
        """
        try:
            manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as err:
            reason = getattr(err, "strerror", None) or str(err).strip().splitlines()[0][:200]
            raise RunError(
                f"cannot save a checkpoint in {manager.directory}: {reason}; the last good "
                f"checkpoint is kept ({manager.latest_checkpoint or 'none yet'}). Free disk "
                "space or fix the folder's permissions, then resume with --resume"
            ) from None

    def _stop_on_bad_loss(self, loss: float, step: int) -> None:
        """A NaN or infinite loss: keep the last good checkpoint (do not save), explain."""
        cfg = self.config.train
        kept = self.latest.latest_checkpoint or "none yet"
        raise TrainingDiverged(
            f"the training loss became {loss} at step {step}; stopped without saving it "
            f"(last good checkpoint: {kept}). Lower --learning-rate (now "
            f"{cfg.learning_rate:g}) or clip gradients harder (--clipnorm, now "
            f"{cfg.clipnorm:g}), then resume with --resume"
        )

    def _end_epoch(self, epoch, val_loss, seconds, tokens, writer) -> None:
        loss = self.epoch_loss()
        lr = float(tf.convert_to_tensor(self.optimizer.learning_rate))
        step = int(self.step)
        improved = val_loss is None or val_loss < float(self.best_val_loss)
        # Best first, then latest: a crash in between leaves latest at the previous epoch,
        # so resume retrains this epoch (the same batches) rather than skipping its best.
        if improved:
            self.best_val_loss.assign(val_loss if val_loss is not None else loss)
            self.bad_epochs.assign(0)
            self._save(self.best, step)
        else:
            self.bad_epochs.assign_add(1)
        self._save(self.latest, step)

        row = {
            "epoch": epoch + 1,
            "step": step,
            "loss": f"{loss:.5f}",
            "val_loss": "" if val_loss is None else f"{val_loss:.5f}",
            "learning_rate": f"{lr:.6g}",
            "seconds": f"{seconds:.1f}",
            "tokens_per_sec": f"{tokens / max(seconds, 1e-9):.0f}",
        }
        _append_csv(self.folder.log_csv, row)
        with writer.as_default(step=step):
            tf.summary.scalar("loss", loss)
            tf.summary.scalar("learning_rate", lr)
            if val_loss is not None:
                tf.summary.scalar("val_loss", val_loss)
        val_text = "n/a" if val_loss is None else f"{val_loss:.4f}"
        if val_loss is not None:
            figures = loss_figures(val_loss, self.config.data.level)
            val_text += " (" + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()) + ")"
        self.log(
            f"epoch {epoch + 1}: loss {loss:.4f}, val_loss {val_text}"
            f"{' (best)' if improved and val_loss is not None else ''}, "
            f"{row['tokens_per_sec']} tokens/s"
        )
        if self.config.train.sample_length:
            sample = self.config.sample
            text = self.generator.generate(
                [""],
                max_new_tokens=self.config.train.sample_length,
                temperature=sample.temperature,
                top_k=sample.top_k,
                top_p=sample.top_p,
                seed=epoch,
            )[0]
            self.log("--- sample ---\n" + text.strip("\n") + "\n--------------")


def _append_csv(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())
