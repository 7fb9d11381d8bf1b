"""``tt.data.DataLoader`` and ``pad_sequences``: batches cover the data, seeded orders
repeat and change per epoch, padding feeds the recurrent layers' ``lengths=``."""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace.data import DataLoader, pad_sequences


def _epochs(loader, n):
    return [np.concatenate([b if loader.single else b[0] for b in loader]) for _ in range(n)]


def test_unshuffled_batches_are_the_data_in_order_with_a_short_last_batch():
    x, y = np.arange(20).reshape(10, 2), np.arange(10) % 3
    batches = list(DataLoader((x, y), batch_size=4))
    assert len(batches) == len(DataLoader((x, y), batch_size=4)) == 3
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)


def test_drop_last_leaves_out_the_short_batch():
    loader = DataLoader(np.arange(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(b) for b in loader] == [4, 4]
    assert len(DataLoader(np.arange(8), batch_size=4, drop_last=True)) == 2


def test_a_seed_repeats_the_sequence_of_epochs_and_each_epoch_has_a_new_order():
    data = np.arange(50)
    first = _epochs(DataLoader(data, 7, shuffle=True, seed=3), 3)
    again = _epochs(DataLoader(data, 7, shuffle=True, seed=3), 3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
    for epoch in first:                      # each a permutation: every example once
        np.testing.assert_array_equal(np.sort(epoch), data)
    other = _epochs(DataLoader(data, 7, shuffle=True, seed=4), 1)[0]
    assert not np.array_equal(other, first[0])


def test_without_a_seed_shuffling_follows_manual_seed():
    tt.manual_seed(11)
    first = _epochs(DataLoader(np.arange(30), 5, shuffle=True), 2)
    tt.manual_seed(11)
    again = _epochs(DataLoader(np.arange(30), 5, shuffle=True), 2)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_shuffled_parts_stay_paired():
    x = np.arange(40).reshape(20, 2)
    for xb, yb in DataLoader((x, x[:, 0] * 10), 6, shuffle=True, seed=0):
        np.testing.assert_array_equal(yb, xb[:, 0] * 10)


def test_pad_sequences_by_hand():
    padded, lengths = pad_sequences([np.ones((2, 1)), 2 * np.ones((3, 1))])
    assert padded.shape == (3, 2, 1) and lengths.dtype == np.int64
    np.testing.assert_array_equal(padded[:, :, 0], [[1, 2], [1, 2], [0, 2]])
    np.testing.assert_array_equal(lengths, [2, 3])
    tokens, _ = pad_sequences([np.array([5, 6]), np.array([7])], batch_first=True,
                              padding_value=-1)
    np.testing.assert_array_equal(tokens, [[5, 6], [7, -1]])


def test_collate_pad_gives_padded_sequences_with_lengths_and_the_labels():
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((t, 3)) for t in (2, 5, 3, 1, 4)]
    labels = np.arange(5)
    batches = list(DataLoader((seqs, labels), 2, shuffle=True, seed=1, collate="pad"))
    assert len(batches) == 3
    for (x, lengths), yb in batches:
        assert x.shape == (lengths.max(), len(yb), 3)
        for b, label in enumerate(yb):       # each column is its own sequence, then zeros
            np.testing.assert_array_equal(x[:lengths[b], b], seqs[label])
            np.testing.assert_array_equal(x[lengths[b]:, b], 0)
    seen = np.concatenate([yb for _, yb in batches])
    np.testing.assert_array_equal(np.sort(seen), labels)


@pytest.mark.parametrize("mode", ["traced", "fused"])
def test_padded_lstm_with_lengths_equals_each_sequence_run_alone(mode):
    rng = np.random.default_rng(2)
    seqs = [rng.standard_normal((t, 3)) for t in (4, 1, 6, 3)]
    lstm = tt.nn.LSTM(3, 5, dtype=np.float64, mode=mode, rng=0)
    x, lengths = pad_sequences(seqs)
    out, (h_n, c_n) = lstm(x, lengths=lengths)
    for b, seq in enumerate(seqs):
        alone, (h_alone, c_alone) = lstm(seq[:, None, :])
        np.testing.assert_allclose(out.data[:len(seq), b], alone.data[:, 0], rtol=1e-12,
                                   atol=1e-14)
        np.testing.assert_array_equal(out.data[len(seq):, b], 0)
        np.testing.assert_allclose(h_n.data[:, b], h_alone.data[:, 0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c_n.data[:, b], c_alone.data[:, 0], rtol=1e-12, atol=1e-14)


def test_bad_input_is_refused_with_what_was_wrong():
    with pytest.raises(tt.ShapeError, match=r"sequence 1 has feature shape \(4,\) .* "
                                            r"sequence 0 has \(3,\)"):
        pad_sequences([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="empty list"):
        pad_sequences([])
    with pytest.raises(TypeError, match="list of arrays"):
        pad_sequences(np.zeros((3, 2, 1)))
    with pytest.raises(tt.ShapeError, match=r"hold \[5, 4\] examples"):
        DataLoader((np.zeros(5), np.zeros(4)))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        DataLoader(np.zeros(5), batch_size=0)
    with pytest.raises(TypeError, match="collate must be a function or 'pad'"):
        DataLoader(np.zeros(5), collate="stack")
