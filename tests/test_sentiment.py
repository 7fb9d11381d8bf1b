"""tt.data.sentiment: synthetic reviews follow their generative rule (labels = sign of the
summed lexicon valence, no ambiguous reviews, lengths in range, reproducible); the lexicon
and the neutral vocabulary are what the docs say; the IMDB folder and CSV/TSV loaders,
the tokenizer and the vocabulary work on small files written here, and refuse bad ones."""
import numpy as np
import pytest

import tinytrace as tt

sentiment = tt.data.sentiment


def needs_lexicon():
    """The synthetic reviews need the vaderSentiment package; the loaders do not."""
    pytest.importorskip("vaderSentiment")


@pytest.fixture(scope="module")
def task():
    needs_lexicon()
    return sentiment.SyntheticSentiment(seed=0)


def test_labels_are_the_sign_of_the_summed_valence(task):
    reviews = task.sample(400)
    assert len(reviews) == 400
    sums = np.array([sum(task.valence.get(w, 0.0) for w in t) for t in reviews.tokens])
    np.testing.assert_allclose(sums, reviews.scores)
    np.testing.assert_array_equal(reviews.labels, (sums > 0).astype(int))
    assert np.abs(sums).min() >= task.margin                  # ambiguous ones were dropped
    lengths = reviews.lengths()
    assert lengths.min() >= 20 and lengths.max() <= 60 and len(set(lengths)) > 20
    assert 0.4 < reviews.labels.mean() < 0.6
    share = np.mean([w in task.valence for t in reviews.tokens for w in t])
    assert abs(share - task.sentiment_rate) < 0.02


def test_reproducible_and_seeded(task):
    a = sentiment.SyntheticSentiment(seed=3).sample(20)
    b = sentiment.SyntheticSentiment(seed=3).sample(20)
    assert a.tokens == b.tokens and (a.labels == b.labels).all()
    assert task.sample(5, rng=1).tokens == task.sample(5, rng=1).tokens
    assert sentiment.SyntheticSentiment(seed=4).sample(20).tokens != a.tokens


def test_words_come_from_the_lexicon_and_neutral_words_do_not(task):
    lexicon = sentiment.vader_lexicon()
    assert len(lexicon) > 7000 and lexicon["good"][0] == pytest.approx(1.9)
    assert len(task.positive) == len(task.negative) == 80
    for w, v in task.valence.items():
        mean, sd = lexicon[w]
        assert v == mean and abs(v) >= 1.0 and sd <= 1.0 and w.isalpha()
    assert all(task.valence[w] > 0 for w in task.positive)
    assert all(task.valence[w] < 0 for w in task.negative)
    assert not any(w in lexicon for w in task.neutral) and len(task.neutral) > 200
    assert not any(w.startswith(sentiment.EXCLUDED_PREFIXES) for w in task.valence)
    values = sorted(task.valence[w] for w in task.positive)     # spread, not just extremes
    assert values[0] < 1.2 and values[-1] > 3.0
    val = task.word_valence()
    assert val.shape == (len(task.vocabulary),) and val[0] == val[1] == 0
    assert val[task.vocabulary.index["precious"]] == task.valence["precious"]


def test_knobs_change_the_data():
    needs_lexicon()
    short = sentiment.SyntheticSentiment(lengths=(5, 5), margin=0.0, seed=1).sample(50)
    assert (short.lengths() == 5).all()
    dense = sentiment.SyntheticSentiment(sentiment_rate=1.0, seed=1).sample(50)
    assert all(w not in sentiment.NEUTRAL_WORDS for t in dense.tokens for w in t)
    with pytest.raises(ValueError, match="lengths"):
        sentiment.SyntheticSentiment(lengths=(10, 5))
    with pytest.raises(ValueError, match="only .* lexicon words"):
        sentiment.SyntheticSentiment(words_per_polarity=5000)


def test_tokenize():
    assert sentiment.tokenize("A <br /><br />GREAT film, isn't it? 10/10!") == \
        ["a", "great", "film", "isn't", "it", "10", "10"]


def test_vocabulary_build_encode_decode():
    vocab = sentiment.Vocabulary.build([["b", "a", "b"], ["c", "b", "a", "d"]], min_count=2)
    assert vocab.words == ["<pad>", "<unk>", "b", "a"]
    ids, lengths = vocab.encode([["a", "zzz"], ["b", "b", "a"]])
    assert ids.shape == (3, 2) and ids.dtype == np.int64
    np.testing.assert_array_equal(ids[:, 0], [3, 1, 0])
    np.testing.assert_array_equal(lengths, [2, 3])
    assert vocab.decode(ids[:, 1]) == ["b", "b", "a"]
    ids, lengths = vocab.encode([["a"] * 10], max_length=4)
    assert ids.shape == (4, 1) and lengths[0] == 4
    assert len(sentiment.Vocabulary.build([list("abcdef")], max_size=4)) == 4
    with pytest.raises(ValueError, match="review 1 has no tokens"):
        vocab.encode([["a"], []])


def write_imdb(root):
    reviews = {("train", "pos"): ["Loved it.<br />Great!", "wonderful film"],
               ("train", "neg"): ["awful", "Boring, bad plot", "meh"],
               ("test", "pos"): ["fine"], ("test", "neg"): ["bad"]}
    for (split, label), texts in reviews.items():
        folder = root / "aclImdb" / split / label
        folder.mkdir(parents=True)
        for i, text in enumerate(texts):             # ids 10, 9, 8 ...: numeric order
            (folder / f"{10 - i}_{7 if label == 'pos' else 2}.txt").write_text(text)
    (root / "aclImdb" / "train" / "unsup").mkdir()   # present in the real folder, ignored
    return root / "aclImdb"


def test_load_imdb(tmp_path):
    path = write_imdb(tmp_path)
    train = sentiment.load_imdb(path)
    assert len(train) == 5 and train.labels.tolist() == [1, 1, 0, 0, 0]
    assert train.tokens[0] == ["wonderful", "film"]          # 9_7.txt before 10_7.txt
    assert train.tokens[1] == ["loved", "it", "great"]
    assert train.scores is None
    test = sentiment.load_reviews(path, "test")
    assert test.tokens == [["fine"], ["bad"]] and test.labels.tolist() == [1, 0]
    assert len(sentiment.load_imdb(path, limit=1)) == 2
    with pytest.raises(FileNotFoundError, match="aclImdb layout"):
        sentiment.load_imdb(tmp_path)


def test_load_csv_and_tsv(tmp_path):
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text('text,label\n"Great, great movie",pos\nterrible,0\n"ok, fine",1\n')
    r = sentiment.load_reviews(csv_file)
    assert r.tokens[0] == ["great", "great", "movie"] and r.labels.tolist() == [1, 0, 1]
    tsv_file = tmp_path / "reviews.tsv"
    tsv_file.write_text("review\tsentiment\nnice one\tPositive\nbad\tnegative\n")
    r = sentiment.load_csv(tsv_file, text_column="review", label_column="sentiment")
    assert r.labels.tolist() == [1, 0] and r.tokens[0] == ["nice", "one"]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,maybe\n")
    with pytest.raises(ValueError, match="line 2: label 'maybe'"):
        sentiment.load_csv(bad)
    with pytest.raises(ValueError, match="not \\['label'\\]"):
        sentiment.load_csv(tsv_file, text_column="review")


def test_load_csv_reads_minus_one_as_negative(tmp_path):
    """The -1/+1 convention: -1 is the negative label (0), not an unknown one."""
    file = tmp_path / "signed.csv"
    file.write_text("text,label\nawful,-1\nlovely,1\ndull, -1 \n")
    assert sentiment.load_csv(file).labels.tolist() == [0, 1, 0]


def test_reviews_split_and_index(task):
    reviews = task.sample(50, rng=0)
    a, b = reviews.split(0.8, rng=0)
    assert len(a) == 40 and len(b) == 10
    assert sorted(map(tuple, a.tokens + b.tokens)) == sorted(map(tuple, reviews.tokens))
    assert reviews[:3].tokens == reviews.tokens[:3]
    with pytest.raises(ValueError, match="labels must be 0"):
        sentiment.Reviews([["a"]], [2])


def test_missing_lexicon_package_says_how_to_install(monkeypatch):
    import importlib.resources
    monkeypatch.setattr(sentiment, "_LEXICON", None)

    def missing(name):
        raise ModuleNotFoundError(f"No module named {name!r}")
    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(ImportError, match="pip install vaderSentiment"):
        sentiment.vader_lexicon()
