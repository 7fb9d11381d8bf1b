"""Layered drawings of a recorded graph, with matplotlib alone (no system Graphviz).

``Graph.layout()`` and ``Graph.draw()`` call into this module. The picture is built the
way layered-graph drawers (Sugiyama et al. 1981; Graphviz's ``dot``) build theirs:

1. **What to draw.** One box per node (or per group of nodes: every node of a scope, or of
   a time step), one per leaf; when only some nodes are drawn, an input from a node left
   out becomes a dashed "from ..." box and a reader left out a dashed "to ..." box.
2. **Layers.** Longest path from the inputs, then every box that feeds more boxes than it
   reads moves up to just below its nearest reader. A parameter and its preparation
   (``W.T``, a gate's row block) sits right below the box that uses it, so ``fc1.bias``
   is drawn under the ``add`` that reads it, not next to the matmul. When a parameter is
   read again many layers higher (a recurrent weight at every step), that reader gets a
   dashed copy of the parameter's box instead of an edge across the whole picture.
3. **Long edges** get an invisible waypoint on every layer they cross, so they are routed
   between boxes and never through one.
4. **Order within a layer.** Barycentric sweeps, up and down, keeping the order with the
   fewest edge crossings.
5. **Coordinates.** Each box moves toward the mean position of its neighbours, as far as
   its left and right neighbours allow (an exact isotonic least-squares step).
6. **Edges** are smooth curves through their waypoints; with ``edge_weights`` (e.g. the
   gradient message norms of ``tt.trace.flow``) each line's width is proportional to the
   gradient it carries.

Coordinates: x in inches (at scale 1), y = layer index (leaves at the bottom).
"""
import bisect
import re

import numpy as np

from .context import without_step

GAP = 0.22            # inches between neighbouring boxes
CHAR = 0.056          # inches per character of a 7 pt label
PAD = 0.14            # inches of box padding
LAYER = 0.62          # inches between layers
BOX_HALF = 0.2        # half a box's height, in layers
DUMMY = 0.06          # width of a waypoint, inches
_STEP_PART = re.compile(r"^t=\d+$")
_SOURCES = ("leaf", "outside")     # vertex kinds with no inputs of their own


class Vertex:
    """One box of the picture: a node, a group of nodes, a leaf, a dashed copy of a
    parameter box ("stub") or a stand-in for a node left out ("outside")."""

    __slots__ = ("key", "label", "kind", "colour", "side", "members", "strong", "width",
                 "stub_label")

    def __init__(self, key, label, kind, colour="", side=False, members=1, strong=True):
        self.key, self.label, self.kind, self.colour = key, label, kind, colour
        self.side = side            # a parameter-side box: may be drawn near each reader
        self.members = members      # nodes it stands for
        self.strong = strong        # a leaf that requires grad (drawn with a black edge)
        self.stub_label = None      # the label of its dashed copies, if not ``label``
        lines = label.split("\n")
        self.width = CHAR * max(len(s) for s in lines) + PAD

    def __repr__(self):
        return f"Vertex({self.label!r}, {self.kind})"


class Layout(dict):
    """Positions ``{key: (x, y)}`` of the drawn boxes: nodes keyed by the node, leaves by
    ``id(tensor)``, groups by their group key. Also:

    - ``routes``: ``{(source key, target key): [(x, y), ...]}``, each edge's waypoints from
      the source box's centre to the target's (stub copies of a parameter box appear as
      sources keyed ``("stub", source, target)``);
    - ``vertices``: ``{key: Vertex}`` for every box, stubs included;
    - ``layers``: ``{key: layer}``; ``crossings``: edge crossings of the chosen order;
    - ``weights``: ``{(source key, target key): summed edge weight}`` (if weights given).
    """

    def __init__(self):
        super().__init__()
        self.routes, self.vertices, self.layers, self.weights = {}, {}, {}, {}
        self.crossings = 0
        self.stubs = {}


# ---- 1. what to draw ---------------------------------------------------------------------

def _group_key(node, group, prepares):
    if group is None:
        return None
    if group == "scope":
        return node.scope or None
    if group == "step":
        parts = node.scope.split("/") if node.scope else []
        steps = [i for i, p in enumerate(parts) if _STEP_PART.match(p)]
        if steps:
            return "/".join(parts[:steps[-1] + 1])
        # a parameter's preparation outside the steps (its transposes, gate slices): one box
        return f"prepared {prepares[node]}" if node in prepares else None
    key = group(node)
    return None if key is None else str(key)


def _common_prefix(scopes):
    split = [s.split("/") for s in scopes if s]
    if not split:
        return ""
    first = split[0]
    n = 0
    while n < len(first) - 1 and all(len(s) > n + 1 and s[n] == first[n] for s in split):
        n += 1
    return "/".join(first[:n]) + "/" if n else ""


def build(graph, nodes=None, group=None, edge_weights=None):
    """The boxes and edges to draw: ``(vertices, edges, weights)`` with ``vertices`` an
    ordered ``{key: Vertex}`` (every edge goes from an earlier vertex to a later one),
    ``edges`` a list of ``(source key, target key)`` and ``weights`` their summed
    ``edge_weights`` (``{(node, input index): value}``)."""
    if group not in (None, "scope", "step") and not callable(group):
        raise ValueError(f"draw(): group must be None, 'scope', 'step' or a function node -> "
                         f"key, not {group!r}")
    if edge_weights is not None and not hasattr(edge_weights, "get"):
        raise TypeError(f"draw(): edge_weights must be a dict {{(node, input index): weight}}, "
                        f"e.g. tt.trace.flow(...).edges, not {type(edge_weights).__name__}")
    if nodes is None:
        chosen = graph.nodes
    elif callable(nodes):
        chosen = [n for n in graph.nodes if nodes(n)]
    else:
        try:
            wanted = set(nodes)
        except TypeError:
            raise TypeError(f"draw(): nodes must be a predicate node -> bool or a collection of "
                            f"nodes, not {type(nodes).__name__}") from None
        stray = [n for n in wanted if n not in graph.index]
        if stray:
            raise ValueError(f"draw(): {len(stray)} of the nodes to draw are not in this graph "
                             f"(e.g. {stray[0]!r})")
        chosen = [n for n in graph.nodes if n in wanted]
    chosen_set = set(chosen)
    prefix = _common_prefix({n.scope for n in chosen})
    vertices, order = {}, {}                  # key -> Vertex, key -> creation index
    where = {}                                # node -> its vertex key
    open_chunk, chunks = {}, {}               # group key -> current chunk's vertex key
    side_nodes = set()                        # nodes computed from parameters alone
    edges, weights = {}, {}

    def add(key, vertex):
        vertices[key] = vertex
        order[key] = len(order)

    prepares = {}                             # side node -> the parameters it prepares
    for node in graph.nodes:
        if node.inputs and all((t.node is None and t.requires_grad) or t.node in side_nodes
                               for t in node.inputs):
            side_nodes.add(node)
            names = []
            for t in node.inputs:
                for name in ([graph.label(t)] if t.node is None else prepares[t.node].split(", ")):
                    if name not in names:
                        names.append(name)
            prepares[node] = ", ".join(names)

    def describe(node):
        """``transpose(fc1.weight)`` for a parameter's preparation, else ``#k op``."""
        if node in prepares:
            return f"{node.op}({prepares[node]})"
        return f"#{graph.index[node]} {node.op}"
    for node in chosen:
        sources = []
        for i, t in enumerate(node.inputs):
            if t.node is None:
                key = ("leaf", id(t))
                if key not in vertices:
                    add(key, Vertex(id(t), graph.label(t), "leaf", side=True,
                                    strong=t.requires_grad))
            elif t.node in chosen_set:
                key = where[t.node]
            else:
                key = ("outside", t.node)
                if key not in vertices:
                    source = t.node
                    scope = source.scope[len(prefix):] if source.scope.startswith(prefix) \
                        else source.scope
                    label = f"from {describe(source)}" + \
                        ("" if source in prepares or not scope else f"\n{scope}")
                    add(key, Vertex(source, label, "outside", without_step(source.scope),
                                    side=True, strong=source in side_nodes))
            sources.append((i, key))
        gk = _group_key(node, group, prepares)
        if gk is None:
            key = ("node", node)
            add(key, Vertex(node, node.op, "node", without_step(node.scope),
                            side=node in side_nodes))
            if node in prepares:           # how its dashed copies far above are labelled
                vertices[key].stub_label = describe(node)
        else:
            key = open_chunk.get(gk)
            # joining the open box must not make an edge point backwards (a cycle); a leaf
            # or a stand-in has no inputs, so it cannot close one: it moves before the box
            if key is None or any(order[s] > order[key] for _, s in sources
                                  if s != key and s[0] not in _SOURCES):
                chunks[gk] = chunks.get(gk, 0) + 1
                key = ("group", gk, chunks[gk])
                label = gk[len(prefix):] if gk.startswith(prefix) else gk
                name = gk if chunks[gk] == 1 else (gk, chunks[gk])
                add(key, Vertex(name, label or gk, "group", without_step(gk),
                                side=True, members=0))
                open_chunk[gk] = key
            for _, s in sources:
                if s[0] in _SOURCES and order[s] > order[key]:
                    order[s] = order[key] - 0.5
            vertices[key].members += 1
            # a group of parameter-side nodes only (a gate's weight slices) is one too
            vertices[key].side = vertices[key].side and node in side_nodes
        where[node] = key
        for i, s in sources:
            if s == key:
                continue                              # inside a group: not drawn
            edge = (s, key)
            edges[edge] = True
            if edge_weights is not None:
                value = edge_weights.get((node, i))
                if value is not None:
                    weights[edge] = weights.get(edge, 0.0) + float(value)
    if nodes is not None:                     # where the drawn nodes' outputs go next
        for consumer in graph.nodes:
            if consumer in chosen_set:
                continue
            for i, t in enumerate(consumer.inputs):
                if t.node is None or t.node not in chosen_set:
                    continue
                key = ("to", consumer)
                if key not in vertices:
                    scope = consumer.scope[len(prefix):] if consumer.scope.startswith(prefix) \
                        else consumer.scope
                    label = f"to #{graph.index[consumer]} {consumer.op}" + \
                        (f"\n{scope}" if scope else "")
                    add(key, Vertex(("to", consumer), label, "outside",
                                    without_step(consumer.scope), strong=False))
                edge = (where[t.node], key)
                edges[edge] = True
                if edge_weights is not None and (consumer, i) in edge_weights:
                    weights[edge] = weights.get(edge, 0.0) + float(edge_weights[(consumer, i)])
    vertices = dict(sorted(vertices.items(), key=lambda item: order[item[0]]))
    for v in vertices.values():
        if v.kind == "group":
            v.label = f"{v.label}\n({v.members} node{'' if v.members == 1 else 's'})"
            v.width = CHAR * max(len(s) for s in v.label.split("\n")) + PAD
    return vertices, list(edges), weights


# ---- 2-5. layers, waypoints, order, coordinates ------------------------------------------

def layout(vertices, edges, weights=None, max_span=6, sweeps=12):
    """Place ``vertices`` (from ``build``) in layers; returns a ``Layout``."""
    keys = list(vertices)
    preds = {k: [] for k in keys}
    succs = {k: [] for k in keys}
    for s, t in edges:
        preds[t].append(s)
        succs[s].append(t)
    # Parameter-side boxes: leaves and stand-ins, and boxes reading only parameter-side
    # boxes (a leaf that needs no grad, i.e. data, does not make its reader one).
    side, feeds = {}, {}
    for k in keys:
        v = vertices[k]
        if v.kind in ("leaf", "outside"):
            side[k], feeds[k] = bool(succs[k]), v.strong
        else:
            side[k] = feeds[k] = v.side and bool(succs[k]) and all(feeds[s] for s in preds[k])

    layer = {}
    for k in keys:                                  # longest path over the main boxes
        if not side[k]:
            ins = [layer[s] for s in preds[k] if not side[s]]
            layer[k] = 1 + max(ins) if ins else 0
    for k in reversed(keys):                        # move feeders up to their readers
        if side[k] or not succs[k]:
            continue
        n_in = sum(1 for s in preds[k] if not side[s])
        if len(succs[k]) >= n_in:
            layer[k] = max(layer[k], min(layer[t] for t in succs[k]) - 1)
    edges = list(edges)
    weights = dict(weights or {})
    stubs = {}
    for k in reversed(keys):                        # parameter-side boxes: below a reader
        if not side[k]:
            continue
        layer[k] = min(layer[t] for t in succs[k]) - 1
        for t in succs[k]:
            if layer[t] - layer[k] > max_span:      # far reader: a dashed copy of the box
                stub = ("stub", k, t)
                v = vertices[k]
                stubs[stub] = Vertex(v.key, v.stub_label or v.label, "stub", v.colour,
                                     strong=v.strong)
                layer[stub] = layer[t] - 1
                edges.remove((k, t))
                edges.append((stub, t))
                if (k, t) in weights:
                    weights[(stub, t)] = weights.pop((k, t))
    low = min(layer.values(), default=0)
    for k in layer:
        layer[k] -= low

    every = dict(vertices)
    every.update(stubs)
    # waypoints on every layer a long edge crosses
    segments, chains = [], {}
    for s, t in edges:
        chain = [s]
        for j in range(layer[s] + 1, layer[t]):
            d = ("dummy", s, t, j)
            layer[d] = j
            chain.append(d)
        chain.append(t)
        chains[(s, t)] = chain
        segments.extend(zip(chain, chain[1:]))
    rows = {}
    start = {k: i for i, k in enumerate(every)}
    for k, l in layer.items():
        rows.setdefault(l, []).append(k)
    for k in layer:
        if k not in start:                          # a waypoint starts beside its source
            start[k] = start[k[1]] + 1e-3 * k[3]
    for row in rows.values():
        row.sort(key=start.__getitem__)
    below = {k: [] for k in layer}
    above = {k: [] for k in layer}
    for a, b in segments:
        above[a].append(b)
        below[b].append(a)
    rows = _order(rows, below, above, sweeps)
    width = {k: every[k].width if k in every else DUMMY for k in layer}
    x = _coordinates(rows, below, above, width, layer)

    out = Layout()
    out.vertices, out.stubs = every, stubs
    for k, v in every.items():
        if k in stubs:
            continue
        out[v.key] = (x[k], layer[k])
    out.layers = {every[k].key if k not in stubs else k: layer[k] for k in every}
    for (s, t), chain in chains.items():
        name = (every[s].key if s not in stubs else s, every[t].key)
        out.routes[name] = [(x[k], layer[k]) for k in chain]
        if (s, t) in weights:
            out.weights[name] = weights[(s, t)]
    out.stubs = {k: (x[k], layer[k]) for k in stubs}
    out.crossings = _total_crossings(rows, above)
    return out


def _order(rows, below, above, sweeps):
    """Barycentric sweeps (up, then down), keeping the order with the fewest crossings."""
    levels = sorted(rows)
    pos = {k: i for row in rows.values() for i, k in enumerate(row)}
    best = {l: list(r) for l, r in rows.items()}
    best_count = _total_crossings(rows, above)
    for sweep in range(sweeps):
        upward = sweep % 2 == 0
        for l in (levels[1:] if upward else levels[-2::-1]):
            row = rows[l]
            ref = below if upward else above

            def centre(k):
                ns = ref[k]
                return sum(pos[n] for n in ns) / len(ns) if ns else pos[k]
            row.sort(key=lambda k: (centre(k), pos[k]))
            for i, k in enumerate(row):
                pos[k] = i
        count = _total_crossings(rows, above)
        if count < best_count:
            best_count, best = count, {l: list(r) for l, r in rows.items()}
        if best_count == 0:
            break
    return best


def _total_crossings(rows, above):
    total = 0
    levels = sorted(rows)
    for l in levels[:-1]:
        if l + 1 not in rows:
            continue
        upper = {k: i for i, k in enumerate(rows[l + 1])}
        pairs = sorted((i, upper[b]) for i, a in enumerate(rows[l]) for b in above[a]
                       if b in upper)
        total += _inversions([b for _, b in pairs])
    return total


def _inversions(seq):
    """Pairs i < j with seq[i] > seq[j] (ties are not crossings)."""
    seen, count = [], 0
    for v in seq:
        count += len(seen) - bisect.bisect_right(seen, v)
        bisect.insort(seen, v)
    return count


def _coordinates(rows, below, above, width, layer, rounds=10):
    """x for every box: packed with gaps, then pulled toward its neighbours' mean (a
    waypoint toward the straight line between its edge's two ends), each layer solved
    exactly under "keep the order and the gaps" (isotonic regression)."""
    x = {}
    for row in rows.values():
        offsets = _offsets(row, width)
        mid = offsets[-1] / 2
        for k, o in zip(row, offsets):
            x[k] = o - mid
    levels = sorted(rows)
    for r in range(rounds):
        for l in (levels if r % 2 == 0 else levels[::-1]):
            row = rows[l]
            want = []
            for k in row:
                if k[0] == "dummy":
                    _, a, b, j = k
                    f = (j - layer[a]) / (layer[b] - layer[a])
                    want.append(x[a] + f * (x[b] - x[a]))
                    continue
                ns = below[k] + above[k]
                want.append(sum(x[n] for n in ns) / len(ns) if ns else x[k])
            offsets = _offsets(row, width)
            fitted = _isotonic([w - o for w, o in zip(want, offsets)])
            for k, f, o in zip(row, fitted, offsets):
                x[k] = f + o
    return x


def _offsets(row, width):
    out, total = [0.0], 0.0
    for a, b in zip(row, row[1:]):
        total += (width[a] + width[b]) / 2 + GAP
        out.append(total)
    return out


def _isotonic(values):
    """The non-decreasing sequence nearest ``values`` in least squares (pool adjacent
    violators)."""
    blocks = []                                  # [mean, count]
    for v in values:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, c2 = blocks.pop()
            m1, c1 = blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    out = []
    for m, c in blocks:
        out.extend([m] * c)
    return out


# ---- 6. the picture ------------------------------------------------------------------------

def render(lay, ax=None, path=None, title=None, weighted=False, legend=True):
    """Draw a ``Layout`` with matplotlib; returns the Figure (saved to ``path`` if given)."""
    import matplotlib
    if path is not None and ax is None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    points = list(lay.values()) + list(lay.stubs.values())
    half = {k: v.width / 2 for k, v in lay.vertices.items()}
    xs = [p[0] for p in points] or [0.0]
    ys = [p[1] for p in points] or [0.0]
    margin = max(half.values(), default=0.5) + 0.3
    x0, x1 = min(xs) - margin, max(xs) + margin
    y0, y1 = min(ys) - 0.7, max(ys) + 0.7
    span_w, span_h = x1 - x0, (y1 - y0) * LAYER
    if ax is None:
        scale = min(1.0, 120 / max(span_w, span_h))
        fig, ax = plt.subplots(figsize=(max(span_w * scale, 3), max(span_h * scale, 2)))
    else:
        fig = ax.figure
        box = ax.get_window_extent()
        scale = min(1.0, box.width / fig.dpi / span_w, box.height / fig.dpi / span_h)
    font = max(7 * scale, 2.5)

    scopes = sorted({v.colour for v in lay.vertices.values() if v.kind != "leaf"})
    cmap = plt.get_cmap("tab20" if len(scopes) > 10 else "tab10")
    colour = {s: cmap(i % cmap.N) for i, s in enumerate(scopes)}

    top = max(lay.weights.values(), default=0.0)
    for (s, t), route in lay.routes.items():
        pts = list(route)
        pts[0] = (pts[0][0], pts[0][1] + BOX_HALF)
        pts[-1] = (pts[-1][0], pts[-1][1] - BOX_HALF)
        verts, codes = [pts[0]], [Path.MOVETO]
        for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
            mid = (yb - ya) / 2
            verts += [(xa, ya + mid), (xb, yb - mid), (xb, yb)]
            codes += [Path.CURVE4] * 3
        style = dict(color="0.55", lw=0.8 * scale, alpha=1.0, ls="-")
        if weighted:
            w = lay.weights.get((s, t), 0.0)
            if w > 0 and top > 0:
                style = dict(color="firebrick", lw=max(6.0 * scale * w / top, 0.35 * scale),
                             alpha=0.75, ls="-")
            else:
                style = dict(color="0.75", lw=0.5 * scale, alpha=1.0, ls=":")
        arrow = FancyArrowPatch(path=Path(verts, codes), arrowstyle="-" if weighted else "-|>",
                                mutation_scale=6 * scale, color=style["color"],
                                lw=style["lw"], alpha=style["alpha"], linestyle=style["ls"],
                                shrinkA=0, shrinkB=0, zorder=1)
        ax.add_patch(arrow)

    def box(key, v, x, y):
        if v.kind in ("leaf", "stub"):
            edge = "black" if v.strong else "0.6"
            style = dict(boxstyle="square,pad=0.25", fc="white", ec=edge,
                         ls="--" if v.kind == "stub" else "-", lw=0.8)
        elif v.kind == "outside":
            c = colour.get(v.colour, "0.7")
            style = dict(boxstyle="round,pad=0.25", fc="white", ec=c, ls="--", lw=0.8)
        else:
            c = colour[v.colour]
            style = dict(boxstyle="round,pad=0.3", fc=c, alpha=0.35 if v.kind == "node" else 0.5,
                         ec=c, lw=1.6 if v.kind == "group" else 0.8)
        size = font * (0.9 if v.kind in ("stub", "outside") else 1.0)
        ax.text(x, y, v.label, ha="center", va="center", fontsize=size, bbox=style, zorder=3)

    for key, v in lay.vertices.items():
        if key in lay.stubs:
            x, y = lay.stubs[key]
        else:
            x, y = lay[v.key]
        box(key, v, x, y)
    if legend:
        handles = [plt.Line2D([], [], marker="o", ls="", color=colour[s], alpha=0.6,
                              label=s or "(top level)") for s in scopes[:20]]
        if weighted and top > 0:
            handles.append(plt.Line2D([], [], color="firebrick", lw=6 * scale, alpha=0.75,
                                      label=f"gradient message norm {top:.2g}"))
        if handles:
            ax.legend(handles=handles, loc="upper left", fontsize=font, title="scope",
                      title_fontsize=font)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.axis("off")
    if title is not None:
        ax.set_title(title, fontsize=max(9 * scale, 4))
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
