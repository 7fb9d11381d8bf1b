"""The graph explorer: a recorded graph as one self-contained, interactive HTML page.

``graph.to_html("graph.html")`` writes a single file (script, style and data inline;
nothing is fetched, so it opens from ``file://`` and offline) in which

- scopes are nested, collapsible groups: a traced LSTM opens as one ``lstm`` box; expand
  it to see its steps ``t=0, t=1, ...`` (its time axis), expand ``t=7`` to see its gates
  and a gate to see its ops. A collapsed group is drawn as one box, so a graph of 100,000
  nodes opens with a handful of boxes; a group holding more than ``MAX_ITEMS`` items is
  cut into consecutive batches ("#120-#239"), so no single expansion draws thousands;
- search finds nodes by op, scope or parameter name;
- clicking a node shows its op, scope, shape, dtype, attributes, statistics of its value
  (and of its gradient, when known), the tensors its vjp saved and, if the forward ran
  inside ``tt.explorer.sources()``, the file and line that recorded it;
- with ``flow=tt.trace.flow(loss, retain_graph=True)``, edges are as wide as the gradient
  message they carry (``flow.edges``) and a heat overlay colours every box by its adjoint
  norm (a collapsed group: the sum over its nodes, as ``Flow.by_scope`` sums);
  ``split=["*/forget_gate"]`` adds the via/avoid split of each component (``tt.trace.split``);
- ``Recorder`` keeps several training steps (values, gradients, flow) and its page has a
  slider to scrub through them.

**Layout**, computed once here in Python. Every group is laid out on its own as a layered
drawing of its items (child groups, nodes, the leaves its nodes read), with the
crossing-reducing order and the coordinates of ``tinytrace.drawing``. An edge that leaves
a group ends at the group's *out port* (top border) and one that enters it starts at its
*in port* (bottom border), so each group's drawing is complete in itself and an edge between
two nodes far apart is the chain of its pieces, one per group it crosses. Long edges get a
waypoint on every layer they cross, and the page keeps a slot free for it in each layer, so
no edge runs through a box; a parameter-side box read far above gets a dashed copy there
(as ``Graph.draw`` does). The page only packs each layer again when a child's size changes
(an isotonic fit to these x positions), which is cheap.

A group's nodes are kept in chunks so that no two items of a group feed each other (a
scope entered twice around other work becomes ``name``, ``name (2)``): every drawing is
then a DAG.
"""
import contextlib
import html
import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np

from .. import drawing
from ..autograd import Node, grad as _grad
from ..graph import Graph

__all__ = ["to_html", "Recorder", "sources", "page_data", "group_drawing", "MAX_ITEMS"]

MAX_ITEMS = 120        # items of one group drawn at once; more are cut into batches
MAX_SPAN = 3           # a parameter-side box read more layers above gets a dashed copy
PREVIEW = 4            # first values of each tensor shown as they are
PX = 125.0             # page pixels per inch of drawing.py's coordinates
_HERE = Path(__file__).resolve().parent


# ---- where a node was recorded --------------------------------------------------------------

class _SourcedNode(Node):
    """A Node that also remembers the source line that recorded it (inside ``sources()``)."""

    __slots__ = ("source",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.source = _caller()


_ENGINE = tuple(str(Path(__file__).resolve().parent.parent / part) for part in
                ("ops", "tensor.py", "tensor_methods.py", "functions.py", "autograd.py",
                 "explorer"))
_PACKAGE = str(Path(__file__).resolve().parent.parent)


def _caller():
    """``(file, line, function, outer)``: the innermost frame outside tinytrace's op
    machinery (a layer's ``forward`` or your script), and ``outer``, the innermost frame
    outside the tinytrace package (your script), if that is another frame."""
    frame = sys._getframe(2)
    inner = outer = None
    while frame is not None:
        name = frame.f_code.co_filename
        if inner is None and not name.startswith(_ENGINE) and "contextlib" not in name:
            inner = (name, frame.f_lineno, frame.f_code.co_name)
        if inner is not None and not name.startswith(_PACKAGE) and "contextlib" not in name:
            outer = (name, frame.f_lineno, frame.f_code.co_name)
            break
        frame = frame.f_back
    if inner is None:
        return None
    return inner + (outer if outer != inner else None,)


@contextlib.contextmanager
def sources():
    """Inside this block every recorded node remembers the file and line that recorded it
    (the layer's code and your script's line), which the explorer's node panel shows.
    It costs a walk up the call stack per op, so it is off unless asked for."""
    from ..ops import registry
    previous = registry.Node
    registry.Node = _SourcedNode
    try:
        yield
    finally:
        registry.Node = previous


# ---- numbers ------------------------------------------------------------------------------

def _num(x):
    """A float for JSON: 4 significant digits; NaN and inf as strings JSON can hold."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(f"{x:.4g}")


def _stats(array, preview=PREVIEW):
    """``[mean, std, min, max, norm, first values...]`` of an array (over its finite
    entries; min and max as they are), or ``None``."""
    if array is None:
        return None
    a = np.asarray(getattr(array, "get", lambda: array)())   # a CuPy array comes home
    if a.dtype.kind not in "fiub" or a.size == 0:
        return None
    a = a.astype(np.float64).ravel()
    finite = a if np.isfinite(a).all() else a[np.isfinite(a)]
    if finite.size:
        # one pass for sum and sum of squares; the textbook variance loses digits only
        # when the mean dwarfs the spread, and then the two-pass one is used
        n, s1, s2 = finite.size, finite.sum(), finite @ finite
        mean = s1 / n
        var = s2 / n - mean * mean
        if var <= 1e-6 * (s2 / n):
            d = finite - mean
            var = (d @ d) / n
        out = [mean, math.sqrt(max(var, 0.0)), a.min(), a.max(), math.sqrt(s2)]
    else:
        out = [math.nan] * 5
    return [_num(v) for v in out] + [_num(v) for v in a[:preview]]


# ---- the group tree -----------------------------------------------------------------------

class _Group:
    __slots__ = ("id", "label", "scope", "parent", "items", "order", "open", "count", "kind")

    def __init__(self, gid, label, scope, parent, kind):
        self.id, self.label, self.scope, self.parent, self.kind = gid, label, scope, parent, kind
        self.items = []          # ("g", gid) | ("n", node index) | ("l", leaf index)
        self.order = {}          # item -> creation index
        self.open = {}           # scope segment -> the child group chunk nodes join now
        self.count = {}          # scope segment -> chunks made so far


def _tree(graph):
    """The groups: ``(groups, where)`` with ``where[i]`` the chain of group ids from the
    root to node ``i``'s innermost group."""
    groups = [_Group(0, "", "", None, "root")]
    index = graph.index
    where = []

    def item_in(g, i):
        """Node ``i``'s item in group ``g`` (``None`` if ``g`` is not on its chain)."""
        chain = where[i]
        depth = _depth[g]
        if depth >= len(chain) or chain[depth] != g:
            return None
        return ("g", chain[depth + 1]) if depth + 1 < len(chain) else ("n", i)

    _depth = {0: 0}
    for i, node in enumerate(graph.nodes):
        sources = [index[t.node] for t in node.inputs if t.node is not None]
        g = groups[0]
        chain = [0]
        path = node.scope.split("/") if node.scope else []
        for segment in path:
            key = g.open.get(segment)
            if key is not None:
                # joining that chunk must not make an edge between two items of g point
                # backwards (a cycle): a source that is a later sibling forces a new chunk
                mine = ("g", key)
                for s in sources:
                    item = item_in(g.id, s)
                    if item is not None and item != mine and g.order[item] > g.order[mine]:
                        key = None
                        break
            if key is None:
                n = g.count.get(segment, 0) + 1
                g.count[segment] = n
                scope = f"{g.scope}/{segment}" if g.scope else segment
                label = segment if n == 1 else f"{segment} ({n})"
                child = _Group(len(groups), label, scope, g.id, "scope")
                groups.append(child)
                _depth[child.id] = _depth[g.id] + 1
                g.order[("g", child.id)] = len(g.order)
                g.items.append(("g", child.id))
                g.open[segment] = key = child.id
            g = groups[key]
            chain.append(key)
        g.order[("n", i)] = len(g.order)
        g.items.append(("n", i))
        where.append(chain)
    return groups, where


def _batch(groups, where):
    """Cut every group with more than ``MAX_ITEMS`` items into batches of consecutive items
    (creation order is a topological order of a group's items, so batches form a DAG)."""
    for g in list(groups):
        while len(g.items) > MAX_ITEMS:
            size = MAX_ITEMS
            items, g.items, g.order = g.items, [], {}
            for start in range(0, len(items), size):
                part = items[start:start + size]
                b = _Group(len(groups), "", g.scope, g.id, "batch")
                groups.append(b)
                b.items = part
                b.order = {item: k for k, item in enumerate(part)}
                for kind, ref in part:
                    if kind == "g":
                        groups[ref].parent = b.id
                b.label = _batch_label(groups, b)
                g.order[("g", b.id)] = len(g.items)
                g.items.append(("g", b.id))
    # the chains change: recompute every node's chain from the parents
    innermost = {}
    for g in groups:
        for kind, ref in g.items:
            if kind == "n":
                innermost[ref] = g.id
    for i in range(len(where)):
        chain, gid = [], innermost[i]
        while gid is not None:
            chain.append(gid)
            gid = groups[gid].parent
        where[i] = chain[::-1]


def _group_label(g):
    return g.label or "(top)"


def _batch_label(groups, b):
    nodes = []
    stack = list(b.items)
    while stack:
        kind, ref = stack.pop()
        if kind == "n":
            nodes.append(ref)
        else:
            stack.extend(groups[ref].items)
    return f"#{min(nodes)}\u2013#{max(nodes)}" if nodes else "(empty)"


# ---- the page data --------------------------------------------------------------------------

def _shape(t):
    return list(t.shape) if t is not None else None


def page_data(graph, flow=None, split=(), gradients=False, title=None):
    """The data the page shows, as a JSON-ready dict (``to_html`` embeds it; the tests read
    it). See ``to_html`` for the arguments."""
    data, edge_map = _structure(graph)
    data["title"] = title or f"{len(graph.nodes)} nodes, {len(graph.leaves)} leaves"
    data["steps"] = [_snapshot(graph, flow, split, gradients, data, label="",
                               edge_map=edge_map)]
    return data


def _structure(graph):
    """Everything that does not change from one training step to the next: nodes, leaves,
    groups and their layouts. Returns ``(data, edge_map)``: ``edge_map[(node index, input
    index)]`` lists the group-level edges that node-level edge is drawn as."""
    if not isinstance(graph, Graph):
        raise TypeError(f"to_html: expected a tinytrace Graph (loss.graph()), not "
                        f"{type(graph).__name__}")
    if not graph.nodes:
        raise ValueError("to_html: the graph has no nodes (the root is a leaf: nothing was "
                         "recorded; did any input require grad?)")
    groups, where = _tree(graph)
    _batch(groups, where)
    index = graph.index
    leaf_index = {id(t): k for k, t in enumerate(graph.leaves)}
    strings, string_ids = [], {}

    def s(text):
        """Repeated strings (ops, scopes, files) once, referred to by number."""
        text = str(text)
        k = string_ids.get(text)
        if k is None:
            k = string_ids[text] = len(strings)
            strings.append(text)
        return k

    # leaves: a copy in every innermost group that reads them
    for i, node in enumerate(graph.nodes):
        g = groups[where[i][-1]]
        for t in node.inputs:
            if t.node is None:
                item = ("l", leaf_index[id(t)])
                if item not in g.order:
                    g.order[item] = len(g.order)
                    g.items.append(item)

    # group-level edges
    gedges, gedge_ids, edge_map = [], {}, {}

    def gedge(gid, a, b):
        key = (gid, a, b)
        k = gedge_ids.get(key)
        if k is None:
            k = gedge_ids[key] = len(gedges)
            gedges.append(key)
        return k

    for i, node in enumerate(graph.nodes):
        chain_i = where[i]
        for slot, t in enumerate(node.inputs):
            if t.node is None:
                g = chain_i[-1]
                edge_map[(i, slot)] = [gedge(g, ("l", leaf_index[id(t)]), ("n", i))]
                continue
            j = index[t.node]
            chain_j = where[j]
            d = 0                                   # depth of the lowest common group
            while d + 1 < min(len(chain_i), len(chain_j)) and chain_i[d + 1] == chain_j[d + 1]:
                d += 1
            ids = []
            # up from j to the common group, through the out ports
            for k in range(len(chain_j) - 1, d, -1):
                inner = ("g", chain_j[k + 1]) if k + 1 < len(chain_j) else ("n", j)
                ids.append(gedge(chain_j[k], inner, ("O",)))
            a = ("g", chain_j[d + 1]) if d + 1 < len(chain_j) else ("n", j)
            b = ("g", chain_i[d + 1]) if d + 1 < len(chain_i) else ("n", i)
            ids.append(gedge(chain_i[d], a, b))
            for k in range(d + 1, len(chain_i)):
                inner = ("g", chain_i[k + 1]) if k + 1 < len(chain_i) else ("n", i)
                ids.append(gedge(chain_i[k], ("I",), inner))
            edge_map[(i, slot)] = ids

    per_group = {g.id: [] for g in groups}
    for k, (gid, a, b) in enumerate(gedges):
        per_group[gid].append(k)

    # parameter preparation (transposes, a gate's row block): computed from parameters
    # alone; drawn right under its reader, with a dashed copy for a reader far above
    prep = []
    for node in graph.nodes:
        prep.append(all((t.node is None and t.requires_grad) or
                        (t.node is not None and prep[index[t.node]]) for t in node.inputs))
    all_prep = [True] * len(groups)
    for i, chain in enumerate(where):
        if not prep[i]:
            for gid in chain:
                all_prep[gid] = False
    labels = [node.op for node in graph.nodes]
    leaf_labels = [graph.label(t) for t in graph.leaves]
    out_groups, cache = [], {}
    for g in groups:
        out_groups.append(_group_layout(g, groups, gedges, per_group[g.id], labels,
                                        leaf_labels, s, prep, all_prep, cache))

    # nodes and leaves as columns (one array per field): compact JSON
    nodes = {key: [] for key in ("op", "scope", "group", "shape", "dtype", "inputs", "saved",
                                 "attrs", "src")}
    for i, node in enumerate(graph.nodes):
        out = node.output
        saves = range(len(node.inputs)) if node.saves is None else node.saves
        src = getattr(node, "source", None)
        nodes["op"].append(s(node.op))
        nodes["scope"].append(s(node.scope))
        nodes["group"].append(where[i][-1])
        nodes["shape"].append(_shape(out))
        nodes["dtype"].append(s(out.dtype) if out is not None else None)
        nodes["inputs"].append([_ref(("n", index[t.node])) if t.node is not None
                                else _ref(("l", leaf_index[id(t)])) for t in node.inputs])
        # the inputs the vjp reads (their indices), -1 for the node's own output
        nodes["saved"].append([k for k in saves if k < len(node.inputs)]
                              + ([-1] if node.saves_output is not False else []))
        nodes["attrs"].append(s(", ".join(f"{k}={_short(v)}" for k, v in node.attrs.items())))
        nodes["src"].append(None if src is None else [s(src[0]), src[1], s(src[2])]
                            + ([s(src[3][0]), src[3][1]] if src[3] else []))
    leaves = {"name": [s(graph.label(t)) for t in graph.leaves],
              "param": [bool(t.requires_grad) for t in graph.leaves],
              "shape": [list(t.shape) for t in graph.leaves],
              "dtype": [s(t.dtype) for t in graph.leaves]}
    data = {"format": 1, "strings": strings, "nodes": nodes, "leaves": leaves,
            "groups": out_groups, "layouts": _layouts(cache),
            "edges": [[gid, _ref(a), _ref(b)] for gid, a, b in gedges]}
    return data, edge_map


def _ref(item):
    """An item as a short string: ``n12`` (node), ``g3`` (group), ``l0`` (leaf), ``I``/``O``."""
    return item[0] + (str(item[1]) if len(item) > 1 else "")


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _group_layout(g, groups, gedges, edge_ids, labels, leaf_labels, s, prep, all_prep, cache):
    """One group's drawing: its layers (bottom first), each item's x, and its edges'
    waypoint chains. A recurrent graph repeats the same group at every step (each
    ``t=k``, each gate), so the drawing is computed once per distinct shape of group
    (its items' kinds and labels and its edges) and reused."""
    items = list(g.items)
    local = {it: n for n, it in enumerate(items)}
    local[("I",)], local[("O",)] = "I", "O"

    def describe(it):               # what the drawing depends on: kind, width, side
        kind, ref = it
        if kind == "n":
            return ("n", len(labels[ref]), prep[ref])
        if kind == "l":
            return ("l", len(leaf_labels[ref]), True)
        return ("g", len(_group_label(groups[ref])), all_prep[ref])
    shape = (tuple(describe(it) for it in items),
             tuple((local[gedges[k][1]], local[gedges[k][2]]) for k in edge_ids))
    layout = cache.get(shape)
    if layout is None:
        layout = cache[shape] = len(cache)
    return {
        "label": g.label, "scope": s(g.scope), "parent": g.parent, "kind": g.kind,
        "items": [_ref(it) for it in items], "layout": layout, "edges": list(edge_ids),
    }


def _layouts(cache):
    """The distinct drawings, in the order they were numbered, with local references:
    an int is the group's item of that index, ``"I"``/``"O"`` its ports, ``"d3.5"`` its
    edge 3's waypoint on layer 5, ``"s2>7"`` a dashed copy of item 2 beside item 7 and
    ``"t4>O"`` the out mark of item 4 (see ``group_drawing``)."""
    def ref(it):
        if it in ("I", "O"):
            return it
        if it[0] == "i":
            return it[1]
        if it[0] == "d":
            return f"d{it[1]}.{it[2]}"
        return f"{it[0]}{ref(it[1])}>{ref(it[2])}"
    out = []
    for shape in sorted(cache, key=cache.get):
        rows, chains = _local_layout(*shape)
        out.append({"rows": [[[ref(it), x] for it, x in row] for row in rows],
                    "chains": [[ref(it) for it in chain] for _, chain in chains]})
    return out


def group_drawing(data, gid):
    """Group ``gid``'s drawing in the page's data with global references, as the page
    reads it: ``{"rows": [[[ref, x], ...], ...] (bottom layer first), "edges": [[edge,
    chain of refs], ...]}``; refs as ``n12`` (node), ``g3`` (group), ``l0`` (leaf),
    ``I``/``O`` (ports), ``d5.3`` (edge 5's waypoint on layer 3), ``sl0>n7`` (a dashed
    copy of l0 beside n7), ``tn4>O`` (n4's out mark)."""
    g = data["groups"][gid]
    layout = data["layouts"][g["layout"]]

    def ref(r):
        if isinstance(r, int):
            return g["items"][r]
        if r in ("I", "O"):
            return r
        if r[0] == "d":
            e, j = r[1:].split(".")
            return f"d{g['edges'][int(e)]}.{j}"
        a, b = r[1:].split(">")
        end = (lambda x: x if x in ("I", "O") else g["items"][int(x)])
        return f"{r[0]}{end(a)}>{end(b)}"
    return {"rows": [[[ref(r), x] for r, x in row] for row in layout["rows"]],
            "edges": [[k, [ref(r) for r in chain]] for k, chain in zip(g["edges"],
                                                                       layout["chains"])]}


def _local_layout(described, edges):
    """The drawing of a group given as ``described`` (per item: kind, label, is it
    parameter-side) and ``edges`` (pairs of item indices or ports ``"I"``/``"O"``).
    Returns ``(rows, chains)``: rows bottom first, each ``[(item, x in px), ...]`` in
    order; per edge index its chain of items, waypoints ``("d", edge, layer)`` between.
    The order and the x come from ``drawing``'s barycentric sweeps and isotonic fit."""
    items = [("i", n) for n in range(len(described))]     # tuples, as drawing's keys are
    edges = [(a if a == "I" else ("i", a), b if b == "O" else ("i", b)) for a, b in edges]
    has_in = any(a == "I" for a, _ in edges)
    has_out = any(b == "O" for _, b in edges)
    preds = {it: [] for it in items}
    succs = {it: [] for it in items}
    for a, b in edges:
        if a in succs:
            succs[a].append(b)
        if b in preds:
            preds[b].append(a)
    # parameter-side items (leaves, parameter preparation) read by someone
    side = {it: described[it[1]][2] and bool(succs[it]) for it in items}
    leaf = {it: described[it[1]][0] == "l" for it in items}
    layer = {}
    for it in items:                       # longest path over the main items, I at 0
        if side[it]:
            continue
        below = [0 if p == "I" else layer[p] for p in preds[it] if p == "I" or not side[p]]
        layer[it] = 1 + max(below) if below else 1
    # side items right under their first reader (readers first: nodes in reverse, then leaves)
    for it in [i for i in reversed(items) if not leaf[i]] + [i for i in items if leaf[i]]:
        if side[it]:
            ups = [layer[b] for b in succs[it] if b != "O"]
            layer[it] = (min(ups) if ups else max(layer.values(), default=1) + 1) - 1
    top = max(layer.values(), default=0)
    if has_in:                             # the in port alone in the bottom layer
        layer["I"] = min(min(layer.values(), default=1), 1) - 1
    if has_out:
        layer["O"] = top + 1

    # edges as chains of waypoints; far readers of side items get a dashed copy
    # (the in port counts as one), and an edge leaving the group from far below its top
    # ends at an "out" mark right above its source: no bundle of edges across the group
    chains, stubs = [], []
    for e, (a, b) in enumerate(edges):
        if (a == "I" or side[a]) and layer[b] - layer[a] > MAX_SPAN:
            stub = ("s", a, b)
            layer[stub] = layer[b] - 1
            stubs.append(stub)
            a = stub
        elif b == "O" and layer[b] - layer[a] > MAX_SPAN:
            stub = ("t", a, b)
            layer[stub] = layer[a] + 1
            stubs.append(stub)
            b = stub
        chain = [a]
        for j in range(layer[a] + 1, layer[b]):
            chain.append(("d", e, j))
            layer[("d", e, j)] = j
        chain.append(b)
        chains.append((e, chain))
    base = min(layer.values())
    start = {}
    for n, it in enumerate(["I"] * has_in + items + stubs + ["O"] * has_out):
        start[it] = n
    for _, chain in chains:
        for it in chain[1:-1]:
            start[it] = start[chain[0]] + 1e-3 * it[2]
    rows = {}
    for it, l in layer.items():
        rows.setdefault(l - base, []).append(it)
    for row in rows.values():
        row.sort(key=start.__getitem__)
    below = {it: [] for it in layer}
    above = {it: [] for it in layer}
    for _, chain in chains:
        for a, b in zip(chain, chain[1:]):
            above[a].append(b)
            below[b].append(a)
    rows = drawing._order(rows, below, above, sweeps=8)

    def width(it):
        if it in ("I", "O"):
            return 0.1
        if it[0] == "d":
            return drawing.DUMMY
        item = it[1] if it[0] == "s" else it               # a dashed copy: as its item
        if item in ("I", "O") or it[0] == "t":
            return drawing.CHAR * 3 + drawing.PAD            # "in" and "out" marks
        return drawing.CHAR * (described[item[1]][1] + (6 if described[item[1]][0] == "g"
                                                        else 0)) + drawing.PAD
    widths = {it: width(it) for it in layer}
    shifted = {it: l - base for it, l in layer.items()}
    x = drawing._coordinates(rows, below, above, widths, shifted, rounds=6)
    out_rows = [[(it, round(x[it] * PX, 1)) for it in rows[l]] for l in sorted(rows)]
    return out_rows, chains


def _snapshot(graph, flow, split, gradients, data, label, loss=None, edge_map=None):
    """One training step's numbers: values, gradients, adjoints, edge widths, splits."""
    nodes = graph.nodes
    snap = {"label": label}
    snap["values"] = [_stats(n.output.data) if n.output is not None else None for n in nodes]
    snap["leafvalues"] = [_stats(t.data) for t in graph.leaves]
    grads = None
    if gradients:
        grads = {}

        def hook(node, grad_output, grad_inputs):
            grads[node] = grad_output
        params = graph.parameters
        try:
            leaf_grads = _grad(graph.root, params, retain_graph=True, hook=hook) if params \
                else []
        except Exception as err:
            raise ValueError(f"to_html(gradients=True): the graph's backward pass failed "
                             f"({err}); record the page before loss.backward() frees it, or "
                             "retain the graph") from err
        snap["grads"] = [_stats(grads.get(n), preview=0) for n in nodes]
        by_leaf = {id(p): g for p, g in zip(params, leaf_grads)}
        snap["leafgrads"] = [_stats(by_leaf.get(id(t))) for t in graph.leaves]
    else:
        retained = []
        for n in nodes:
            out = n.retained() if n.retained is not None else None
            retained.append(_stats(out.grad, preview=0) if out is not None and
                            out.grad is not None else None)
        snap["grads"] = retained
        snap["leafgrads"] = [_stats(t.grad) if t.grad is not None else None
                             for t in graph.leaves]
    if flow is not None:
        if not hasattr(flow, "adjoints") or not hasattr(flow, "edges"):
            raise TypeError(f"to_html: flow must be a tt.trace.flow(...) result, not "
                            f"{type(flow).__name__}")
        index = graph.index
        stray = [n for n in flow.adjoints if n not in index]
        if stray:
            raise ValueError(f"to_html: this flow was measured on another graph ({len(stray)} "
                             f"of its nodes are not in this one, e.g. {stray[0]!r}); pass "
                             "tt.trace.flow(loss, retain_graph=True) of this graph's loss")
        snap["adjoints"] = [_num(flow.adjoints[n]) if n in flow.adjoints else None
                            for n in nodes]
        if edge_map is None:
            edge_map = _structure(graph)[1]
        widths = [0.0] * len(data["edges"])
        for (node, slot), value in flow.edges.items():
            for k in edge_map.get((index[node], slot), ()):
                widths[k] += float(value)
        snap["flow"] = [_num(w) for w in widths]
    snap["splits"] = []
    for pattern in split:
        from ..analysis import trace
        result = trace.split(graph.root, pattern, retain_graph=True)
        component = trace.Component(pattern)
        members = [i for i, n in enumerate(nodes) if component(n)]
        rows = []
        for name, part in result.items():
            rows.append([name, _num(_norm(part.grad)), _num(_norm(part.via)),
                         _num(_norm(part.avoid)), _num(part.signed), _num(part.unsigned),
                         bool(part.inside)])
        snap["splits"].append({"component": str(pattern), "members": members, "params": rows})
    return snap


def _norm(a):
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt((a * a).sum()))


# ---- the page -----------------------------------------------------------------------------

def _page(data):
    """The HTML text: the template with its style, script and data inlined."""
    template = (_HERE / "page.html").read_text(encoding="utf-8")
    style = (_HERE / "explorer.css").read_text(encoding="utf-8")
    script = (_HERE / "explorer.js").read_text(encoding="utf-8")
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    # inside <script> only "</" could end the element early; "<\/" is the same JSON string
    payload = payload.replace("</", "<\\/").replace("<!--", "<\\!--")
    parts = {"title": html.escape(data["title"]), "style": style, "script": script,
             "data": payload}
    # one pass, so nothing inserted is read as a placeholder again
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], template)


def _write(path, text):
    path = Path(os.fspath(path))
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"to_html: the page is HTML, so its file name must end in .html, "
                         f"not {path.name!r}")
    path.write_text(text, encoding="utf-8")
    return path


def to_html(graph, path, flow=None, split=(), gradients=False, title=None):
    """Write ``graph`` as one self-contained interactive HTML page (see the module doc);
    returns the path.

    - ``flow``: ``tt.trace.flow(loss, retain_graph=True)`` of this graph: edge widths
      (``flow.edges``) and the heat overlay (``flow.adjoints``);
    - ``split``: scope globs (``["*/forget_gate"]``); each adds ``tt.trace.split(loss,
      pattern)`` (via/avoid per parameter) and highlights its nodes. Needs the graph not
      yet freed by ``backward``;
    - ``gradients``: also run a backward pass (hooked, no ``.grad`` changes) to show every
      node's gradient dL/d(output); otherwise only gradients kept by ``retain_grad()``
      and leaves' ``.grad`` are shown;
    - ``title``: the page's heading.
    The same graph and arguments give the same bytes.
    """
    if isinstance(split, str):
        split = [split]
    data = page_data(graph, flow=flow, split=split, gradients=gradients, title=title)
    return _write(path, _page(data))


class Recorder:
    """Several training steps of the same model, for one page with a slider.

    ::

        rec = tt.explorer.Recorder(split=["*/forget_gate"])
        for step in range(5):
            with tt.explorer.sources():          # optional: file and line of every node
                loss = model(x)
            rec.add(loss, label=f"step {step}")  # before backward: values, grads, flow
            loss.backward(); opt.step(); opt.zero_grad()
        rec.to_html("training.html")

    Each ``add`` keeps the values of every node, every node's gradient (one hooked
    backward pass, no ``.grad`` changes), the gradient flow (``tt.trace.flow``) and the
    splits; the layout comes from the first step, and every later step must record the
    same ops in the same scopes (the same model on same-shaped data).
    """

    def __init__(self, split=(), flow=True, title=None):
        self.split = [split] if isinstance(split, str) else list(split)
        self.flow = flow
        self.title = title
        self._data = None
        self._edge_map = None
        self._ops = None

    def __len__(self):
        return 0 if self._data is None else len(self._data["steps"])

    def add(self, loss, label=None):
        """Record one step (``loss`` a scalar tensor whose graph is still whole)."""
        graph = loss.graph() if not isinstance(loss, Graph) else loss
        if not graph.nodes:
            raise ValueError("Recorder.add: the loss has no recorded graph (a leaf, or made "
                             "without gradients)")
        if any(node.vjp is None for node in graph.nodes):
            raise ValueError("Recorder.add: backward() already freed this graph; call add(loss) "
                             "before loss.backward() (it leaves the graph whole)")
        signature = [(n.op, n.scope) for n in graph.nodes]
        if self._data is None:
            self._data, self._edge_map = _structure(graph)
            self._ops = signature
            self._data["steps"] = []
        elif signature != self._ops:
            first = next((k for k, (a, b) in enumerate(zip(signature, self._ops)) if a != b),
                         min(len(signature), len(self._ops)))
            raise ValueError(f"Recorder.add: step {len(self)} recorded a different graph from "
                             f"step 0 ({len(signature)} nodes vs {len(self._ops)}; first "
                             f"difference at node #{first}); a page's steps must share one "
                             "graph (the same model on same-shaped data)")
        flow = None
        if self.flow:
            from ..analysis import trace
            flow = trace.flow(graph.root, retain_graph=True)
        snap = _snapshot(graph, flow, self.split, True, self._data,
                         label=str(label if label is not None else f"step {len(self)}"),
                         edge_map=self._edge_map)
        snap["loss"] = _num(float(np.asarray(graph.root.data).sum()))
        self._data["steps"].append(snap)
        return self

    def to_html(self, path, title=None):
        """Write the page (all steps recorded so far); returns the path."""
        if self._data is None:
            raise ValueError("Recorder.to_html: no step recorded yet (call add(loss) first)")
        data = dict(self._data)
        data["title"] = title or self.title or \
            f"{len(self._data['nodes'])} nodes, {len(self)} training steps"
        return _write(path, _page(data))
