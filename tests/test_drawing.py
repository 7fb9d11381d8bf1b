"""The layered drawing (``Graph.layout`` / ``Graph.draw``, ``tinytrace.drawing``): edges
go up one layer per waypoint, never through a box; parameters sit below their reader;
barycentric ordering removes avoidable crossings; grouping never makes a cycle; edge
widths are proportional to the weights given."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, strategies as st
from matplotlib.patches import FancyArrowPatch

import tinytrace as tt
import tinytrace.nn.functional as F
from tinytrace import drawing


def mlp_loss():
    class MLP(tt.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = tt.nn.Linear(4, 8), tt.nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(self.fc1(x).relu())
    model = MLP()
    return model, F.cross_entropy(model(tt.randn(5, 4)), np.array([0, 2, 1, 0, 2]))


def check_routes(lay):
    """Every edge climbs one layer per waypoint and keeps clear of every other box."""
    boxes = {}
    for key, v in lay.vertices.items():
        x, y = lay.stubs[key] if key in lay.stubs else lay[v.key]
        boxes.setdefault(y, []).append((x, v.width / 2))
    for (s, t), route in lay.routes.items():
        ys = [y for _, y in route]
        assert ys == list(range(ys[0], ys[0] + len(ys))), (s, t, ys)
        for x, y in route[1:-1]:
            for bx, half in boxes.get(y, []):
                assert abs(x - bx) >= half + drawing.GAP / 2 - 1e-9, (s, t, y)


def test_a_parameter_sits_right_below_the_box_that_reads_it():
    model, loss = mlp_loss()
    graph = loss.graph()
    lay = graph.layout()
    adds = [n for n in graph if n.op == "add" and n.scope == "mlp/fc1"]
    bias = id(model.fc1.bias)
    assert lay[bias][1] == lay[adds[0]][1] - 1          # not beside the matmul
    assert lay.crossings == 0
    check_routes(lay)


def test_barycentric_order_removes_a_crossing_the_recording_order_makes():
    w1 = tt.tensor([1.0], requires_grad=True)
    w2 = tt.tensor([2.0], requires_grad=True)
    m1, m2 = w1 * 3.0, w2 * 4.0
    a, b = tt.tanh(m2), tt.tanh(m1)          # recorded crosswise
    loss = (a + b).sum()
    lay = loss.graph().layout()
    assert lay.crossings == 0
    order = sorted([a.node, b.node], key=lambda n: lay[n][0])
    below = sorted([m1.node, m2.node], key=lambda n: lay[n][0])
    assert [n.inputs[0].node for n in order] == below


@st.composite
def random_dags(draw):
    leaves = [tt.tensor(np.ones(2), requires_grad=draw(st.booleans())) for _ in range(3)]
    leaves[0].requires_grad = True
    values = list(leaves)
    for _ in range(draw(st.integers(1, 25))):
        a, b = draw(st.sampled_from(values)), draw(st.sampled_from(values))
        op = draw(st.sampled_from(["add", "mul", "tanh"]))
        outer, inner = draw(st.sampled_from([("a", None), ("b", None), ("a", "t=0"),
                                             ("a", "t=1")]))
        with tt.scope(outer), (tt.scope(inner) if inner else tt.scope(outer)):
            values.append(a + b if op == "add" else a * b if op == "mul" else tt.tanh(a))
    grads = [v for v in values if v.requires_grad]
    return sum(v.sum() for v in grads[-draw(st.integers(1, 4)):])


@given(random_dags(), st.sampled_from([None, "scope", "step"]))
def test_random_graphs_route_every_edge_upward_and_around_boxes(loss, group):
    graph = loss.graph()
    lay = graph.layout(group=group)
    check_routes(lay)
    drawn = {v.key for v in lay.vertices.values() if v.kind in ("node", "leaf")}
    if group is None:
        assert drawn == set(graph.nodes) | {id(t) for t in graph.leaves}


def stack_loss():
    tt.manual_seed(0)
    task = tt.data.Reversal(train_range=(1, 3), test_range=(4, 5))
    batch = task.sample(4, "train", rng=0)
    model = tt.nn.StackRNN(len(task.vocab), 5)
    out = model(tt.tensor(batch.one_hot()))[0]
    return out.sum(), model


def test_grouping_by_scope_splits_a_group_rather_than_make_a_cycle():
    # a step's "stack" scope holds the read (before the controller) and the update (after
    # it): one box for both would be a cycle stack -> controller -> stack
    loss, _ = stack_loss()
    lay = loss.graph().layout(group="scope")
    check_routes(lay)
    keys = [v.key for v in lay.vertices.values() if v.kind == "group"]
    assert "stackrnn/t=1/stack" in keys and ("stackrnn/t=1/stack", 2) in keys
    assert lay.layers[("stackrnn/t=1/stack", 2)] > lay.layers["stackrnn/t=1/controller/hidden"] \
        > lay.layers["stackrnn/t=1/stack"]


def test_a_constant_made_inside_a_step_does_not_split_its_box():
    # the stack update makes its 'empty' cell (a constant) in the middle of each step;
    # a leaf has no inputs, so it cannot close a cycle: one box per step, not three
    loss, _ = stack_loss()
    lay = loss.graph().layout(group="step")
    check_routes(lay)
    steps = [v.key for v in lay.vertices.values() if v.kind == "group"
             and not str(v.key).startswith("prepared")]
    assert len(steps) == len(set(steps)) == loss.node.inputs[0].shape[0]
    assert all(isinstance(k, str) for k in steps)            # never a (key, chunk) pair


def test_far_readers_of_a_parameter_get_dashed_copies_one_layer_below():
    loss, model = stack_loss()
    lay = loss.graph().layout()
    check_routes(lay)
    assert lay.stubs
    for (kind, source, reader), (x, y) in lay.stubs.items():
        assert kind == "stub" and lay.layers[lay.vertices[reader].key] == y + 1


def test_one_step_with_edge_widths_by_gradient(tmp_path):
    loss, model = stack_loss()
    flow = tt.trace.flow(loss, model, retain_graph=True)
    step = lambda node: tt.trace.step_of(node.scope) == 2      # noqa: E731
    lay = flow.graph.layout(nodes=step, edge_weights=flow.edges)
    outside = [v.label.split(" ")[0] for v in lay.vertices.values() if v.kind == "outside"]
    assert set(outside) == {"from", "to"}            # inputs from and readers in other steps
    for (s, t), w in lay.weights.items():             # the gradient coming in from later
        if isinstance(t, tuple) and t[0] == "to":
            assert w == pytest.approx(sum(flow.edges.get((t[1], i), 0.0)
                                          for i, x in enumerate(t[1].inputs)
                                          if x.node is s))
    fig = flow.draw(nodes=step, path=tmp_path / "step.png")
    try:
        widths = {}
        for patch in fig.axes[0].patches:
            if isinstance(patch, FancyArrowPatch):
                widths.setdefault(patch.get_linestyle(), []).append(patch.get_linewidth())
        solid = sorted(widths.get("-", []))
        weights = sorted(w for w in lay.weights.values() if w > 0)
        assert len(solid) == len(weights)
        big = [(lw, w) for lw, w in zip(solid, weights) if w > 0.2 * weights[-1]]
        ratios = [lw / w for lw, w in big]                 # width proportional to weight
        assert max(ratios) == pytest.approx(min(ratios), rel=1e-9)
        assert (tmp_path / "step.png").stat().st_size > 5000
    finally:
        plt.close(fig)


def test_draw_arguments_are_checked():
    loss, _ = stack_loss()
    graph = loss.graph()
    with pytest.raises(ValueError, match="group must be"):
        graph.layout(group="time")
    with pytest.raises(TypeError, match="nodes must be a predicate"):
        graph.layout(nodes=3)
    with pytest.raises(TypeError, match=r"edge_weights must be a dict.*flow\(\.\.\.\)\.edges"):
        graph.layout(edge_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="too many.*group="):
        graph.draw(max_nodes=10)
    _, other = mlp_loss()
    with pytest.raises(ValueError, match="not in this graph"):
        graph.layout(nodes=other.graph().nodes)


def test_isotonic_step_is_the_least_squares_fit():
    values = [3.0, 1.0, 2.0, 5.0, 4.0]
    fitted = drawing._isotonic(values)
    assert fitted == pytest.approx([2.0, 2.0, 2.0, 4.5, 4.5])
    assert all(a <= b for a, b in zip(fitted, fitted[1:]))
