"""``Graph`` queries a user calls: ``consumers_of`` (nodes and leaves alike), ``select``
(a glob over scopes), ``paths`` / ``count_paths`` (both paths of ``w * w``; a count when
there are too many to list)."""
import re

import numpy as np
import pytest

import tinytrace as tt
from tinytrace import nn


def leaf(value, name=None):
    return tt.tensor(value, requires_grad=True, dtype=tt.float64, name=name)


# ---- consumers_of ----------------------------------------------------------------------------

def test_consumers_of_works_for_nodes_leaves_and_interior_tensors():
    x, k = leaf([1.0, 2.0], "x"), tt.tensor([3.0, 4.0], dtype=tt.float64)
    h = x.exp()
    y = (h * h + x * k).sum()
    g = y.graph()
    square = next(n for n in g if n.op == "mul" and n.inputs[0] is h)
    assert g.consumers_of(h) == [square, square] == g.consumers_of(h.node)   # read twice
    assert [n.op for n in g.consumers_of(x)] == ["exp", "mul"]           # a leaf
    assert [n.op for n in g.consumers_of(k)] == ["mul"]                  # a constant leaf
    assert g.consumers_of(y) == [] and g.consumers_of(leaf([0.0])) == []
    out = g.consumers_of(x)
    out.clear()                                          # a copy: the graph is unchanged
    assert len(g.consumers_of(x)) == 2


# ---- select ----------------------------------------------------------------------------------

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 3)                        # traced: every gate at every step
        self.head = nn.Linear(3, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[-1]).sum()


STEPS = 4


@pytest.fixture(scope="module")
def lstm_graph():
    tt.manual_seed(0)
    return Model()(tt.zeros(STEPS, 2, 2)).graph()


def by_regex(graph, regex):
    return [n for n in graph if re.fullmatch(regex, n.scope)]


def test_select_finds_every_steps_forget_gate_inside_the_model(lstm_graph):
    g = lstm_graph
    chosen = g.select("lstm/t=*/forget_gate")
    assert chosen == by_regex(g, r"model/lstm/t=\d+/forget_gate(/.*)?")
    assert {n.scope for n in chosen} == {f"model/lstm/t={t}/forget_gate" for t in range(STEPS)}
    assert g.select("**/t=*/forget_gate") == chosen
    # without the step: also the gate's rows cut from the weights once per call
    assert g.select("forget_gate") == by_regex(g, r"model/lstm/(t=\d+/)?forget_gate")
    assert {n.op for n in g.select("forget_gate")} - {n.op for n in chosen} <= {"getitem",
                                                                            "transpose"}
    assert g.select("/model/lstm/t=*/forget_gate") == chosen          # anchored, full path
    assert g.select("/lstm/t=*/forget_gate") == []                    # anchored: no such root


def test_select_takes_sub_scopes_and_the_steps_partition_the_loop(lstm_graph):
    g = lstm_graph
    step3 = g.select("lstm/t=3")
    assert step3 == by_regex(g, r"model/lstm/t=3/.*") and len(step3) > 5
    per_step = [g.select(f"t={t}") for t in range(STEPS)]
    everything = g.select("t=*")
    assert sum(len(s) for s in per_step) == len(everything)
    assert set().union(*map(set, per_step)) == set(everything)
    assert set(g.select("t=[01]")) == set(per_step[0]) | set(per_step[1])
    assert g.select("**") == list(g)
    assert g.select("/") == [n for n in g if n.scope == ""]
    assert g.select("t=1*") == per_step[1]                 # '*' stays inside one segment
    assert g.select("model/forget_gate") == []             # segments are consecutive


def test_select_refuses_an_empty_pattern(lstm_graph):
    for bad in ("", "//", None):
        with pytest.raises(ValueError, match="pattern must be a non-empty scope glob"):
            lstm_graph.select(bad)


# ---- paths and their count -------------------------------------------------------------------

def test_paths_of_w_times_w_lists_both_paths():
    w = leaf([0.7], "w")
    loss = (w * w).sum()
    g = loss.graph()
    paths = g.paths(w)
    assert [[n.op for n in p] for p in paths] == [["sum", "mul"], ["sum", "mul"]]
    assert g.count_paths(w) == 2
    mul = g[0]
    slot_grads = mul.vjp(np.ones(1))                     # one local derivative per slot
    loss.backward()
    np.testing.assert_allclose(sum(slot_grads), w.grad)  # the two paths add up: 2w


def diamonds(layers):
    w = leaf(0.4, "w")
    h = w
    for _ in range(layers):
        h = h.tanh() + h.sigmoid()
    return w, h.sum()


@pytest.mark.parametrize("layers", [1, 4, 7])
def test_count_paths_equals_the_number_listed(layers):
    w, loss = diamonds(layers)
    g = loss.graph()
    assert g.count_paths(w) == len(g.paths(w)) == 2 ** layers
    mid = g.nodes[len(g) // 2]
    assert g.count_paths(mid) == len(g.paths(mid))
    assert g.count_paths(leaf(1.0)) == 0 and g.paths(leaf(1.0)) == []


def test_too_many_paths_are_counted_not_listed():
    w, loss = diamonds(60)                               # 2**60 paths: never listable
    g = loss.graph()
    assert g.count_paths(w) == 2 ** 60
    with pytest.raises(ValueError, match=f"there are {2 ** 60:,} paths .* count_paths"):
        g.paths(w)
    w2, loss2 = diamonds(2)
    with pytest.raises(ValueError, match="there are 4 paths .* more than limit=3"):
        loss2.graph().paths(w2, limit=3)
