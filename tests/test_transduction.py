"""The transduction tasks: right targets, lengths in range, reproducible, scored right."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace.data import (BigramFlip, Copy, DuplicatedString, MarkedCopy, OddsFirst,
                            Reversal, coarse_accuracy, fine_accuracy)

ALL = [Copy, Reversal, BigramFlip, DuplicatedString, OddsFirst, MarkedCopy]


# Expected targets written from each task's definition, not from its transform().
def expected_copy(source):
    return source


def expected_reversal(source):
    return "".join(source[len(source) - 1 - i] for i in range(len(source)))


def expected_bigram_flip(source):
    out = []
    for i in range(0, len(source), 2):
        out += [source[i + 1], source[i]]
    return "".join(out)


def expected_duplicated(source):
    out = []
    for c in source:
        out += [c, c]
    return "".join(out)


def expected_odds_first(source):
    odd = [c for i, c in enumerate(source, start=1) if i % 2 == 1]
    even = [c for i, c in enumerate(source, start=1) if i % 2 == 0]
    return "".join(odd + even)


def expected_marked_copy(source):
    assert source.count("!") == 1
    return source.split("!")[1]


EXPECTED = {Copy: expected_copy, Reversal: expected_reversal, BigramFlip: expected_bigram_flip,
            DuplicatedString: expected_duplicated, OddsFirst: expected_odds_first,
            MarkedCopy: expected_marked_copy}


@pytest.mark.parametrize("cls", ALL)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(2, 20))
def test_each_target_is_the_transformation_of_its_source(cls, seed, size):
    task = cls(alphabet=size, train_range=(2, 12), test_range=(13, 20))
    batch = task.sample(8, "train", seed)
    for s in batch.strings:
        assert s.count("#") == 1
        source, target = s.split("#")
        assert target == EXPECTED[cls](source)


def test_the_examples_in_the_docstrings():
    assert Copy().transform("abc") == "abc"
    assert BigramFlip().transform("abcd") == "badc"
    assert DuplicatedString().transform("abc") == "aabbcc"
    assert OddsFirst().transform("abcde") == "acebd"
    assert MarkedCopy().transform("ab!cd") == "cd"
    assert Reversal().transform("abc") == "cba"


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("split", ["train", "test"])
def test_source_lengths_fall_in_the_requested_range(cls, split):
    task = cls(alphabet=4, train_range=(3, 9), test_range=(10, 15))
    batch = task.sample(300, split, 0)
    lo, hi = task.n_range(split)
    sources = [s.split("#")[0] for s in batch.strings]
    assert all(lo <= len(src) <= hi for src in sources)
    assert batch.ns.tolist() == [len(src) for src in sources]
    valid = {n for n in range(lo, hi + 1) if cls is not BigramFlip or n % 2 == 0}
    assert set(batch.ns.tolist()) == valid                  # 300 draws cover the range


@pytest.mark.parametrize("cls", [Copy, BigramFlip, DuplicatedString, OddsFirst, MarkedCopy])
def test_default_split_is_the_papers_8_to_64_then_65_to_128(cls):
    task = cls()
    assert task.train_range == (8, 64) and task.test_range == (65, 128)
    assert len(task.symbols) == 128


def test_reversal_keeps_its_lesson_defaults():
    task = Reversal()
    assert task.train_range == (1, 10) and task.test_range == (11, 20)
    assert task.symbols == ("a", "b")


@pytest.mark.parametrize("cls", ALL)
def test_same_seed_same_batch(cls):
    task = cls(alphabet=5)
    a, b, c = task.sample(16, "train", 3), task.sample(16, "train", 3), task.sample(16, "train", 4)
    assert a.strings == b.strings and np.array_equal(a.inputs, b.inputs)
    assert a.strings != c.strings
    assert cls(seed=1, alphabet=5).sample(16).strings == cls(seed=1, alphabet=5).sample(16).strings


def test_only_the_target_and_end_symbol_are_scored():
    task = Copy(alphabet=3)
    batch = task.batch(["abc#abc"])
    # inputs ^ a b c # a b c ; targets a b c # a b c $ : scored after reading the '#'
    assert batch.deterministic[:, 0].tolist() == [False] * 4 + [True] * 4
    assert batch.mask[:, 0].all()


def _predict(task, strings):
    """A batch of ``strings`` and its (T, B) targets to perturb as predictions."""
    batch = task.batch(strings)
    return batch, batch.targets.copy()


def test_coarse_and_fine_accuracy_on_hand_made_predictions():
    task = Copy(alphabet=3)
    batch, pred = _predict(task, ["abca#abca", "ab#ab", "cc#cc"])
    a, b = task.vocab.index["a"], task.vocab.index["b"]
    assert coarse_accuracy(pred, batch) == 1.0 and fine_accuracy(pred, batch) == 1.0
    # first column: target at time steps 5..8 (after "^abca#"); an error at target
    # position k = 2 (time 7) means 2 of 4 right before the first error
    pred[7, 0] = a
    pred[8, 0] = b                        # a later error does not change fine accuracy
    assert fine_accuracy(pred, batch, per_sequence=True).tolist() == [0.5, 1.0, 1.0]
    assert coarse_accuracy(pred, batch, per_sequence=True).tolist() == [False, True, True]
    # second column: an error at target position 0 scores 0
    pred[3, 1] = b
    assert fine_accuracy(pred, batch, per_sequence=True).tolist() == [0.5, 0.0, 1.0]
    assert fine_accuracy(pred, batch) == pytest.approx(0.5)
    assert coarse_accuracy(pred, batch) == pytest.approx(1 / 3)
    scores = np.eye(len(task.vocab))[pred]                       # (T, B, V) scores work too
    assert fine_accuracy(tt.tensor(scores), batch) == pytest.approx(0.5)


def test_errors_outside_the_target_are_not_counted():
    task = Copy(alphabet=3)
    batch, pred = _predict(task, ["abc#abc"])
    pred[0, 0] = pred[1, 0] = task.vocab.index["c"]     # inside the random source: free
    pred[7, 0] = task.vocab.index["a"]                  # the end symbol: not a target symbol
    assert coarse_accuracy(pred, batch) == 1.0 and fine_accuracy(pred, batch) == 1.0


def test_accuracy_rejects_predictions_of_the_wrong_shape():
    batch = Copy(alphabet=3).batch(["ab#ab"])
    with pytest.raises(ValueError, match="coarse_accuracy: predictions have shape"):
        coarse_accuracy(np.zeros((3, 1), dtype=np.int64), batch)
    with pytest.raises(ValueError, match="fine_accuracy: predictions have shape"):
        fine_accuracy(np.zeros((3, 1), dtype=np.int64), batch)


def test_bigram_flip_needs_even_sources():
    task = BigramFlip(alphabet=3)
    with pytest.raises(ValueError, match="even length"):
        task.transform("abc")
    assert not task.contains("abc#bac")
    with pytest.raises(ValueError, match="not in the language"):
        task.batch(["abc#bac"])
    with pytest.raises(ValueError, match="holds no valid source length"):
        BigramFlip(train_range=(9, 9), test_range=(10, 12))
    with pytest.raises(ValueError, match="holds no valid source length"):
        task.sample(4, (7, 7))


def test_empty_and_overlapping_ranges_are_refused():
    with pytest.raises(ValueError, match="1 <= lo <= hi"):
        Copy(train_range=(10, 5))
    with pytest.raises(ValueError, match="overlap"):
        Copy(train_range=(8, 64), test_range=(64, 128))
    with pytest.raises(ValueError, match="holds no valid source length"):
        MarkedCopy(train_range=(1, 1), test_range=(2, 4))     # a marked source has n >= 2


@pytest.mark.parametrize("bad", [1, 0, 10_000, "a", "", None])
def test_too_small_or_bad_vocabularies_are_refused(bad):
    with pytest.raises(ValueError, match="OddsFirst: a"):
        OddsFirst(alphabet=bad)


def test_markers_cannot_be_symbols():
    with pytest.raises(ValueError, match="markers"):
        Copy(alphabet="ab#")
    with pytest.raises(ValueError, match="markers"):
        MarkedCopy(alphabet="ab!")


def test_marked_copy_puts_one_marker_that_is_never_last():
    task = MarkedCopy(alphabet=3, train_range=(2, 6), test_range=(7, 9))
    batch = task.sample(200, "train", 0)
    marker_places = set()
    for s in batch.strings:
        source = s.split("#")[0]
        assert source.count("!") == 1 and not source.endswith("!")
        marker_places.add(source.index("!"))
    assert marker_places == set(range(0, 5))        # anywhere from first to next-to-last


def test_batches_feed_a_recurrent_layer():
    task = OddsFirst(alphabet=4, train_range=(2, 5), test_range=(6, 8))
    batch = task.sample(3, "train", 0)
    x = batch.one_hot()
    assert x.shape == (batch.steps, 3, len(task.vocab))
    out, _ = tt.nn.RNN(len(task.vocab), 5)(tt.tensor(x))
    assert out.shape == (batch.steps, 3, 5)
