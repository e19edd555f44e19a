"""Shared fixtures: small generated corpora and tiny trained runs (seconds each on 2 cores)."""

from __future__ import annotations

import fcntl
import os
import pickle
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One core per test process when the suite runs on both (-n 2): the tiny models gain
    # nothing from a second thread, and two processes sharing two cores thrash.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

# CI runs the property tests derandomized (the same examples every run: a red CI is
# reproducible); locally hypothesis draws new examples each run and keeps what fails.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session", autouse=True)
def _graph_optimizer_off():
    """TensorFlow's graph optimizer (Grappler) off in the test processes: it spends 1-2 s
    on each new graph's first call (a traced generator, a training step), most of what
    the tiny models here cost. It changes speed, not results (long generations run
    faster with it, so textgen keeps it on). Tests that run textgen or TensorFlow in a
    subprocess (`textgen train` killed and resumed, the workers, saved_model_cli, the
    notebook) run with it on, as users do, and several compare that text with the text
    drawn here. TEXTGEN_TEST_GRAPPLER=1 keeps it on here too."""
    if os.environ.get("TEXTGEN_TEST_GRAPPLER") != "1":
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def pytest_collection_modifyitems(items):
    """Slow tests first: on two cores (-n 2) the long ones then start early, rather than
    one of them running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


SHARED_TINY_SHAKESPEARE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
)

SPEAKERS = ["ROMEO", "JULIET", "NURSE", "First Citizen"]
WORDS = (
    "love night light fair sweet death name rose moon sun heart sword day thee thou "
    "my the and of to a is in that what will shall not be"
).split()


def make_corpus(lines: int = 400, seed: int = 0) -> str:
    """A small play-like text with a learnable structure: speaker lines, then speech."""
    rng = random.Random(seed)
    parts = []
    for _ in range(lines):
        speaker = rng.choice(SPEAKERS)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
        mark = rng.choice([".", ",", "!", "?", ";"])
        parts.append(f"{speaker}:\n{words.capitalize()}{mark}\n\n")
    return "".join(parts)


def run_cli(*args, expect: int = 0):
    """Run `textgen ARGS` in process, as a user would, and check its exit code."""
    from click.testing import CliRunner

    from textgen.cli.main import cli

    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == expect, (result.output, result.stderr)
    return result


def choose(logits, temperature, top_k, top_p, seeds, step=0):
    """One step of the generator's token choice (`sampling_scores`' argmax), prepared as its
    loop does."""
    import tensorflow as tf

    from textgen.generate.rules.seeded_draw import SeededDraw
    from textgen.generate.rules.temperature import Temperature
    from textgen.generate.rules.token_choice import sampling_scores
    from textgen.generate.rules.truncation import Truncation

    logits = tf.constant(logits, tf.float32)
    batch = logits.shape[0]
    temperature = tf.fill([batch], float(temperature))
    top_k, top_p = tf.fill([batch], top_k), tf.fill([batch], float(top_p))
    noise = SeededDraw.graph(SeededDraw.noise(seeds, step, logits.shape[-1]), temperature)
    filtering = bool(Truncation.graph_in_use(top_k, top_p))
    scores = sampling_scores(logits, Temperature.graph(temperature), top_k, top_p, noise, filtering)
    return tf.argmax(scores, axis=-1, output_type=tf.int32).numpy()


@pytest.fixture
def tiny_shakespeare_manual_dir(tmp_path) -> Path:
    """A TFDS manual dir holding tiny_shakespeare's one file, input.txt (skips without it)."""
    if not SHARED_TINY_SHAKESPEARE.is_file():
        pytest.skip("needs ../shared/data/tinyshakespeare.txt (the TFDS tiny_shakespeare file)")
    manual = tmp_path / "manual"
    manual.mkdir()
    shutil.copy(SHARED_TINY_SHAKESPEARE, manual / "input.txt")
    return manual


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "play.txt"
    path.write_text(make_corpus(), encoding="utf-8")
    return path


def tiny_config(corpus: Path, level: str = "char", cell: str = "lstm", **train):
    from textgen.core.config import RunConfig

    # XLA off: compiling costs more than it saves on models this small (the tests about
    # XLA switch it on themselves).
    settings = {
        "epochs": 2, "steps_per_epoch": 15, "batch_size": 8, "sample_length": 0, "xla": False
    }  # fmt: skip
    settings.update(train)
    return RunConfig().with_overrides(
        data={"sources": [str(corpus)], "level": level, "seq_len": 24},
        model={"cell": cell, "layers": 2, "units": 24, "embedding_dim": 8, "dropout": 0.0},
        train=settings,
    )


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, corpus_file):
    """Train each (level, cell) run once per session, on demand: trained_runs(level, cell)
    is its folder, trained_runs.loaded(level, cell) the run loaded (shared: do not change it)."""
    import textgen

    root = tmp_path_factory.mktemp("runs")
    cache: dict[tuple[str, str], Path] = {}

    def get(level: str = "char", cell: str = "lstm") -> Path:
        if (level, cell) not in cache:
            cache[level, cell] = textgen.train(
                tiny_config(corpus_file, level, cell),
                run_dir=root / f"{level}-{cell}",
                log=lambda _: None,
                verbose=0,
            )
        return cache[level, cell]

    loaded: dict[tuple[str, str], object] = {}

    def load(level: str = "char", cell: str = "lstm"):
        """The run loaded without XLA, once per session: tests that draw with the same
        settings reuse its traced generators."""
        if (level, cell) not in loaded:
            loaded[level, cell] = textgen.load_run(get(level, cell), xla=False)
        return loaded[level, cell]

    get.loaded = load
    return get


def built_once(tmp_path_factory, name: str, build):
    """`build(folder)`'s result, built once for the whole test session: under pytest-xdist
    the first test process to ask builds it (under a lock) in a folder the processes share,
    the others read what it built (the runs it comes from are trained alike in each)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return build(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent / "built-once"
    root.mkdir(exist_ok=True)
    folder, done = root / name, root / f"{name}.pickle"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            done.write_bytes(pickle.dumps(build(folder)))
    return pickle.loads(done.read_bytes())


@pytest.fixture(scope="session")
def char_export(trained_runs, tmp_path_factory):
    """The default export of the char LSTM run (at most 64 tokens a request), shared by
    the tests that read it (built once, for both test processes)."""
    from textgen.export.saved_model import export_run

    return built_once(
        tmp_path_factory, "char-export",
        lambda folder: export_run(trained_runs("char", "lstm"), export_dir=folder,
                                  max_new_tokens_cap=64),
    )  # fmt: skip


@pytest.fixture(scope="session")
def served(char_export):
    """`char_export` served by the TF Serving stand-in (tests/serving_standin.py)."""
    from serving_standin import ServingStandIn

    with ServingStandIn(str(char_export.path)) as standin:
        yield standin


@pytest.fixture(scope="session")
def stop_served(trained_runs, tmp_path_factory):
    """The char LSTM run exported with the stop string "\\n\\n" (up to 256 tokens a request,
    one token per loop iteration: quicker to trace), served by the TF Serving stand-in."""
    from textgen.export.saved_model import export_run

    from serving_standin import ServingStandIn

    result = built_once(
        tmp_path_factory, "stop-export",
        lambda folder: export_run(trained_runs("char", "lstm"), export_dir=folder,
                                  max_new_tokens_cap=256, stop=["\n\n"], unroll=1),
    )  # fmt: skip
    with ServingStandIn(str(result.path)) as standin:
        yield standin
