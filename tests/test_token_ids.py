import numpy as np

from textgen.core.config import DataConfig
from textgen.data.corpus import load_corpus
from textgen.data.id_cache import corpus_ids, ids_dtype
from textgen.data.tokenizers import Tokenizer, build_vocabulary

from conftest import make_corpus


def _corpus(tmp_path):
    (tmp_path / "play.txt").write_text(make_corpus(60), encoding="utf-8")
    return load_corpus(DataConfig(sources=[str(tmp_path / "play.txt")], val_fraction=0.1))


def test_ids_are_encoded_once_to_a_memory_mapped_cache(tmp_path):
    corpus = _corpus(tmp_path)
    sha = corpus.fingerprint()["sha256"]
    vocab = build_vocabulary(corpus.train, "char")
    ids = corpus_ids(corpus, sha, vocab, tmp_path / "data")
    assert isinstance(ids.train, np.memmap) and ids.train.dtype == np.uint8
    tokenizer = Tokenizer(vocab)
    np.testing.assert_array_equal(ids.train, tokenizer.encode_text(corpus.train))
    np.testing.assert_array_equal(ids.validation, tokenizer.encode_text(corpus.validation))
    (cached,) = (tmp_path / "data" / "ids").glob("*/train.uint8")
    written = cached.stat().st_mtime_ns
    again = corpus_ids(corpus, sha, vocab, tmp_path / "data")
    assert cached.stat().st_mtime_ns == written  # reused, not re-encoded
    np.testing.assert_array_equal(again.train, ids.train)
    other = build_vocabulary(corpus.train[:500], "char")  # another vocabulary: other ids
    assert len(list((tmp_path / "data" / "ids").iterdir())) == 1
    corpus_ids(corpus, sha, other, tmp_path / "data")
    assert len(list((tmp_path / "data" / "ids").iterdir())) == 2


def test_an_unwritable_data_dir_encodes_into_memory(tmp_path):
    corpus = _corpus(tmp_path)
    blocker = tmp_path / "data"
    blocker.write_text("a file where the cache folder would go")
    vocab = build_vocabulary(corpus.train, "char")
    ids = corpus_ids(corpus, corpus.fingerprint()["sha256"], vocab, blocker)
    assert not isinstance(ids.train, np.memmap) and len(ids.train) == len(corpus.train)


def test_ids_use_the_smallest_type_that_holds_the_vocabulary():
    assert [ids_dtype(n) for n in (65, 256, 257, 10000, 70000)] == [
        np.uint8,
        np.uint8,
        np.uint16,
        np.uint16,
        np.int32,
    ]
