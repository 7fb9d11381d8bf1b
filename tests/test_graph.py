"""The recorded graph as an object: nodes and op names of known expressions, the scopes a
small MLP records, text/tree printing, gradient paths, DOT export (checked by a small
structural DOT parser, not a golden string) and drawing with matplotlib alone."""
import re

import numpy as np
import pytest

import tinytrace as tt
from tinytrace import nn


def leaf(values, name=None):
    return tt.tensor(values, requires_grad=True, dtype=tt.float64, name=name)


class MLP(nn.Module):
    def __init__(self, sizes=(3, 4, 2)):
        super().__init__()
        self.fc1 = nn.Linear(sizes[0], sizes[1], dtype=np.float64, rng=1)
        self.fc2 = nn.Linear(sizes[1], sizes[2], dtype=np.float64, rng=2)

    def forward(self, x):
        return self.fc2(tt.relu(self.fc1(x)))


def mlp_loss(model=None, batch=5):
    model = model or MLP()
    x = tt.tensor(np.random.default_rng(0).standard_normal((batch, 3)))
    y = tt.tensor(np.zeros((batch, 2)))
    return model, nn.functional.mse_loss(model(x), y)


# ---- nodes of a known expression -------------------------------------------------------------

def test_nodes_of_a_known_expression_in_recording_order():
    a, b, c = leaf([1.0, 2.0], "a"), leaf([3.0, 4.0], "b"), leaf([0.5, 0.5], "c")
    ab = a * b
    s = ab + c
    t = s.tanh()
    loss = t.sum()
    g = loss.graph()

    assert len(g) == 4
    assert [n.op for n in g] == ["mul", "add", "tanh", "sum"]
    assert g.op_counts() == {"mul": 1, "add": 1, "tanh": 1, "sum": 1}
    assert [n.output is o for n, o in zip(g, [ab, s, t, loss])] == [True] * 4
    mul, add, tanh, total = g.nodes
    assert mul.inputs[0] is a and mul.inputs[1] is b
    assert add.inputs[0] is ab and add.inputs[1] is c
    assert len(tanh.inputs) == 1 and tanh.inputs[0] is s
    assert len(total.inputs) == 1 and total.inputs[0] is t
    assert total.attrs == {"axis": None, "keepdims": False}
    assert g.leaves == [a, b, c] and g.parameters == [a, b, c]
    assert all(n.scope == "" for n in g)
    assert [n.seq for n in g] == sorted(n.seq for n in g)


def test_constants_are_leaves_but_not_parameters_and_untracked_ops_are_not_nodes():
    x = leaf([1.0, 2.0], "x")
    k = tt.tensor([3.0, 4.0], dtype=tt.float64)
    const_only = (k * 2.0).exp()                 # nothing requires grad: no nodes at all
    assert const_only.node is None and len(const_only.graph()) == 0
    y = (x * 2.0 + const_only).sum()
    g = y.graph()
    assert [n.op for n in g] == ["mul", "add", "sum"]
    assert len(g.leaves) == 3 and g.leaves[0] is x
    assert g.parameters == [x]
    assert g.label(x) == "x" and g.label(g.leaves[1]) == "const()"
    assert g.label(g.nodes[0]) == "#0 mul"


def test_graph_of_a_leaf_is_empty():
    x = leaf([1.0])
    g = x.graph()
    assert len(g) == 0 and g.paths(x) == [] and g.tree() == g.label(x)


def test_a_node_read_twice_lists_its_consumers_twice():
    x = leaf([1.0, 2.0])
    h = x.exp()
    y = (h * h).sum()
    g = y.graph()
    assert [n.op for n in g] == ["exp", "mul", "sum"]
    assert g.consumers[h.node] == [g.nodes[1], g.nodes[1]]
    assert g.consumers[id(x)] == [g.nodes[0]]


# ---- scopes ----------------------------------------------------------------------------------

MLP_OPS = [("transpose", "mlp/fc1"), ("matmul", "mlp/fc1"), ("add", "mlp/fc1"),
           ("relu", "mlp"),
           ("transpose", "mlp/fc2"), ("matmul", "mlp/fc2"), ("add", "mlp/fc2"),
           ("sub", ""), ("mul", ""), ("mean", "")]


def test_scopes_of_a_small_mlp():
    model, loss = mlp_loss()
    g = loss.graph()
    assert [(n.op, n.scope) for n in g] == MLP_OPS
    groups = g.by_scope()
    assert set(groups) == {"mlp/fc1", "mlp", "mlp/fc2", ""}
    assert [n.op for n in groups["mlp/fc2"]] == ["transpose", "matmul", "add"]
    # parameters appear as named leaves
    names = [g.label(p) for p in g.parameters]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert tt.current_scope() == ""


def test_user_scopes_nest_around_modules_and_each_other():
    model = MLP()
    x = tt.tensor(np.ones((2, 3)))
    with tt.scope("outer") as path:
        assert path == "outer"
        with tt.scope("inner") as inner:
            assert inner == "outer/inner" and tt.current_scope() == "outer/inner"
            out = model(x)
        extra = out * 2.0
    assert tt.current_scope() == ""
    loss = extra.sum()
    scopes = [n.scope for n in loss.graph()]
    assert scopes == ["outer/inner/mlp/fc1"] * 3 + ["outer/inner/mlp"] + \
        ["outer/inner/mlp/fc2"] * 3 + ["outer", ""]


def test_scope_is_restored_after_an_error_and_names_are_checked():
    model = MLP()
    with pytest.raises(tt.ShapeError):
        model(tt.tensor(np.ones((2, 5))))       # wrong input width
    assert tt.current_scope() == ""
    for bad in ["", "a/b"]:
        with pytest.raises(ValueError):
            with tt.scope(bad):
                pass


def test_sequential_and_nested_module_scopes():
    seq = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.Tanh(),
                        nn.Linear(4, 1, dtype=np.float64))

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = seq

        def forward(self, x):
            return self.body(x)

    y = Outer()(tt.tensor(np.ones((2, 3)))).sum()
    scopes = [n.scope for n in y.graph()]
    assert scopes == ["outer/body/0"] * 3 + ["outer/body/1"] + ["outer/body/2"] * 3 + [""]


# ---- text ------------------------------------------------------------------------------------

def test_table_has_one_row_per_node_and_mentions_every_op_and_scope():
    _, loss = mlp_loss()
    g = loss.graph()
    table = g.table()
    lines = table.splitlines()
    assert len(lines) == len(g) + 2                     # header + rule + one per node
    assert lines[0].split() == ["#", "op", "scope", "shape", "inputs", "attrs"]
    for i, node in enumerate(g):
        row = lines[i + 2].split()
        assert row[0] == str(i) and row[1] == node.op
        assert row[2] == (node.scope or "-")
    assert "(5, 2)" in lines[2 + 6]                     # fc2's add: the prediction shape
    assert "fc1.weight" in table and "fc2.bias" in table
    assert str(g) == table
    assert repr(g) == "<Graph: 10 nodes, 6 leaves, 4 scopes>"


def test_tree_mentions_every_op_and_refers_back_to_shared_nodes():
    x = leaf([1.0, 2.0], "x")
    h = x.tanh()
    y = (h * h.exp()).sum()
    g = y.graph()
    tree = g.tree()
    ops_in_tree = re.findall(r"#\d+ (\w+)", tree)
    assert set(ops_in_tree) == {n.op for n in g}
    assert tree.splitlines()[0] == "#3 sum"
    assert tree.count("#0 tanh") == 2                  # once expanded, once as "(see #0"
    assert "(see #0 tanh)" in tree
    assert [line.strip() for line in tree.splitlines()].count("x") == 1   # leaf shown once

    _, loss = mlp_loss()
    tree = loss.graph().tree()
    for node in loss.graph():
        assert node.op in tree
    assert "[mlp/fc2]" in tree and "[mlp/fc1]" in tree


# ---- paths -----------------------------------------------------------------------------------

def _local_derivative(node, input_index):
    """d output / d input for the scalar elementwise ops used below."""
    x = node.inputs[input_index].data
    if node.op in ("add", "sum"):
        return 1.0
    if node.op == "tanh":
        return 1 - np.tanh(x) ** 2
    if node.op == "sigmoid":
        s = 1 / (1 + np.exp(-x))
        return s * (1 - s)
    if node.op == "mul":
        return node.inputs[1 - input_index].data
    raise AssertionError(node.op)


def _chain_rule_over_paths(paths, target):
    total = 0.0
    for path in paths:
        product = 1.0
        steps = path + [target]
        for node, below in zip(steps[:-1], steps[1:]):
            index = next(i for i, t in enumerate(node.inputs)
                         if (t is below) or (t.node is not None and t.node is below))
            product = product * _local_derivative(node, index)
        total = total + product
    return total


def test_paths_through_a_diamond():
    w = leaf(0.3, "w")
    a = w.tanh()
    b = w.sigmoid()
    loss = (a + b).sum()
    g = loss.graph()
    paths = g.paths(w)
    assert len(paths) == 2
    assert sorted([n.op for n in p] for p in paths) == [["sum", "add", "sigmoid"],
                                                        ["sum", "add", "tanh"]]
    assert all(p[0] is loss.node for p in paths)


@pytest.mark.parametrize("layers", [1, 3, 5])
def test_stacked_diamonds_double_the_paths_and_the_paths_sum_to_the_gradient(layers):
    w = leaf(0.4, "w")
    h = w
    for _ in range(layers):
        h = h.tanh() + h.sigmoid()
    loss = h.sum()
    loss.backward()
    g = loss.graph()
    paths = g.paths(w)
    assert len(paths) == 2 ** layers
    assert len({tuple(id(n) for n in p) for p in paths}) == 2 ** layers   # all distinct
    # the gradient is the sum over paths of the product of local derivatives
    np.testing.assert_allclose(_chain_rule_over_paths(paths, w), w.grad, rtol=1e-12)


def test_paths_to_an_interior_node_and_to_an_unrelated_tensor():
    w = leaf(0.4, "w")
    mid = w.tanh() + w.sigmoid()
    loss = (mid.tanh() + mid.sigmoid()).sum()
    g = loss.graph()
    to_mid = g.paths(mid.node)
    assert len(to_mid) == 2 and all(p[-1] is mid.node for p in to_mid)
    assert g.paths(leaf(1.0)) == []
    with pytest.raises(ValueError):
        g.paths(w, limit=3)                              # 4 paths > limit


def test_paths_to_a_weight_of_the_mlp():
    model, loss = mlp_loss()
    g = loss.graph()
    paths = g.paths(model.fc1.weight)
    # mean <- mul(diff, diff) reads diff twice, so the two slots give two paths
    assert len(paths) == 2
    for path in paths:
        assert [n.op for n in path] == ["mean", "mul", "sub", "add", "matmul", "relu",
                                        "add", "matmul", "transpose"]


# ---- DOT -------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(->)|([{}\[\];,=])|"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_.]+))')


def _tokens(text):
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m and m.end() > pos, f"DOT: cannot tokenize at {text[pos:pos + 30]!r}"
        arrow, punct, quoted, ident = m.groups()
        if quoted is not None:
            out.append(("str", re.sub(r"\\(.)", r"\1", quoted)))
        else:
            out.append(("sym", arrow or punct) if (arrow or punct) else ("id", ident))
        pos = m.end()
    return out


def parse_dot(text):
    """A small parser for the DOT subset a digraph needs: graph/node/edge statements,
    attribute lists and nested subgraphs. Returns nodes {id: (attrs, cluster)}, edges
    [(src, dst)] and clusters {name: attrs}; asserts on anything malformed."""
    toks = _tokens(text)
    i = 0

    def peek(k=0):
        return toks[i + k] if i + k < len(toks) else (None, None)

    def take(kind=None, value=None):
        nonlocal i
        tok = peek()
        assert tok[0] is not None, "DOT: unexpected end of text"
        assert kind is None or tok[0] == kind, f"DOT: expected {kind}, got {tok}"
        assert value is None or tok[1] == value, f"DOT: expected {value!r}, got {tok}"
        i += 1
        return tok[1]

    def name():
        tok = peek()
        assert tok[0] in ("id", "str"), f"DOT: expected a name, got {tok}"
        return take()

    def attr_list():
        attrs = {}
        take("sym", "[")
        while peek() != ("sym", "]"):
            key = name()
            take("sym", "=")
            attrs[key] = name()
            if peek() == ("sym", ","):
                take()
        take("sym", "]")
        return attrs

    nodes, edges, clusters = {}, [], {}

    def stmt_list(cluster):
        while peek() != ("sym", "}"):
            if peek() == ("id", "subgraph"):
                take()
                sub = name()
                assert sub not in clusters, f"DOT: subgraph {sub} declared twice"
                clusters[sub] = {}
                take("sym", "{")
                stmt_list(sub)
                take("sym", "}")
                continue
            first = name()
            if peek() == ("sym", "="):                       # graph attribute a=b;
                take()
                value = name()
                if cluster is not None:
                    clusters[cluster][first] = value
            elif peek() == ("sym", "->"):                    # edge a -> b [attrs];
                take()
                second = name()
                if peek() == ("sym", "["):
                    attr_list()
                edges.append((first, second))
            elif first in ("node", "edge", "graph"):         # default attributes
                attr_list()
            else:                                            # node declaration
                attrs = attr_list() if peek() == ("sym", "[") else {}
                assert first not in nodes, f"DOT: node {first} declared twice"
                nodes[first] = (attrs, cluster)
            take("sym", ";")

    take("id", "digraph")
    if peek()[0] in ("id", "str"):
        name()
    take("sym", "{")
    stmt_list(None)
    take("sym", "}")
    assert i == len(toks), "DOT: text after the closing brace"
    return nodes, edges, clusters


def test_dot_parser_rejects_malformed_text():
    good = 'digraph "g" {\n a [label="x"];\n b;\n a -> b;\n}'
    nodes, edges, _ = parse_dot(good)
    assert set(nodes) == {"a", "b"} and edges == [("a", "b")]
    for bad in ['digraph "g" {\n a;\n', 'digraph g { a; a; }', 'digraph g { a -> ; }',
                'digraph g { a [label="x" ; }', 'digraph g { a; } }']:
        with pytest.raises(AssertionError):
            parse_dot(bad)


def test_to_dot_of_an_mlp_parses_and_matches_the_graph():
    model, loss = mlp_loss()
    g = loss.graph()
    text = g.to_dot(name="my mlp")
    assert text.count("{") == text.count("}")
    nodes, edges, clusters = parse_dot(text)

    op_nodes = {k: v for k, v in nodes.items() if k.startswith("n")}
    leaf_nodes = {k: v for k, v in nodes.items() if k.startswith("leaf")}
    assert len(op_nodes) == len(g) and len(leaf_nodes) == len(g.leaves)
    assert len(nodes) == len(g) + len(g.leaves)
    # every edge refers to declared nodes, one edge per node input
    assert all(src in nodes and dst in nodes for src, dst in edges)
    assert len(edges) == sum(len(n.inputs) for n in g)
    for i, node in enumerate(g):
        attrs, cluster = op_nodes[f"n{i}"]
        assert attrs["label"] == node.op
        # one cluster per non-empty scope, labelled with that scope
        if node.scope:
            assert clusters[cluster]["label"] == node.scope
        else:
            assert cluster is None
        incoming = [src for src, dst in edges if dst == f"n{i}"]
        expected = [f"n{g.index[t.node]}" if t.node is not None
                    else f"leaf{next(j for j, l in enumerate(g.leaves) if l is t)}"
                    for t in node.inputs]
        assert incoming == expected
    assert sorted(c["label"] for c in clusters.values()) == ["mlp", "mlp/fc1", "mlp/fc2"]
    assert all(name.startswith("cluster") for name in clusters)
    leaf_labels = sorted(v[0]["label"] for v in leaf_nodes.values())
    assert leaf_labels == sorted(["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                  "const(5, 3)", "const(5, 2)"])


def test_to_dot_escapes_quotes_in_names():
    x = leaf([1.0], name='the "x" \\ input')
    y = (x * x).sum()
    nodes, edges, _ = parse_dot(y.graph().to_dot())
    assert nodes["leaf0"][0]["label"] == 'the "x" \\ input'
    assert edges == [("leaf0", "n0"), ("leaf0", "n0"), ("n0", "n1")]


# ---- drawing ---------------------------------------------------------------------------------

def test_draw_writes_a_png(tmp_path):
    import matplotlib.pyplot as plt
    _, loss = mlp_loss()
    path = tmp_path / "graph.png"
    fig = loss.graph().draw(path=path, title="mlp")
    try:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
        texts = {t.get_text() for t in fig.axes[0].texts}
        assert {"matmul", "relu", "mean", "fc1.weight"} <= texts
        assert fig.axes[0].get_title() == "mlp"
    finally:
        plt.close(fig)


def test_draw_refuses_a_huge_graph_and_layout_places_every_node():
    x = leaf(1.0)
    y = x
    for _ in range(50):
        y = y * 1.0
    g = y.graph()
    with pytest.raises(ValueError, match="max_nodes"):
        g.draw(max_nodes=10)
    pos = g.layout()
    assert len(pos) == len(g) + len(g.leaves)
    assert [pos[n][1] for n in g] == list(range(1, 51))   # one level per chain step
