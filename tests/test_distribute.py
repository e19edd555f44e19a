"""Multi-worker training: two worker processes on localhost under MultiWorkerMirroredStrategy."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

import textgen
from textgen.runs.folder import RunFolder

from conftest import tiny_config

pytestmark = pytest.mark.slow
TIMEOUT = 300  # seconds for a whole two-worker run; the processes are killed after it


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _workers(corpus, run_dir, *extra, epochs=2):
    ports = _free_ports(2)
    command = [
        sys.executable, "-m", "textgen.cli", "train", "--strategy", "multi-worker",
        "--corpus", str(corpus), "--run-dir", str(run_dir), "--seq-len", "24", "--cell", "lstm",
        "--units", "24", "--embedding-dim", "8", "--batch-size", "8", "--dropout", "0",
        "--epochs", str(epochs), "--steps-per-epoch", "5", *extra,
    ]  # fmt: skip
    processes = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), PYTHONUNBUFFERED="1")
        env["TEXTGEN_DEBUG"] = "1"  # a failure shows its traceback in the assertion message
        env["TMPDIR"] = str(run_dir.parent)  # where the other workers' private folders go
        processes.append(
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
        )
    return processes


def _finish(processes) -> list[tuple[int, str, str]]:
    results = []
    deadline = time.monotonic() + TIMEOUT
    try:
        for process in processes:
            out, err = process.communicate(timeout=max(deadline - time.monotonic(), 1))
            results.append((process.returncode, out, err))
    finally:
        for process in processes:
            process.kill()
    return results


def _losses(run_dir):
    return [(r["epoch"], r["loss"]) for r in RunFolder(run_dir).read_log()]


def test_two_workers_train_the_same_weights_as_one_process(tmp_path, corpus_file):
    run_dir = tmp_path / "run"
    (chief, worker) = _finish(_workers(corpus_file, run_dir))
    assert chief[0] == 0, chief[2][-3000:]
    assert worker[0] == 0, worker[2][-3000:]
    digests = [re.search(r"weights sha256 (\w+)", r[1]).group(1) for r in (chief, worker)]
    assert digests[0] == digests[1]  # synchronous training: identical weights
    assert "Worker done" in worker[1] and "Samples from" in chief[1]
    for name in ("config.json", "vocab.json", "logs/training.csv"):
        assert (run_dir / name).is_file()
    assert textgen.load_run(run_dir, xla=False).generate(["a"], max_new_tokens=5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("textgen-worker-")]
    # one process with the same global batch: the same losses
    config = tiny_config(corpus_file, epochs=2, steps_per_epoch=5)
    single = textgen.train(
        config.with_overrides(model={"layers": 2, "dropout": 0.0}),
        run_dir=tmp_path / "single",
        log=lambda _: None,
        verbose=0,
    )
    for (_, got), (_, want) in zip(_losses(run_dir), _losses(single), strict=True):
        assert got == pytest.approx(want, rel=1e-4)


def test_a_killed_worker_stops_the_run_safely_and_resume_continues_it(tmp_path, corpus_file):
    run_dir = tmp_path / "run"
    chief, worker = _workers(corpus_file, run_dir, epochs=500)
    try:
        deadline = time.monotonic() + TIMEOUT
        for line in chief.stdout:  # wait until two epochs are checkpointed
            if line.startswith("epoch 2:") or time.monotonic() > deadline:
                break
        worker.send_signal(signal.SIGKILL)
        _, err = chief.communicate(timeout=TIMEOUT)
    finally:
        chief.kill()
        worker.kill()
    assert chief.returncode == 1
    assert "lost contact with another worker" in err and "--resume" in err
    done = _finish(_workers(corpus_file, run_dir, "--resume", epochs=4))
    assert [code for code, _, _ in done] == [0, 0], done[0][2][-4000:] + done[1][2][-4000:]
    epochs = [epoch for epoch, _ in _losses(run_dir)]
    assert epochs[:2] == [1, 2] and epochs[-1] == 4


def test_two_workers_fine_tune_as_one_process_does(tmp_path, corpus_file, trained_runs):
    parent = trained_runs("char", "lstm")
    run_dir = tmp_path / "run"
    (chief, worker) = _finish(_workers(corpus_file, run_dir, "--init-from", parent))
    assert chief[0] == 0, chief[2][-3000:]
    assert worker[0] == 0, worker[2][-3000:]
    digests = [re.search(r"weights sha256 (\w+)", r[1]).group(1) for r in (chief, worker)]
    assert digests[0] == digests[1]
    assert RunFolder(run_dir).load_config().parent["path"] == str(parent.resolve())
    single = textgen.train(
        run_dir=tmp_path / "single",
        init_from=parent,
        settings={
            "data": {"sources": [str(corpus_file)]},
            "model": {"dropout": 0.0},
            "train": {"epochs": 2, "steps_per_epoch": 5, "batch_size": 8, "xla": False},
        },
        log=lambda _: None,
        verbose=0,
    )
    for (_, got), (_, want) in zip(_losses(run_dir), _losses(single), strict=True):
        assert got == pytest.approx(want, rel=1e-4)
