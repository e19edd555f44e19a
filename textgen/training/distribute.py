"""Which tf.distribute strategy a run trains under, and which process writes the run.

`textgen train --strategy auto|one-device|mirrored|multi-worker`:

- `one-device`: the default strategy (one CPU or the first GPU);
- `mirrored`: `MirroredStrategy` over all local GPUs;
- `multi-worker`: `MultiWorkerMirroredStrategy`, the cluster read from `TF_CONFIG` (the
  standard way: every worker runs the same command with its own TF_CONFIG);
- `auto`: mirrored when there are several GPUs, else one device.

The training loop is the same for all (`textgen.training.trainer.Trainer`): a custom step under
`strategy.run`, since Keras 3's `fit` fails under MultiWorkerMirroredStrategy
(keras-team/keras issue 20585). Only the chief writes the run folder; the other workers
write their checkpoints to a temporary folder (collectives need every worker to save)
that is removed when they finish, and restore from the chief's checkpoints.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from textgen.core.errors import ConfigError

STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker")


@dataclass
class Cluster:
    """The strategy to train under (None: the default one) and this process's role."""

    strategy: object | None = None
    is_chief: bool = True
    task: str = "chief"  # e.g. "worker 1", for log lines
    workers: int = 1


def make_cluster(name: str) -> Cluster:
    """The strategy called `name`; create it before any other TensorFlow op runs."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    if name == "multi-worker":
        config = _tf_config()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        task_type, task_id = config["task"]["type"], int(config["task"].get("index", 0))
        has_chief = "chief" in config["cluster"]
        chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
        workers = sum(len(v) for k, v in config["cluster"].items() if k in ("chief", "worker"))
        return Cluster(strategy, chief, f"{task_type} {task_id}", workers)
    gpus = tf.config.list_physical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return Cluster(tf.distribute.MirroredStrategy())
    return Cluster()


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    try:
        config = json.loads(raw)
        workers = config["cluster"].get("worker", []) + config["cluster"].get("chief", [])
        config["task"]["type"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(
            "--strategy multi-worker needs TF_CONFIG, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}; '
            f"got {raw[:200]!r}"
        ) from None
    if not workers:
        raise ConfigError("TF_CONFIG lists no workers")
    return config
