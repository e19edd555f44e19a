"""TensorFlow imported without its start-up chatter on stderr (CUDA probes, absl notes),
for the command line: a notebook sees TensorFlow's own messages."""

from __future__ import annotations

import os
import sys


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter on stderr (CUDA probes, absl notes)."""
    if "tensorflow" in sys.modules:
        return
    # 3: not even C++ "errors" that are notes (oneDNN's fallbacks print as errors mid-text);
    # a real failure still reaches the user as a Python exception.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs an error on CPU machines
    finally:
        os.dup2(saved, 2)
        os.close(saved)
