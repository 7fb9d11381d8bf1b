"""tt.data.text: the tokenizer, the word vocabulary, the block split, the built-in corpora
(Python's own documentation) and the loader for any plain-text file."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace.data import text
from tinytrace.data.text import WordVocabulary, split_blocks, tokenize


def test_tokenize_keeps_words_numbers_and_sentence_punctuation():
    assert tokenize("Don't panic: it's 42, really! (Or is it?)") == \
        ["don't", "panic", ":", "it's", "42", ",", "really", "!", "or", "is", "it", "?"]
    assert tokenize("a_b == c-d; É.", lowercase=False) == ["a", "b", "c", "d", ";", "É", "."]
    assert tokenize("") == []
    with pytest.raises(TypeError, match="tokenize: expected a str"):
        tokenize(["a", "b"])


def test_vocabulary_orders_by_count_then_alphabet_with_unk_first():
    tokens = "b a c a b a d".split()
    vocab = WordVocabulary.from_tokens(tokens)
    assert vocab.itos == ["<unk>", "a", "b", "c", "d"]
    assert vocab.counts.tolist() == [0, 3, 2, 1, 1]
    small = WordVocabulary.from_tokens(tokens, max_size=3)
    assert small.itos == ["<unk>", "a", "b"] and small.counts.tolist() == [2, 3, 2]
    frequent = WordVocabulary.from_tokens(tokens, min_count=2)
    assert frequent.itos == ["<unk>", "a", "b"]
    assert "a" in vocab and "z" not in vocab and len(vocab) == 5


@given(st.lists(st.sampled_from("the cat sat on a mat .".split()), min_size=1, max_size=50),
       st.integers(1, 8))
def test_encode_decode_round_trip_with_unknowns(tokens, max_size):
    vocab = WordVocabulary.from_tokens(tokens, max_size=max_size)
    ids = vocab.encode(tokens)
    assert ids.dtype == np.int64 and len(ids) == len(tokens)
    assert vocab.decode(ids).split() == [t if t in vocab else "<unk>" for t in tokens]
    assert int((ids == vocab.unk).sum()) == vocab.counts[0]
    assert vocab.counts.sum() == len(tokens)


def test_vocabulary_refusals():
    with pytest.raises(ValueError, match="max_size must be >= 1"):
        WordVocabulary.from_tokens(["a"], max_size=0)
    with pytest.raises(ValueError, match="min_count"):
        WordVocabulary.from_tokens(["a"], min_count=0)
    with pytest.raises(ValueError, match="distinct"):
        WordVocabulary(["a", "a"])
    with pytest.raises(ValueError, match="distinct"):
        WordVocabulary(["<unk>"])
    vocab = WordVocabulary(["a"])
    with pytest.raises(TypeError, match="tokenize it first"):
        vocab.encode("a a")
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        vocab.decode([0, 2])


@given(st.integers(0, 5000), st.sampled_from([0.1, 0.2, 0.25, 0.5]), st.integers(1, 300))
def test_split_blocks_holds_out_every_nth_block(n, fraction, block):
    mask = split_blocks(n, fraction, block)
    assert mask.shape == (n,) and mask.dtype == bool
    period = round(1 / fraction)
    blocks = np.arange(n) // block
    assert np.array_equal(mask, blocks % period == period - 1)
    if n >= 2 * period * block:
        assert abs(mask.mean() - 1 / period) <= block * period / n


@given(st.integers(1, 3000), st.sampled_from([0.3, 0.4, 0.6, 0.7, 0.75, 0.9]),
       st.integers(1, 50))
def test_split_blocks_holds_out_the_fraction_asked_for(n, fraction, block):
    """Not only 1/k: 0.7 holds out 70% of the blocks (round(1 / 0.7) = 1 would give 50%),
    spread over the text, the first block of every run kept for training."""
    mask = split_blocks(n, fraction, block)
    blocks = np.arange(n) // block
    held = np.array([mask[blocks == b][0] for b in range(blocks[-1] + 1)])
    assert abs(held.sum() - fraction * len(held)) < 1         # within one block
    assert all(mask[blocks == b].all() == held[b] for b in range(len(held)))  # whole blocks
    assert not held[0]


def test_split_blocks_refusals():
    with pytest.raises(ValueError, match="fraction"):
        split_blocks(10, 0.0)
    with pytest.raises(ValueError, match="block"):
        split_blocks(10, 0.1, block=0)


def test_python_docs_corpus_is_english_and_offline():
    corpus = tt.data.load_corpus("python-docs", max_vocab=2000)
    assert len(corpus.train) > 40_000 and len(corpus.validation) > 4_000
    assert len(corpus.vocab) == 2000 and corpus.vocab.itos[0] == "<unk>"
    top = corpus.vocab.itos[1:12]
    assert {"the", "a", "is", "of", "."} <= set(top)
    assert corpus.train.dtype == np.int64 and corpus.train.max() < 2000
    assert 0 < corpus.unk_rate < 0.15
    assert "python-docs" in repr(corpus)
    # the vocabulary is built from the training part only
    again = tt.data.load_corpus("python-docs", max_vocab=2000)
    assert np.array_equal(again.train, corpus.train)          # deterministic


def test_vocabulary_comes_from_training_tokens_only(tmp_path):
    # 'zebra' only ever appears in the validation blocks
    words = [("zebra" if (i // 10) % 2 == 1 else "cat") for i in range(40)]
    path = tmp_path / "book.txt"
    path.write_text(" ".join(words), encoding="utf-8")
    corpus = tt.data.load_text_file(path, validation=0.5, block=10)
    assert "zebra" not in corpus.vocab and corpus.unk_rate == 1.0
    assert corpus.vocab.decode(corpus.train[:3]) == "cat cat cat"


def test_load_text_file_and_its_errors(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("It was the best of times, it was the worst of times. " * 50,
                    encoding="utf-8")
    corpus = tt.data.load_text_file(path, block=20)
    assert set(corpus.vocab.itos[1:6]) == {"it", "of", "the", "times", "was"}
    assert len(corpus.train) + len(corpus.validation) == len(tokenize(path.read_text()))
    with pytest.raises(FileNotFoundError, match="load_text_file: no file"):
        tt.data.load_text_file(tmp_path / "missing.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(ValueError, match="encoding="):
        tt.data.load_text_file(latin)
    assert "café" in tt.data.load_text_file(latin, encoding="latin-1", validation=0.5).vocab
    empty = tmp_path / "empty.txt"
    empty.write_text("-- () --", encoding="utf-8")
    with pytest.raises(ValueError, match="needs at least 2"):
        tt.data.load_text_file(tmp_path / "empty.txt")


def test_unknown_corpus_name_lists_the_choices():
    with pytest.raises(ValueError, match="python-docs"):
        tt.data.load_corpus("shakespeare")


def test_python_docstrings_corpus_has_a_large_vocabulary():
    raw = text.corpus_text("python-docstrings")
    tokens = tokenize(raw)
    assert len(tokens) > 150_000 and len(set(tokens)) > 5_000
    assert "Return" in raw                       # docstrings, read without importing
