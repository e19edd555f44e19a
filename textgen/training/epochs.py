"""The epochs of a run: restore, the step loop with its progress bar, and each epoch's end
(validate, save the latest and best checkpoints, log, sample), stopping early, at a time
limit, on SIGTERM or Ctrl-C (saved), or on a loss that is not finite (not saved)."""

from __future__ import annotations

import math
import signal
import time

import tensorflow as tf

from textgen.core.errors import RunError
from textgen.runs.run import damaged_checkpoint_message
from textgen.training.averaging import save_average
from textgen.training.checkpoints import save_best, save_checkpoint
from textgen.training.epoch_log import record_epoch, report_epoch
from textgen.training.interrupts import (
    SigtermFlag,
    Terminated,
    TrainingDiverged,
    TrainingInterrupted,
)
from textgen.training.plan import GUARD, Plan, Replanner, epoch_of, epoch_start, plan_run
from textgen.training.precision import copy_weights
from textgen.training.progress import BAR, epoch_progress

SAMPLE_LINE = 120  # characters of an epoch's sample in a plain log


class EpochLoop:
    """`fit()`: a `Trainer`'s epochs (the trainer holds the model, the step and the state)."""

    def __init__(self, trainer):
        self.t = trainer
        self.replanner = None

    def fit(self) -> None:
        """Train until the configured epochs are done or validation stops improving."""
        cfg = self.t.config.train
        self._restore()
        planned_now = bool(cfg.minutes and not self.t.config.plan)
        if planned_now:  # a budget: timed, planned, recorded
            plan_run(self.t)
        self.replanner = Replanner(self.t, planned_now) if self.t.config.plan else None
        writer = tf.summary.create_file_writer(str(self.t.folder.tensorboard_dir))
        start_epoch = epoch_of(self._plan(), self.t.steps_per_epoch, int(self.t.step))
        if start_epoch >= cfg.epochs:
            self.t.log(f"All {cfg.epochs} epochs are done; pass --epochs N to train further.")
            return
        if cfg.patience and int(self.t.bad_epochs) >= cfg.patience:
            self.t.log("This run already stopped early (no validation improvement).")
            return
        try:
            with SigtermFlag() as self._sigterm:
                self._epochs(start_epoch, writer)
        except KeyboardInterrupt as stop:
            save_checkpoint(self.t.latest, int(self.t.step))
            signum = signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT
            raise TrainingInterrupted(self.t.folder, signum) from None
        finally:
            writer.close()

    def _restore(self) -> None:
        """Continue from the latest checkpoint (this run's, or the chief's), if there is one."""
        try:
            if self.t.restore_dir and (path := tf.train.latest_checkpoint(str(self.t.restore_dir))):
                self.t.checkpoint.restore(path)
                restored = path
            else:
                restored = self.t.latest.restore_or_initialize()
        except Exception as err:  # a damaged checkpoint: say which, never a traceback
            hint = "restore the files from a backup, or start a new run"
            path = self.t.latest.latest_checkpoint
            raise RunError(damaged_checkpoint_message(path, err, hint)) from None
        if restored:
            self.t.log(f"Resuming {self.t.folder.path} at step {int(self.t.step)} ({restored})")
            self.t.iterator = self.t._batches(start_step=int(self.t.step))
            # a constant rate may have changed on resume (a checkpoint holds the old one)
            if self.t.config.train.lr_schedule == "constant" and not self.t.config.plan:
                self.t.optimizer.learning_rate = self.t.config.train.learning_rate
            return
        self.t.model.summary(print_fn=self.t.log)
        self.t.log(f"Run folder: {self.t.folder.path}")
        if self.t.precision == "bfloat16":
            self.t.log("Arithmetic: bfloat16, weights float32 (--precision float32: all float32)")
        if self.t.initialize is not None:
            # Saved at once as step 0, so a fine-tune stopped before its first epoch ends
            # resumes from its parent's weights, not from a random start.
            self.t.initialize(self.t.model)
            save_checkpoint(self.t.latest, 0)

    def _plan(self) -> Plan | None:
        return Plan.from_dict(self.t.config.plan) if self.t.config.plan else None

    def _epochs(self, start_epoch: int, writer) -> None:
        cfg = self.t.config.train
        tokens_per_step = cfg.batch_size * self.t.config.data.seq_len
        deadline = time.perf_counter() + 60 * cfg.max_minutes if cfg.max_minutes else math.inf
        if cfg.minutes and self.replanner.keeps_time:  # the guard: a slow spell ends late,
            deadline = min(deadline, self.t.started + GUARD * 60 * cfg.minutes)  # this late
        for epoch in range(start_epoch, cfg.epochs):
            if self.t.verbose == BAR:  # the bar's heading (plain logs have the epoch's line)
                self.t.log(f"Epoch {epoch + 1}/{cfg.epochs}")
            first, end = (
                epoch_start(self._plan(), self.t.steps_per_epoch, e) for e in (epoch, epoch + 1)
            )
            done_in_epoch = int(self.t.step) - first
            if done_in_epoch == 0:
                self.t.loss_sum.assign(0.0)
                self.t.loss_steps.assign(0)
            bar = epoch_progress(end - first, self.t.verbose, self.t.log)
            if done_in_epoch:
                bar.update(done_in_epoch, [("loss", self.t.epoch_loss())])
            started = time.perf_counter()
            for i in range(done_in_epoch, end - first):
                loss = self.t._train_step(self.t.iterator)
                if self._sigterm.received:
                    raise Terminated()
                if not math.isfinite(float(loss)):
                    self._stop_on_bad_loss(float(loss), int(self.t.step))
                bar.update(i + 1, [("loss", self.t.epoch_loss())])
                if time.perf_counter() > deadline:
                    break
            seconds = time.perf_counter() - started
            steps_run = int(self.t.step) - first - done_in_epoch
            last = epoch == cfg.epochs - 1 or time.perf_counter() > deadline
            if self.replanner and not last:
                self.replanner.epoch_done(epoch, seconds, steps_run)
            self._end_epoch(epoch, seconds, steps_run * tokens_per_step, writer, last)
            if cfg.patience and int(self.t.bad_epochs) >= cfg.patience:
                self.t.log(
                    f"Stopping early: validation loss has not improved for "
                    f"{cfg.patience} epochs (best {float(self.t.best_val_loss):.4f})."
                )
                break
            if time.perf_counter() > deadline:
                self.t.log("Stopping: the time limit is reached.")
                break

    # -- the end of an epoch: validate, save, record, report, sample ---------------------

    def _end_epoch(self, epoch: int, seconds: float, tokens: int, writer, last: bool) -> None:
        val_loss = self.t.validation_loss()
        improved = self._save_epoch(val_loss, last)
        row = record_epoch(self.t, epoch, val_loss, seconds, tokens, writer)
        report_epoch(self.t, row, val_loss, improved)
        if self.t.config.train.sample_length:
            self._print_sample(seed=epoch)

    def _save_epoch(self, val_loss: float | None, last: bool = False) -> bool:
        """Save the latest checkpoint, and the best one if validation improved (returned);
        after the `last` epoch, the average of the last epochs' weights if it is better."""
        step = int(self.t.step)
        improved = val_loss is None or val_loss < float(self.t.best_val_loss)
        # Best first, then latest: a crash in between leaves latest at the previous epoch,
        # so resume retrains this epoch (the same batches) rather than skipping its best.
        if improved:
            self.t.best_val_loss.assign(val_loss if val_loss is not None else self.t.epoch_loss())
            self.t.bad_epochs.assign(0)
            save_best(self.t.best, self.t.model, self.t.folder.numpy_weights_file, step)
        else:
            self.t.bad_epochs.assign_add(1)
        if last and self.t.config.train.average_last > 1 and val_loss is not None:
            save_average(self.t, step)
        save_checkpoint(self.t.latest, step)
        return improved

    def _print_sample(self, seed: int) -> None:
        sample = self.t.config.sample
        copy_weights(self.t.model, self.t.scoring_model)
        text = self.t.generator.generate(
            [""],
            max_new_tokens=self.t.config.train.sample_length,
            temperature=sample.temperature,
            top_k=sample.top_k,
            top_p=sample.top_p,
            seed=seed,
        )[0]
        if self.t.verbose == BAR:
            self.t.log("--- sample ---\n" + text.strip("\n") + "\n--------------")
        else:  # a log file: one line (line breaks shown as |)
            line = text.strip("\n").replace("\n", " | ")
            self.t.log(f"  sample: {line[:SAMPLE_LINE]}{'...' if len(line) > SAMPLE_LINE else ''}")

    def _stop_on_bad_loss(self, loss: float, step: int) -> None:
        """A NaN or infinite loss: keep the last good checkpoint (do not save), explain."""
        cfg = self.t.config.train
        kept = self.t.latest.latest_checkpoint or "none yet"
        raise TrainingDiverged(
            f"the training loss became {loss} at step {step}; stopped without saving it "
            f"(last good checkpoint: {kept}). Lower --learning-rate (now "
            f"{cfg.learning_rate:g}) or clip gradients harder (--clipnorm, now "
            f"{cfg.clipnorm:g}), then resume with --resume"
        )
