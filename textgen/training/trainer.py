"""The training loop of one run: a custom step under a tf.distribute strategy.

Keras 3's `fit` does not run under MultiWorkerMirroredStrategy, so the step is a
`tf.function` called through `strategy.run`; on one machine the strategy is the default
one. Users still get Keras' optimizers, losses and progress bar, plus a CSV log,
TensorBoard summaries and `tf.train.CheckpointManager` checkpoints that hold the
weights, the optimizer state and the step (the data order is a function of the step).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import tensorflow as tf

from textgen.core.config import RunConfig
from textgen.data import windows
from textgen.data.items import token_roles
from textgen.generate.generator import Generator
from textgen.model.network import forward_from_state
from textgen.model.sizes import state_sizes
from textgen.model.window_loss import WindowLoss
from textgen.runs.folder import RunFolder
from textgen.training.epochs import EpochLoop
from textgen.training.label_contrast import LabelContrast
from textgen.training.optimizer import build_optimizer
from textgen.training.plan import validation_tokens
from textgen.training.precision import build_models, copy_weights, resolve

if TYPE_CHECKING:
    from textgen.data.prepared import PreparedData


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
        initialize: Callable[[keras.Model], None] | None = None,
        started: float | None = None,
    ):
        self.config, self.folder, self.data = config, folder, data
        self.started = time.perf_counter() if started is None else started  # for a budget
        self.log, self.verbose = log, verbose
        self.restore_dir = restore_dir  # another worker's checkpoints to resume from
        self.initialize = initialize  # a fine-tune's first weights (textgen.training.finetune)
        train_cfg = config.train
        keras.utils.set_random_seed(train_cfg.seed)
        self.strategy = strategy or tf.distribute.get_strategy()
        seq_len, batch = config.data.seq_len, train_cfg.batch_size
        # Stateful: windows in order, state carried; one pass = every stream's windows once.
        self.windows_per_pass = (
            windows.stream_windows_per_pass(len(data.train_ids), seq_len, batch)
            if train_cfg.stateful
            else data.num_windows // batch
        )
        self.steps_per_epoch = train_cfg.steps_per_epoch or self.windows_per_pass
        self.precision = resolve(train_cfg.precision, config.model.units)
        with self.strategy.scope():
            self.roles = token_roles(data.vocab.tokens)
            self.model, self.scoring_model = build_models(  # training.precision
                data.vocab.size, config.model, self.roles, self.precision
            )
            self.optimizer, self.schedule = build_optimizer(
                config, self.steps_per_epoch * train_cfg.epochs, self.model.trainable_variables
            )
        # Progress, as variables so a checkpoint carries it: outside the strategy's scope,
        # each worker keeps its own (equal) copy and reads it without a collective.
        self.loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.loss_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.best_val_loss = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
        self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
        self.rnn_state = self._carried_state() if train_cfg.stateful else ()
        self.contrast = LabelContrast.of_run(config, self.roles)  # None: off
        self.iterator = self._batches(start_step=0)
        self.has_validation = len(data.val_ids) >= 2
        self.checkpoint, self.latest, self.best = self._checkpoints()
        self.generator = Generator(self.scoring_model, data.vocab)
        # XLA fuses the fused cells' gate maths and the optimizer update (docs/performance.md).
        # Only on the default strategy: no collectives inside.
        self.distributed = strategy is not None
        xla = train_cfg.xla and not self.distributed
        step_xla = xla and self.precision == "float32"  # XLA's bfloat16 matmuls are slow
        self._compiled_replica_step = tf.function(self._replica_step, jit_compile=step_xla)
        # a stateful run is scored with its state carried
        carried = state_sizes(config.model) if train_cfg.stateful else None
        self.window_loss = WindowLoss(self.scoring_model, seq_len, batch, xla, carried)

    # -- building blocks ------------------------------------------------------------------

    def _carried_state(self) -> tuple:
        """The RNN state a stateful run carries from window to window, as variables."""
        batch = self.config.train.batch_size
        with self.strategy.scope():
            return tuple(
                tuple(tf.Variable(tf.zeros([batch, size]), trainable=False) for size in sizes)
                for sizes in state_sizes(self.config.model)
            )

    def _checkpoints(self):
        """The full checkpoint, its manager (latest N) and the best-weights manager."""
        checkpoint = tf.train.Checkpoint(
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
        latest = tf.train.CheckpointManager(
            checkpoint, str(self.folder.latest_dir), max_to_keep=self.config.train.keep_checkpoints
        )
        best = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=self.model), str(self.folder.best_dir), max_to_keep=1
        )
        return checkpoint, latest, best

    def _batches(self, start_step: int):
        """The training batches from `start_step` on, distributed over the replicas.

        The data order is a function of the step alone (see `textgen.data.windows`), so a
        resumed run rebuilds its iterator at the restored step instead of checkpointing
        it (a multi-worker iterator cannot be checkpointed).
        """
        cfg, seq_len, ids = self.config.train, self.config.data.seq_len, self.data.train_ids
        if cfg.stateful:
            dataset = windows.stateful_dataset(ids, seq_len, cfg.batch_size, start_step=start_step)
        else:  # (a label memory: each window with the label in mind before it)
            memory = self.config.model.label_memory
            labels = windows.LabelsBefore(ids, self.roles) if memory else None
            batch = cfg.batch_size
            dataset = windows.training_dataset(ids, seq_len, batch, cfg.seed, start_step, labels)
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
                tuple(tf.cast(tf.where(fresh, 0.0, v), self.model.compute_dtype) for v in layer)
                for layer in self.rnn_state
            )
        with tf.GradientTape() as tape:
            if self.rnn_state:
                logits, end = forward_from_state(self.model, inputs, start, training=True)
                for variables, values in zip(self.rnn_state, end):
                    for variable, value in zip(variables, values):
                        variable.assign(tf.cast(tf.stop_gradient(value), variable.dtype))
            else:
                logits = self.model(inputs, training=True)  # (batch, time, vocab)
            per_token = self.loss_fn(targets, logits)  # (batch, time)
            batch = self.config.train.batch_size
            loss = tf.nn.compute_average_loss(
                tf.reduce_mean(per_token, axis=1), global_batch_size=batch
            )
            objective = loss
            if self.contrast:  # the window read again with its labels swapped
                swapped = self.model(self.contrast.swapped(inputs), training=True)
                term = self.contrast.per_window(inputs, per_token, self.loss_fn(targets, swapped))
                objective += tf.nn.compute_average_loss(term, global_batch_size=batch)
        grads = tape.gradient(objective, self.model.trainable_variables)
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
        cap = validation_tokens(self.config.train, len(self.data.val_ids))
        copy_weights(self.model, self.scoring_model)
        return self.window_loss(self.data.val_ids[: cap + 1])[0]

    # -- the loop ----------------------------------------------------------------------

    def fit(self) -> None:
        """Train until the configured epochs are done or validation stops improving."""
        EpochLoop(self).fit()
