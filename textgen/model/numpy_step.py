"""The network's one-token step in NumPy: sampling without TensorFlow.

The trainer writes a run's best weights as a NumPy archive (`write_weights`) each time it
saves its best checkpoint, naming that checkpoint. `NumpyStep` runs the maths of
`OneStep.step` on them for one row (tests hold the logits equal), so `textgen sample`
answers without importing TensorFlow: a run's weights are a few megabytes, and an RNN's
step at batch 1 is a few matrix-vector products.
"""

from __future__ import annotations

import json
import os

import numpy as np

from textgen.core.errors import RunError
from textgen.core.fileio import atomic_open

FORMAT = "textgen-numpy-1"
# Keras' cell classes, as the step runs them.
CELL_KINDS = {"LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "rnn"}


def write_weights(model, path: str | os.PathLike, checkpoint: str) -> None:
    """Save the Keras `model`'s weights for `NumpyStep` at `path` (atomically), recording
    that they are those of `checkpoint` (its file name prefix, e.g. ckpt-200)."""
    from textgen.model.label_memory import memory_of
    from textgen.model.network import SKIP_LAYER

    cells = [layer.cell for layer in model.layers if hasattr(layer, "cell")]
    arrays = {"embedding": model.get_layer("embedding").embeddings.numpy()}
    for index, cell in enumerate(cells):
        for name, weight in zip(("kernel", "recurrent", "bias"), cell.weights[:3]):
            arrays[f"layer{index}_{name}"] = weight.numpy()
    head = model.get_layer("logits")
    arrays["head_kernel"], arrays["head_bias"] = head.kernel.numpy(), head.bias.numpy()
    memory = memory_of(model)
    if memory is not None:
        arrays["label_roles"] = np.asarray(memory.roles, np.int32)
        arrays["label_rows"] = memory.rows().numpy()
    meta = {
        "format": FORMAT,
        "checkpoint": checkpoint,
        "kinds": [CELL_KINDS[type(cell).__name__] for cell in cells],
        "skip": SKIP_LAYER in {layer.name for layer in model.layers},
    }
    with atomic_open(path, "wb") as f:
        np.savez(f, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8), **arrays)


def _split(x: np.ndarray, parts: int) -> list[np.ndarray]:
    """`np.split(x, parts)` as views by slicing (np.split costs more than a small step)."""
    n = len(x) // parts
    return [x[i * n : (i + 1) * n] for i in range(parts)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class NumpyStep:
    """One token at a time through the network, weights from `write_weights`'s archive.

    `step(token, state) -> (logits (vocab,), state)`; the state is a tuple with one tuple
    per layer, `(h, c)` for an LSTM and `(h,)` otherwise, then `(label,)` with a label
    memory (1-D float32 arrays).
    """

    def __init__(self, path: str | os.PathLike):
        try:
            with np.load(path) as archive:
                arrays = {name: archive[name] for name in archive.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
        except Exception as err:  # noqa: BLE001 (a damaged zip raises BadZipFile, EOFError, ...)
            raise RunError(f"cannot read {path}: {err}") from None
        if meta.get("format") != FORMAT:
            raise RunError(f"{path} is not a textgen weights archive ({FORMAT})")
        self.checkpoint, self.kinds, self.skip = meta["checkpoint"], meta["kinds"], meta["skip"]
        self.embedding = arrays["embedding"]
        self.layers = [
            tuple(arrays[f"layer{i}_{name}"] for name in ("kernel", "recurrent", "bias"))
            for i in range(len(self.kinds))
        ]
        self.head = arrays["head_kernel"], arrays["head_bias"]
        self.memory = None
        if "label_roles" in arrays:  # each id's role, each role's vector
            self.memory = arrays["label_roles"], arrays["label_rows"]

    def zero_state(self) -> tuple:
        state = []
        for kind, (_, recurrent, _) in zip(self.kinds, self.layers):
            zeros = np.zeros(recurrent.shape[0], np.float32)
            state.append((zeros, zeros) if kind == "lstm" else (zeros,))
        if self.memory is not None:
            state.append((np.zeros(self.memory[1].shape[1], np.float32),))
        return tuple(state)

    def step(self, token: int, state: tuple) -> tuple[np.ndarray, tuple]:
        x = self.embedding[token]  # (embedding_dim,)
        label = ()
        if self.memory is not None:  # the label in mind, added to the input
            roles, rows = self.memory  # as `label_memory.step_memory`
            role = int(roles[token])
            label = (state[-1][0] if role == 0 else rows[max(role, 0)],)
            x = x + label[0]
        new_state, outputs = [], []
        for kind, (kernel, recurrent, bias), layer_state in zip(self.kinds, self.layers, state):
            h = layer_state[0]
            if kind == "lstm":
                i, f, g, o = _split(x @ kernel + h @ recurrent + bias, 4)
                c = _sigmoid(f) * layer_state[1] + _sigmoid(i) * np.tanh(g)
                x = _sigmoid(o) * np.tanh(c)
                new_state.append((x, c))
            elif kind == "gru":  # reset_after: r scales the recurrent projection with its bias
                xz, xr, xh = _split(x @ kernel + bias[0], 3)
                hz, hr, hh = _split(h @ recurrent + bias[1], 3)
                z = _sigmoid(xz + hz)
                candidate = np.tanh(xh + _sigmoid(xr + hr) * hh)
                x = candidate + z * (h - candidate)
                new_state.append((x,))
            else:
                x = np.tanh(x @ kernel + h @ recurrent + bias)
                new_state.append((x,))
            outputs.append(x)
        if self.skip:
            x = np.concatenate(outputs)
        kernel, bias = self.head
        return x @ kernel + bias, tuple(new_state) + ((label,) if label else ())
