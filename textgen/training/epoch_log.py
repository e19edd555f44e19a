"""The record of each epoch's end: a row of the CSV log, TensorBoard scalars, one line."""

from __future__ import annotations

import tensorflow as tf

from textgen.model.window_loss import loss_figures


def record_epoch(trainer, epoch, val_loss, seconds, tokens, writer) -> dict[str, str]:
    """Append the epoch's row to the CSV log and its scalars to TensorBoard."""
    loss = trainer.epoch_loss()
    lr = float(tf.convert_to_tensor(trainer.optimizer.learning_rate))
    step = int(trainer.step)
    row = {
        "epoch": epoch + 1,
        "step": step,
        "loss": f"{loss:.5f}",
        "val_loss": "" if val_loss is None else f"{val_loss:.5f}",
        "learning_rate": f"{lr:.6g}",
        "seconds": f"{seconds:.1f}",
        "tokens_per_sec": f"{tokens / max(seconds, 1e-9):.0f}",
    }
    trainer.folder.append_log(row)
    with writer.as_default(step=step):
        tf.summary.scalar("loss", loss)
        tf.summary.scalar("learning_rate", lr)
        if val_loss is not None:
            tf.summary.scalar("val_loss", val_loss)
    return row


def report_epoch(trainer, row: dict, val_loss: float | None, improved: bool) -> None:
    val_text = "n/a" if val_loss is None else f"{val_loss:.4f}"
    if val_loss is not None:
        bpc = loss_figures(val_loss, trainer.data.characters_per_token)["bpc"]
        val_text += f" (bpc {bpc:.3f})"
    trainer.log(
        f"epoch {row['epoch']}: loss {float(row['loss']):.4f}, val_loss {val_text}"
        f"{' (best)' if improved and val_loss is not None else ''}, "
        f"{row['tokens_per_sec']} tokens/s"
    )
