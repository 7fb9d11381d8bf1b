"""The graph explorer's page, read back in Python (``tinytrace.explorer``): the data in the
page is the graph (nodes, edges, scopes, values, gradients, flow, splits), every group's
drawing is a DAG whose edges climb one layer per waypoint (so none runs through a box),
the file fetches nothing, the same graph gives the same bytes, and bad input is refused.
What a user sees in a browser is tested in test_explorer_browser.py."""
import json
import re

import numpy as np
import pytest

import tinytrace as tt
import tinytrace.nn.functional as F
from tinytrace import explorer


class MLP(tt.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.fc1, self.fc2 = tt.nn.Linear(4, 8, rng=rng), tt.nn.Linear(8, 3, rng=rng)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())


class Seq(tt.nn.Module):
    def __init__(self, steps=5, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.lstm = tt.nn.LSTM(3, 4, mode="traced", rng=rng)
        self.head = tt.nn.Linear(4, 2, rng=rng)
        self.x = tt.tensor(np.random.default_rng(1).normal(size=(steps, 2, 3)).astype(np.float32))

    def forward(self):
        out, _ = self.lstm(self.x)
        return (self.head(out[-1]) ** 2).mean()


def mlp_loss(seed=0):
    model = MLP(seed)
    x = tt.tensor(np.random.default_rng(seed).normal(size=(5, 4)).astype(np.float32), name="x")
    return model, F.cross_entropy(model(x), np.array([0, 2, 1, 0, 2]))


def read_page(path):
    """The page's text and its embedded data."""
    text = path.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="tinytrace-data">(.*?)</script>',
                      text, re.S)
    assert match, "no data block in the page"
    return text, json.loads(match.group(1))


def nodes_of(data):
    return rows(data["nodes"])


def leaves_of(data):
    return rows(data["leaves"])


def rows(columns):
    """The page's nodes or leaves (stored as columns) as one dict per row."""
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def check_layouts(data):
    """Every group's drawing: each item in exactly one layer; every edge's chain climbs one
    layer per step from a source to a target of that group (or its ports), so it has a
    waypoint on every layer it crosses; x keeps the order within a layer."""
    for gid, group in enumerate(data["groups"]):
        g = dict(group, **explorer.group_drawing(data, gid))
        layer = {}
        for k, row in enumerate(g["rows"]):
            xs = [x for _, x in row]
            assert xs == sorted(xs), (g["label"], k)
            for ref, _ in row:
                assert ref not in layer, (g["label"], ref)
                layer[ref] = k
        for item in g["items"]:
            assert item in layer, (g["label"], item)
        for k, chain in g["edges"]:
            owner, a, b = data["edges"][k]
            assert owner == gid
            assert chain[-1] == b or b == "O" and chain[-1] == f"t{a}>O"
            assert chain[0] == a or chain[0] == f"s{a}>{b}"
            ys = [layer[ref] for ref in chain]
            assert ys == list(range(ys[0], ys[0] + len(ys))), (g["label"], chain, ys)
            assert all(ref.startswith("d") for ref in chain[1:-1])


def items_under(data, gid):
    out = []
    for ref in data["groups"][gid]["items"]:
        out.append(ref)
        if ref[0] == "g":
            out += items_under(data, int(ref[1:]))
    return out


def test_the_page_holds_every_node_with_its_op_scope_shape_dtype_and_inputs(tmp_path):
    model, loss = mlp_loss()
    graph = loss.graph()
    path = graph.to_html(tmp_path / "mlp.html")
    text, data = read_page(path)
    S = data["strings"]
    assert len(nodes_of(data)) == len(graph)
    leaf_index = {id(t): k for k, t in enumerate(graph.leaves)}
    for i, (node, entry) in enumerate(zip(graph, nodes_of(data))):
        assert S[entry["op"]] == node.op
        assert S[entry["scope"]] == node.scope
        assert entry["shape"] == list(node.output.shape)
        assert S[entry["dtype"]] == str(node.output.dtype)
        expect = [f"n{graph.index[t.node]}" if t.node is not None else f"l{leaf_index[id(t)]}"
                  for t in node.inputs]
        assert entry["inputs"] == expect
        # the group a node is drawn in is its scope (no batching in a graph this small)
        assert S[data["groups"][entry["group"]]["scope"]] == node.scope
        assert f"n{i}" in data["groups"][entry["group"]]["items"]
    assert [S[leaf["name"]] for leaf in leaves_of(data)] == [graph.label(t) for t in graph.leaves]
    assert [leaf["param"] for leaf in leaves_of(data)] == [t.requires_grad for t in graph.leaves]
    scopes = {S[g["scope"]] for g in data["groups"]}
    assert scopes == {"", "mlp", "mlp/fc1", "mlp/fc2"} | {n.scope for n in graph}
    check_layouts(data)
    assert data["title"] in text


def test_every_edge_of_the_graph_is_drawn_through_the_groups_it_crosses(tmp_path):
    graph = Seq(steps=4)().graph()
    data = explorer.page_data(graph)
    edges = data["edges"]
    groups = data["groups"]

    def item_in(gid, i):
        """node i's item in group gid (itself, or the child group holding it)."""
        g = nodes_of(data)[i]["group"]
        ref = f"n{i}"
        while g != gid:
            ref, g = f"g{g}", groups[g]["parent"]
            assert g is not None
        return ref
    drawn = {(e[0], e[1], e[2]) for e in edges}
    for i, node in enumerate(graph):
        for t in node.inputs:
            gi = nodes_of(data)[i]["group"]
            if t.node is None:
                ref = f"l{[id(x) for x in graph.leaves].index(id(t))}"
                assert (gi, ref, f"n{i}") in drawn
                continue
            j = graph.index[t.node]
            chain_i, chain_j = [], []
            for g, chain in ((gi, chain_i), (nodes_of(data)[j]["group"], chain_j)):
                while g is not None:
                    chain.insert(0, g)
                    g = groups[g]["parent"]
            common = [a for a, b in zip(chain_i, chain_j) if a == b][-1]
            assert (common, item_in(common, j), item_in(common, i)) in drawn
            for g in chain_j[chain_j.index(common) + 1:]:       # out through each frame
                assert (g, item_in(g, j), "O") in drawn
            for g in chain_i[chain_i.index(common) + 1:]:       # and in through each frame
                assert (g, "I", item_in(g, i)) in drawn
    check_layouts(data)


def test_a_traced_lstm_is_one_group_with_a_step_per_time_step_and_its_gates_inside():
    steps = 6
    graph = Seq(steps=steps)().graph()
    data = explorer.page_data(graph)
    S = data["strings"]
    by_scope = {S[g["scope"]]: g for g in data["groups"]}
    lstm = dict(by_scope["seq/lstm"], **explorer.group_drawing(
        data, data["groups"].index(by_scope["seq/lstm"])))
    labels = [data["groups"][int(r[1:])]["label"] for r in lstm["items"] if r[0] == "g"]
    assert [f"t={t}" for t in range(steps)] == [x for x in labels if x.startswith("t=")]
    step3 = by_scope["seq/lstm/t=3"]
    gates = {data["groups"][int(r[1:])]["label"] for r in step3["items"] if r[0] == "g"}
    assert {"input_gate", "forget_gate", "output_gate"} <= gates
    # the steps form the time axis: step t is drawn in a layer above step t-1
    layer = {ref: k for k, row in enumerate(lstm["rows"]) for ref, _ in row}
    step_refs = [r for r in lstm["items"] if r[0] == "g"
                 and data["groups"][int(r[1:])]["label"].startswith("t=")]
    assert [layer[r] for r in step_refs] == sorted(layer[r] for r in step_refs)
    assert len({layer[r] for r in step_refs}) == steps
    check_layouts(data)
    # every step and every gate has the same shape: their drawings are stored once
    assert len(data["layouts"]) <= len(data["groups"]) // 3


def test_values_are_summarised_with_a_preview(tmp_path):
    model, loss = mlp_loss()
    graph = loss.graph()
    data = explorer.page_data(graph)
    snap = data["steps"][0]
    for node, stats in zip(graph, snap["values"]):
        a = node.output.data.astype(np.float64).ravel()
        expect = [a.mean(), a.std(), a.min(), a.max(), np.linalg.norm(a)]
        np.testing.assert_allclose(stats[:5], expect, rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(stats[5:], a[:explorer.PREVIEW], rtol=1e-3, atol=1e-6)
    for leaf, stats in zip(graph.leaves, snap["leafvalues"]):
        np.testing.assert_allclose(stats[2:4], [leaf.data.min(), leaf.data.max()], rtol=1e-3)
    # nothing retained and no backward yet: no gradients to show
    assert all(g is None for g in snap["grads"])


def test_gradients_of_every_node_and_of_the_parameters(tmp_path):
    model, loss = mlp_loss()
    graph = loss.graph()
    hidden = [n for n in graph if n.op == "relu"][0]
    data = explorer.page_data(graph, gradients=True)
    snap = data["steps"][0]
    # dL/d(relu output), by tt.grad
    g = tt.grad(loss, hidden.output, retain_graph=True)
    np.testing.assert_allclose(snap["grads"][graph.index[hidden]][4], np.linalg.norm(g),
                               rtol=1e-3)
    w = model.fc1.weight
    gw = tt.grad(loss, w, retain_graph=True)
    k = [id(t) for t in graph.leaves].index(id(w))
    np.testing.assert_allclose(snap["leafgrads"][k][4], np.linalg.norm(gw), rtol=1e-3)
    assert w.grad is None                                  # nothing accumulated
    # without gradients=True, retained gradients and leaves' .grad are shown
    hidden.output.retain_grad()
    loss.backward()
    snap = explorer.page_data(graph)["steps"][0]
    np.testing.assert_allclose(snap["grads"][graph.index[hidden]][4], np.linalg.norm(g),
                               rtol=1e-3)
    np.testing.assert_allclose(snap["leafgrads"][k][4], np.linalg.norm(gw), rtol=1e-3)


def test_the_saved_tensors_are_the_inputs_the_vjp_reads():
    w = tt.tensor([1.0, 2.0], requires_grad=True, name="w")
    a = w + 1.0                                 # add reads no values
    b = a * w                                   # mul reads both
    c = b.exp()                                 # exp reads its own output
    graph = c.sum().graph()
    nodes = nodes_of(explorer.page_data(graph))
    by_op = {graph[i].op: n for i, n in enumerate(nodes)}
    assert by_op["add"]["saved"] == []
    assert sorted(by_op["mul"]["saved"]) == [0, 1]          # both inputs
    assert by_op["exp"]["saved"] == [-1]                     # its own output only


def test_sources_records_the_file_and_line_of_every_node():
    w = tt.tensor([1.0, 2.0], requires_grad=True)
    with explorer.sources():
        y = (w * 3.0).sum(); line = __import__("inspect").currentframe().f_lineno  # noqa: E702
    data = explorer.page_data(y.graph())
    S = data["strings"]
    for node in nodes_of(data):
        assert S[node["src"][0]] == __file__
        assert node["src"][1] == line
        assert S[node["src"][2]] == "test_sources_records_the_file_and_line_of_every_node"
    # inside a layer: the layer's line, and the script's line it was called from
    model = MLP()
    with explorer.sources():
        out = model(tt.randn(2, 4))
    data = explorer.page_data(out.sum().graph())
    S = data["strings"]
    fc = [n for n in nodes_of(data) if S[n["scope"]] == "mlp/fc1"][0]
    assert S[fc["src"][0]].endswith("layers.py")
    assert S[fc["src"][3]] == __file__
    # outside the block, nothing is recorded (and nodes are plain Nodes again)
    z = (w * 2.0).sum()
    assert type(z.node) is tt.autograd.Node
    assert all(src is None for src in explorer.page_data(z.graph())["nodes"]["src"])


def test_flow_gives_edge_widths_and_adjoints_summed_along_each_drawn_edge():
    model = Seq(steps=3)
    loss = model()
    graph = loss.graph()
    flow = tt.trace.flow(loss, retain_graph=True)
    data = explorer.page_data(graph, flow=flow)
    snap = data["steps"][0]
    for node, value in zip(graph, snap["adjoints"]):
        if node in flow.adjoints:
            assert value == pytest.approx(flow.adjoints[node], rel=1e-3)
    # every drawn edge between two items of a group (not a port) is as wide as the sum
    # of the messages along the graph's edges from under its source to under its target
    nodes = nodes_of(data)
    leaf_ids = {id(t): k for k, t in enumerate(graph.leaves)}
    groups = data["groups"]

    def items_of(ref, gid):
        """ref's own item in every group above it: {group: item}."""
        out, g = {}, nodes[int(ref[1:])]["group"] if ref[0] == "n" else None
        out[g] = ref
        while groups[g]["parent"] is not None:
            out[groups[g]["parent"]] = f"g{g}"
            g = groups[g]["parent"]
        return out
    want = {}
    for (node, slot), value in flow.edges.items():
        i = graph.index[node]
        t = node.inputs[slot]
        mine = items_of(f"n{i}", None)
        if t.node is None:
            want[(nodes[i]["group"], f"l{leaf_ids[id(t)]}", f"n{i}")] = value
            continue
        theirs = items_of(f"n{graph.index[t.node]}", None)
        for g in mine:
            if g in theirs and mine[g] != theirs[g]:      # the group where they part
                key = (g, theirs[g], mine[g])
                want[key] = want.get(key, 0.0) + value
    checked = 0
    for k, (g, a, b) in enumerate(data["edges"]):
        if a != "I" and b != "O":
            assert snap["flow"][k] == pytest.approx(want.get((g, a, b), 0.0), rel=2e-3,
                                                   abs=1e-9), (g, a, b)
            checked += 1
    assert checked > 100


def test_flow_from_another_graph_is_refused():
    _, loss = mlp_loss()
    _, other = mlp_loss(seed=1)
    flow = tt.trace.flow(other, retain_graph=True)
    with pytest.raises(ValueError, match="another graph"):
        explorer.page_data(loss.graph(), flow=flow)
    with pytest.raises(TypeError, match="tt.trace.flow"):
        explorer.page_data(loss.graph(), flow={"edges": 1})


def test_split_rows_are_tt_trace_split_and_members_its_component():
    model = Seq(steps=3)
    loss = model()
    graph = loss.graph()
    data = explorer.page_data(graph, split=["*/forget_gate"])
    sp = data["steps"][0]["splits"][0]
    want = tt.trace.split(loss, "*/forget_gate", retain_graph=True)
    assert sp["component"] == "*/forget_gate"
    assert [row[0] for row in sp["params"]] == list(want)
    for row in sp["params"]:
        p = want[row[0]]
        assert row[1] == pytest.approx(np.linalg.norm(p.grad), rel=1e-3, abs=1e-9)
        assert row[2] == pytest.approx(np.linalg.norm(p.via), rel=1e-3, abs=1e-9)
        assert row[6] == p.inside
    assert sp["members"] == [i for i, n in enumerate(graph) if "forget_gate" in n.scope]


def test_recorder_keeps_one_snapshot_per_training_step(tmp_path):
    model = MLP()
    opt = tt.optim.SGD(model.parameters(), lr=0.5)
    x = tt.tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    y = np.array([0, 2, 1, 0, 2])
    rec = explorer.Recorder(split=["*/fc1"])
    losses = []
    for step in range(3):
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
        rec.add(loss, label=f"step {step}")
        loss.backward()
        opt.step()
        opt.zero_grad()
    text, data = read_page(rec.to_html(tmp_path / "train.html"))
    assert [s["label"] for s in data["steps"]] == ["step 0", "step 1", "step 2"]
    assert [s["loss"] for s in data["steps"]] == pytest.approx(losses, rel=1e-3)
    assert data["steps"][0]["values"] != data["steps"][2]["values"]    # it trained
    assert all(s["flow"] and s["adjoints"] and s["splits"] for s in data["steps"])
    assert all(g is not None for g in data["steps"][1]["grads"])
    with pytest.raises(ValueError, match="different graph"):
        rec.add((model.fc1(x) ** 2).mean())
    with pytest.raises(ValueError, match="no step recorded"):
        explorer.Recorder().to_html(tmp_path / "empty.html")
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    with pytest.raises(ValueError, match="before loss.backward"):
        explorer.Recorder().add(loss)


def test_the_page_fetches_nothing(tmp_path):
    model = Seq(steps=3)
    loss = model()
    flow = tt.trace.flow(loss, retain_graph=True)
    text, _ = read_page(loss.graph().to_html(tmp_path / "p.html", flow=flow,
                                             split=["*/input_gate"], gradients=True))
    lowered = text.lower()
    for word in ("http:", "https:", "//cdn", "fetch(", "xmlhttprequest", "import(", "url(",
                 "<link", "@import", "websocket", "src="):
        assert word not in lowered, word
    assert lowered.count("<script") == 2        # the data, and the inline script


def test_the_same_graph_gives_the_same_bytes(tmp_path):
    a = mlp_loss(seed=3)[1].graph().to_html(tmp_path / "a.html")
    b = mlp_loss(seed=3)[1].graph().to_html(tmp_path / "b.html")      # recorded again
    assert a.read_bytes() == b.read_bytes()
    c = mlp_loss(seed=4)[1].graph().to_html(tmp_path / "c.html")
    assert a.read_bytes() != c.read_bytes()


def test_text_that_looks_like_html_cannot_end_the_data_block(tmp_path):
    w = tt.tensor([1.0], requires_grad=True, name="</script><script>alert(1)</script>")
    text, data = read_page((w * 2).sum().graph().to_html(tmp_path / "x.html",
                                                          title="<b>& title</b>"))
    assert data["strings"][leaves_of(data)[0]["name"]] == w.name
    assert "<b>& title</b>" not in text and "&lt;b&gt;&amp; title&lt;/b&gt;" in text


def test_large_groups_are_cut_into_batches_and_a_scope_entered_twice_into_chunks():
    w = tt.tensor(np.ones(3), requires_grad=True, name="w")
    h = w
    for _ in range(400):                           # 400 nodes in one scope
        h = h * 1.001
    data = explorer.page_data(h.sum().graph())
    for g in data["groups"]:
        assert len([r for r in g["items"] if r[0] != "l"]) <= explorer.MAX_ITEMS
    assert sorted(int(r[1:]) for r in items_under(data, 0) if r[0] == "n") == list(range(401))
    check_layouts(data)
    # a scope entered, left for other work on its output, and entered again: two chunks,
    # so neither reads the other in both directions
    with tt.scope("a"):
        u = w * 2.0
    v = u + 1.0
    with tt.scope("a"):
        z = (v * u).sum()
    data = explorer.page_data(z.graph())
    labels = sorted(g["label"] for g in data["groups"] if data["strings"][g["scope"]] == "a")
    assert labels == ["a", "a (2)"]
    check_layouts(data)


def test_bad_arguments_are_refused(tmp_path):
    _, loss = mlp_loss()
    graph = loss.graph()
    with pytest.raises(ValueError, match=r"\.html"):
        graph.to_html(tmp_path / "graph.png")
    with pytest.raises(TypeError, match="Graph"):
        explorer.to_html(loss, tmp_path / "g.html")
    leaf = tt.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="no nodes"):
        leaf.graph().to_html(tmp_path / "g.html")
    loss.backward()                         # frees the graph: no gradients to compute now
    with pytest.raises(ValueError, match="gradients=True"):
        graph.to_html(tmp_path / "g.html", gradients=True)


SCRIPT = '''
import sys
import numpy as np
import tinytrace as tt

class Net(tt.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = tt.nn.Linear(3, 2, rng=np.random.default_rng(0))

    def forward(self, x):
        return self.fc(x).tanh()

net = Net()
loss = (net(tt.tensor(np.ones((4, 3), dtype=np.float32))) ** 2).sum()
if "--backward" in sys.argv:
    loss.backward()
'''


def test_the_command_line_runs_a_script_and_writes_its_page(tmp_path, capsys):
    from tinytrace.__main__ import main
    script = tmp_path / "net.py"
    script.write_text(SCRIPT)
    assert main(["explore", "--split", "*/fc", str(script)]) == 0
    assert "with gradients and flow" in capsys.readouterr().out
    _, data = read_page(tmp_path / "net.html")              # beside the script by default
    S = data["strings"]
    assert [S[n["op"]] for n in nodes_of(data)] == ["transpose", "matmul", "add", "tanh",
                                                    "pow", "sum"]
    assert S[nodes_of(data)[3]["src"][0]] == str(script)     # the script's own lines
    snap = data["steps"][0]
    assert snap["flow"] and snap["adjoints"] and snap["splits"][0]["component"] == "*/fc"
    assert all(g is not None for g in snap["grads"])
    # after backward() the graph is freed: values only (and the leaves' .grad)
    out = tmp_path / "after.html"
    assert main(["explore", "-o", str(out), str(script), "--backward"]) == 0
    assert "values only" in capsys.readouterr().out
    snap = read_page(out)[1]["steps"][0]
    assert "flow" not in snap and snap["leafgrads"][0] is not None     # fc.weight.grad
    assert main(["explore", "--split", "fc", str(script), "--backward"]) == 2
    assert "retain_graph" in capsys.readouterr().err
    assert main(["explore", "--tensor", "lost", str(script)]) == 2
    err = capsys.readouterr().err
    assert "no tensor named 'lost'" in err and "with a graph: loss" in err
    assert main(["explore", str(tmp_path / "missing.py")]) == 2


def test_tt_explorer_is_the_explorer_module_on_first_use():
    assert tt.explorer is explorer and tt.explorer.to_html is explorer.to_html
