"""The formal-language tasks: reproducible, in the language, with the right masks."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace.data import AnBn, AnBnCn, Dyck2, Reversal, sequence_accuracy, position_accuracy

ALL_TASKS = [AnBn, AnBnCn, Reversal, Dyck2]


def _fields_equal(a, b):
    return (a.strings == b.strings and all(np.array_equal(getattr(a, f), getattr(b, f))
            for f in ("ns", "inputs", "targets", "lengths", "mask", "deterministic", "allowed")))


@pytest.mark.parametrize("cls", ALL_TASKS)
def test_same_seed_same_batch_and_different_seed_differs(cls):
    task = cls()
    a = task.sample(64, "train", np.random.default_rng(7))
    b = task.sample(64, "train", np.random.default_rng(7))
    c = task.sample(64, "train", 7)                    # a seed works like a Generator
    d = task.sample(64, "train", np.random.default_rng(8))
    assert _fields_equal(a, b) and _fields_equal(a, c)
    assert a.strings != d.strings


@pytest.mark.parametrize("cls", ALL_TASKS)
def test_a_tasks_own_generator_is_seeded(cls):
    first, second = cls(seed=3), cls(seed=3)
    a1, a2 = first.sample(64), first.sample(64)
    b1, b2 = second.sample(64), second.sample(64)
    assert _fields_equal(a1, b1) and _fields_equal(a2, b2)     # same seed, same stream
    assert a1.strings != a2.strings                              # the stream moves on
    assert cls(seed=4).sample(64).strings != a1.strings


@pytest.mark.parametrize("cls", ALL_TASKS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_sampled_strings_are_in_the_language_with_sizes_in_the_split(cls, split):
    task = cls()
    batch = task.sample(200, split, np.random.default_rng(1))
    lo, hi = task.n_range(split)
    assert all(task.contains(s) for s in batch.strings)
    assert batch.ns.min() >= lo and batch.ns.max() <= hi
    assert set(batch.ns.tolist()) == set(range(lo, hi + 1))       # 200 draws cover the range


@pytest.mark.parametrize("cls", ALL_TASKS)
def test_train_and_test_lengths_are_disjoint(cls):
    task = cls()
    train = task.sample(300, "train", np.random.default_rng(2))
    test = task.sample(300, "test", np.random.default_rng(3))
    assert train.lengths.max() < test.lengths.min()
    assert not set(train.ns.tolist()) & set(test.ns.tolist())
    with pytest.raises(ValueError, match="overlap"):
        cls(train_range=(1, 10), test_range=(10, 20))


def test_membership_rejects_near_misses():
    assert AnBn().contains("aabb") and not AnBn().contains("aab") and not AnBn().contains("abab")
    assert not AnBn().contains("")
    assert AnBnCn().contains("abc") and not AnBnCn().contains("aabbc")
    r = Reversal()
    assert r.contains("abb#bba") and not r.contains("ab#ab") and not r.contains("#")
    assert not r.contains("ab#ba#")
    d = Dyck2()
    assert d.contains("([])[]") and not d.contains("([)]") and not d.contains("(()")
    assert not d.contains(")(")


@given(st.integers(0, 2**32 - 1))
def test_dyck2_strings_are_balanced_with_nesting(seed):
    task = Dyck2()
    batch = task.sample(16, (1, 12), np.random.default_rng(seed))
    for s, n in zip(batch.strings, batch.ns):
        assert len(s) == 2 * n
        stack = []
        for ch in s:                        # an independent check with a plain stack
            if ch in "([":
                stack.append(ch)
            else:
                assert stack and {"(": ")", "[": "]"}[stack.pop()] == ch
        assert not stack


def test_dyck2_uses_both_kinds_and_nests():
    batch = Dyck2().sample(100, (6, 10), np.random.default_rng(0))
    text = "".join(batch.strings)
    assert text.count("(") > 100 and text.count("[") > 100
    assert any("([" in s or "[(" in s for s in batch.strings)    # nesting of mixed kinds


def test_encoding_padding_and_targets_by_hand():
    task = AnBn()
    batch = task.batch(["ab", "aabb"])
    v = task.vocab
    assert v.symbols == ("_", "^", "$", "a", "b") and (v.pad, v.start, v.end) == (0, 1, 2)
    a, b, S, E, P = 3, 4, 1, 2, 0
    assert batch.inputs.T.tolist() == [[S, a, b, P, P], [S, a, a, b, b]]
    assert batch.targets.T.tolist() == [[a, b, E, P, P], [a, a, b, b, E]]
    assert batch.lengths.tolist() == [3, 5]
    assert batch.mask.T.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch.one_hot().shape == (5, 2, 5) and batch.one_hot(batch_first=True).shape == (2, 5, 5)
    assert np.array_equal(batch.one_hot().argmax(-1), batch.inputs)
    assert v.decode(batch.targets[:, 1]) == "aabb$"
    with pytest.raises(ValueError, match="not in the language"):
        task.batch(["aab"])


def _det(task, s):
    return "".join("*" if d else "." for d in task.batch([s]).deterministic[:, 0])


def test_deterministic_masks_by_hand():
    # target position t is the symbol after reading start + s[:t]; '*' = forced
    # aaabbb: targets a a a b b b $ ; forced: first a (always), then after the first b
    assert _det(AnBn(), "aaabbb") == "*...***"
    assert _det(AnBn(), "ab") == "*.*"
    # aabbcc: targets a a b b c c $
    assert _det(AnBnCn(), "aabbcc") == "*..****"
    # ab#ba: targets a b # b a $ ; forced only after the marker
    assert _det(Reversal(), "ab#ba") == "...***"
    # ([])[]: targets ( [ ] ) [ ] $ ; scored: the closing brackets
    assert _det(Dyck2(), "([])[]") == "..**.*."


def test_deterministic_positions_have_a_single_allowed_symbol_that_is_the_target():
    for cls in (AnBn, AnBnCn, Reversal):
        task = cls()
        batch = task.sample(50, "test", np.random.default_rng(4))
        single = batch.allowed.sum(-1) == 1
        assert np.array_equal(batch.deterministic, single & batch.mask)
    for cls in ALL_TASKS:
        batch = cls().sample(50, "train", np.random.default_rng(5))
        t, b = np.nonzero(batch.mask)
        assert batch.allowed[t, b, batch.targets[t, b]].all()       # the target is allowed
        assert not batch.allowed[~batch.mask].any()


def test_dyck2_scored_closers_are_the_only_allowed_closer():
    batch = Dyck2().sample(50, "train", np.random.default_rng(6))
    closers = [batch.vocab.index[c] for c in ")]"]
    t, b = np.nonzero(batch.deterministic)
    allowed_closers = batch.allowed[t, b][:, closers]
    assert (allowed_closers.sum(-1) == 1).all()
    assert np.isin(batch.targets[t, b], closers).all()


def test_sequence_accuracy_counts_a_sequence_only_if_all_deterministic_positions_are_right():
    task = AnBn()
    batch = task.batch(["ab", "aabb", "aaabbb"])
    perfect = batch.targets.copy()
    assert sequence_accuracy(perfect, batch) == 1.0
    guess = perfect.copy()
    guess[1, 2] = task.vocab.index["b"]     # a non-deterministic position: wrong but free
    assert sequence_accuracy(guess, batch) == 1.0
    guess[5, 2] = task.vocab.index["b"]     # aaabbb: position 5 must be 'b' ... it is
    assert sequence_accuracy(guess, batch) == 1.0
    guess[6, 2] = task.vocab.index["b"]     # ... and position 6 must be '$': now wrong
    assert sequence_accuracy(guess, batch, per_sequence=True).tolist() == [True, True, False]
    assert sequence_accuracy(guess, batch) == pytest.approx(2 / 3)
    scores = np.eye(len(task.vocab))[guess]                       # (T, B, V) scores work too
    assert sequence_accuracy(tt.tensor(scores), batch) == pytest.approx(2 / 3)
    deterministic_total = batch.deterministic.sum()
    assert position_accuracy(guess, batch) == pytest.approx(1 - 1 / deterministic_total)
    assert position_accuracy(guess, batch, "all") == pytest.approx(1 - 2 / batch.mask.sum())


def test_n_range_forms():
    task = Reversal(alphabet="xyz")
    assert task.n_range("train") == (1, 10) and task.n_range("test") == (11, 20)
    assert task.n_range(4) == (4, 4) and task.n_range((3, 5)) == (3, 5)
    batch = task.sample(8, 4, np.random.default_rng(0))
    assert all(len(s) == 9 and set(s) <= set("xyz#") for s in batch.strings)
    with pytest.raises(ValueError):
        task.n_range("validation")
    with pytest.raises(ValueError):
        task.n_range((0, 3))


def test_reversal_alphabet_by_size():
    task = Reversal(alphabet=3)
    assert task.symbols == ("a", "b", "c") and len(task.vocab) == 3 + 4
    batch = task.sample(16, "train", np.random.default_rng(1))
    assert all(set(s) <= set("abc#") and task.contains(s) for s in batch.strings)
    # sizes beyond 26 are allowed since the transduction tasks (letters, digits, Latin-1...)
    for bad in (0, 10_000, "", None):
        with pytest.raises(ValueError, match="Reversal: a"):
            Reversal(alphabet=bad)
