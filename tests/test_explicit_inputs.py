"""tt.explicit on dense inputs: what ``count`` reports about their row sums (the inputs'
mass), which decides whether the bias can be folded into the weights."""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace.analysis import explicit as explicit_module

ex = tt.explicit


def test_dense_inputs_with_unequal_row_sums_have_no_constant_mass():
    x = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])            # row sums 2 and 3
    counts = ex.count(x, np.array([0, 1]), 2)
    assert counts.constant_mass is None
    assert counts.mass == 5.0 and counts.mean_mass == 2.5


def test_dense_inputs_with_equal_row_sums_report_that_sum():
    x = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0], [1.5, 0.5, 1.0]])
    assert ex.count(x, np.array([0, 1, 1]), 2).constant_mass == 3.0
    # 0.1 + 0.2 and 0.3 differ in the last bit: the same mass up to rounding
    rounded = ex.count(np.array([[0.1, 0.2], [0.3, 0.0]]), np.array([0, 1]), 2)
    assert rounded.constant_mass == pytest.approx(0.3, rel=1e-15)


def test_a_row_sum_differing_in_a_later_chunk_is_still_seen(monkeypatch):
    """count sums rows chunk by chunk; the one odd row sits in the last chunk."""
    monkeypatch.setattr(explicit_module, "CHUNK_ELEMENTS", 4)    # 2 rows of 2 per chunk
    x = np.ones((7, 2))
    x[-1] = [1.0, 2.0]                                            # sums 2, ..., 2, 3
    counts = ex.count(x, np.zeros(7, np.int64), 1)
    assert counts.constant_mass is None
    assert counts.mass == 15.0


def test_adding_counts_of_unequal_masses_has_no_constant_mass():
    ones, twos = np.ones((3, 2)) / 2, np.ones((2, 2))             # masses 1 and 2
    y3, y2 = np.array([0, 1, 0]), np.array([1, 1])
    both = ex.count(ones, y3, 2) + ex.count(twos, y2, 2)
    assert ex.count(ones, y3, 2).constant_mass == 1.0
    assert both.constant_mass is None and both.mean_mass == pytest.approx(7 / 5)
