"""``Graph``: the recorded computation as a plain object you can print, walk and draw.

``loss.graph()`` walks back from ``loss`` once (``autograd.topological_order``) and keeps the
nodes in that order. Everything here is a loop over that list: the text table, the DOT
export, the matplotlib drawing and the enumeration of gradient paths.
"""
import fnmatch
import functools
from collections import Counter, defaultdict

from .autograd import topological_order


class Graph:
    """The recorded computation behind ``root`` (``loss.graph()``): its nodes in
    topological (= recording) order, and its leaves.

    It is a list of nodes (``len(g)``, ``for node in g``, ``g[i]``) with lookups:
    ``g.leaves`` (leaf tensors in order of first use), ``g.parameters`` (the leaves that
    require grad), ``g.consumers_of(item)`` (the nodes reading a node's output or a
    leaf), ``g.op_counts()``, ``g.by_scope()``, ``g.select("lstm/t=*/forget_gate")`` (nodes
    by a glob over scopes), ``g.paths(w)`` / ``g.count_paths(w)`` (the chain rule's paths
    from the root down to ``w``) and ``g.label(item)``. As text: ``print(g)`` (a table),
    ``g.tree()``; as pictures: ``g.to_dot()``, ``g.draw()``; as an interactive page:
    ``g.to_html("graph.html")``.
    """

    def __init__(self, root):
        self.root = root
        self.nodes = topological_order(root.node) if root.node is not None else []
        self.leaves = []                      # leaf tensors in order of first use
        seen_leaves = set()
        self.consumers = defaultdict(list)    # node or leaf id -> nodes that read it
        for node in self.nodes:
            for t in node.inputs:
                if t.node is not None:
                    self.consumers[t.node].append(node)
                else:
                    self.consumers[id(t)].append(node)
                    if id(t) not in seen_leaves:
                        seen_leaves.add(id(t))
                        self.leaves.append(t)
        self.index = {node: i for i, node in enumerate(self.nodes)}

    # ---- a list of nodes ---------------------------------------------------------------
    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __getitem__(self, i):
        return self.nodes[i]

    def consumers_of(self, item):
        """The nodes that read ``item`` — a node (its output), a leaf tensor, or a tensor
        made by an op — in graph order; a node that reads it twice (``h * h``) is listed
        twice. ``[]`` for the root, or a tensor this graph never reads."""
        if hasattr(item, "op"):
            key = item
        elif getattr(item, "node", None) is not None:
            key = item.node
        else:
            key = id(item)
        return list(self.consumers.get(key, ()))

    def select(self, pattern):
        """The nodes whose scope matches ``pattern``, in graph order: a scope glob such as
        ``"lstm/t=*/forget_gate"`` (every step's forget gate, even inside ``model/lstm``)
        or ``"lstm/t=3"`` (every node of step 3, its gates included). The pattern language
        is the one ``tt.trace`` uses too; see ``scope_matches``.
        """
        check_scope_pattern(pattern, "select()")
        return [node for node in self.nodes if scope_matches(pattern, node.scope)]

    @property
    def parameters(self):
        """Leaves that require grad (the tensors backward will fill)."""
        return [t for t in self.leaves if t.requires_grad]

    def op_counts(self):
        """How many nodes of each op, e.g. ``{'matmul': 2, 'add': 2, 'relu': 1}``."""
        return dict(Counter(node.op for node in self.nodes))

    def by_scope(self):
        """Nodes grouped by the scope they were recorded in (``''`` for top level)."""
        groups = defaultdict(list)
        for node in self.nodes:
            groups[node.scope].append(node)
        return dict(groups)

    def label(self, item):
        """A short human name for a node (``#3 matmul``) or a leaf (``fc1.weight``)."""
        if hasattr(item, "op"):
            return f"#{self.index[item]} {item.op}"
        if item.name:
            return item.name
        return ("param" if item.requires_grad else "const") + str(tuple(item.shape))

    # ---- paths -------------------------------------------------------------------------
    def paths(self, target, limit=100_000):
        """Every path from the root down to ``target`` (a leaf tensor or a node).

        Each path is a list of nodes, root first, ending at the node that reads the leaf
        (or at the target node). The gradient of ``target`` is the sum over these paths of
        the product of the local Jacobians along each one — the chain rule, spelled out.
        A node that reads ``target`` twice (``w * w``) ends two paths, one per input slot,
        so the same list of nodes appears twice. Paths grow exponentially with depth in a
        graph of diamonds: if there are more than ``limit``, this raises ``ValueError``
        with their number (``count_paths`` counts without listing).
        """
        below = self._paths_below(target)
        if self.root.node is None or not below.get(self.root.node):
            return []
        total = below[self.root.node]
        if total > limit:
            raise ValueError(f"paths(): there are {total:,} paths from the root to "
                             f"{self.label(target)}, more than limit={limit:,}; count them "
                             "with count_paths(), or pass a larger limit")
        is_node = hasattr(target, "op")
        found = []
        # A partial path is a linked list (node, rest-of-path-above) so that stepping down
        # costs O(1); copying a list at each step made a long chain quadratic. Only nodes
        # with a path to the target are entered, so the work is proportional to the output.
        stack = [(self.root.node, None)]
        while stack:
            node, above = stack.pop()
            link = (node, above)
            if is_node and node is target:
                found.append(_unlink(link))
                continue
            for t in node.inputs:
                if t is target and not is_node:
                    found.append(_unlink(link))
                elif t.node is not None and below.get(t.node):
                    stack.append((t.node, link))
        found.sort(key=lambda p: [self.index[n] for n in p], reverse=True)
        return found

    def count_paths(self, target):
        """How many paths ``paths(target)`` would list (an exact int, however many:
        counted in one pass over the graph, without listing them)."""
        if self.root.node is None:
            return 0
        return self._paths_below(target).get(self.root.node, 0)

    def _paths_below(self, target):
        """``{node: number of paths from node down to target}`` (nodes with none left out)."""
        is_node = hasattr(target, "op")
        below = {}
        for node in self.nodes:                 # inputs first, so below[input] is final
            if is_node and node is target:
                below[node] = 1
                continue
            count = 0
            for t in node.inputs:
                if t is target and not is_node:
                    count += 1
                elif t.node is not None:
                    count += below.get(t.node, 0)
            if count:
                below[node] = count
        return below

    # ---- text --------------------------------------------------------------------------
    def table(self):
        """One line per node: index, op, scope, output shape, inputs, attrs."""
        rows = [("#", "op", "scope", "shape", "inputs", "attrs")]
        for i, node in enumerate(self.nodes):
            inputs = ", ".join(f"#{self.index[t.node]}" if t.node is not None
                               else self.label(t) for t in node.inputs)
            attrs = ", ".join(f"{k}={_short(v)}" for k, v in node.attrs.items())
            shape = tuple(node.output.shape) if node.output is not None else "?"
            rows.append((str(i), node.op, node.scope or "-", str(shape), inputs, attrs))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                 for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def tree(self, max_depth=20):
        """The graph as an indented tree from the root; a node reached twice is shown once
        and then referred to as ``(see #k)``."""
        if self.root.node is None:
            return self.label(self.root)
        lines, shown = [], set()
        stack = [(self.root.node, 0)]
        while stack:
            item, depth = stack.pop()
            pad = "  " * depth
            if not hasattr(item, "op"):
                lines.append(f"{pad}{self.label(item)}")
                continue
            if item in shown:
                lines.append(f"{pad}(see #{self.index[item]} {item.op})")
                continue
            shown.add(item)
            where = f"  [{item.scope}]" if item.scope else ""
            lines.append(f"{pad}#{self.index[item]} {item.op}{where}")
            if depth >= max_depth:
                lines.append(f"{pad}  ...")
                continue
            for t in reversed(item.inputs):
                stack.append((t.node if t.node is not None else t, depth + 1))
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return (f"<Graph: {len(self.nodes)} nodes, {len(self.leaves)} leaves, "
                f"{len(self.by_scope())} scopes>")

    # ---- Graphviz ----------------------------------------------------------------------
    def to_dot(self, name="tinytrace"):
        """Graphviz DOT text; nodes of one scope sit in one cluster."""
        lines = [f'digraph "{name}" {{', "  rankdir=BT;",
                 '  node [fontname="Helvetica", fontsize=10];']
        for i, leaf in enumerate(self.leaves):
            shape = "box" if leaf.requires_grad else "plaintext"
            lines.append(f'  leaf{i} [label="{_esc(self.label(leaf))}", shape={shape}];')
        for c, (scope, nodes) in enumerate(sorted(self.by_scope().items())):
            indent = "  "
            if scope:
                lines.append(f'  subgraph "cluster_{c}" {{')
                lines.append(f'    label="{_esc(scope)}"; style=rounded; color=gray;')
                indent = "    "
            for node in nodes:
                i = self.index[node]
                lines.append(f'{indent}n{i} [label="{_esc(node.op)}", shape=ellipse];')
            if scope:
                lines.append("  }")
        leaf_ids = {id(t): i for i, t in enumerate(self.leaves)}
        for node in self.nodes:
            for t in node.inputs:
                src = f"n{self.index[t.node]}" if t.node is not None else f"leaf{leaf_ids[id(t)]}"
                lines.append(f"  {src} -> n{self.index[node]};")
        lines.append("}")
        return "\n".join(lines)

    # ---- an interactive page ----------------------------------------------------------
    def to_html(self, path, flow=None, split=(), gradients=False, title=None):
        """Write the graph as one self-contained interactive HTML page (open it in a
        browser, from a file, offline): scopes as collapsible groups, search, a panel per
        node (values, gradients, saved tensors, source line), edge widths and heat from
        ``flow=tt.trace.flow(loss, retain_graph=True)``, the via/avoid ``split`` of
        components. Returns the path. See ``tinytrace.explorer.to_html``."""
        from . import explorer
        return explorer.to_html(self, path, flow=flow, split=split, gradients=gradients,
                                title=title)

    # ---- a picture with matplotlib alone ------------------------------------------------
    def layout(self, nodes=None, group=None, edge_weights=None, max_span=6):
        """Where ``draw`` puts every box: a ``tinytrace.drawing.Layout``, a dict of (x, y)
        keyed by node (leaves by ``id(tensor)``), y the layer (leaves at the bottom), x in
        inches, plus each edge's route (``.routes``) around the other boxes.

        ``nodes``, ``group``, ``edge_weights``: as in ``draw``. ``max_span``: a parameter
        read more than that many layers above its box gets a dashed copy of the box
        below that reader instead of a long edge.
        """
        from . import drawing
        vertices, edges, weights = drawing.build(self, nodes, group, edge_weights)
        return drawing.layout(vertices, edges, weights, max_span=max_span)

    def draw(self, ax=None, path=None, max_nodes=400, title=None, edge_weights=None,
             nodes=None, group=None):
        """Draw the graph in layers (leaves at the bottom, the root on top), boxes coloured
        by scope (with any ``t=k`` part removed, so a gate has one colour at every step);
        returns the matplotlib Figure and saves it to ``path`` if given.

        - ``edge_weights``: ``{(node, input index): value}``, e.g. ``tt.trace.flow(loss)
          .edges`` (the gradient message norms): each edge's width is proportional to it.
        - ``nodes``: only these nodes (a predicate or a collection of nodes), e.g. one time
          step; an input from a node left out is drawn as a dashed "from #k op" box.
        - ``group``: ``"scope"`` (one box per scope), ``"step"`` (one per ``t=k`` step) or
          a function node -> key (``None``: keep the node as it is); a grouped edge's
          weight is the sum of the weights of the edges it stands for.
        Edges are routed between boxes, never through one (see ``tinytrace.drawing``).
        """
        from . import drawing
        vertices, edges, weights = drawing.build(self, nodes, group, edge_weights)
        boxes = sum(1 for v in vertices.values() if v.kind in ("node", "group"))
        if boxes > max_nodes:
            raise ValueError(f"draw(): {boxes} boxes is too many to read (max_nodes="
                             f"{max_nodes}); draw fewer (nodes=, e.g. one time step), group "
                             "them (group='step' or 'scope') or raise max_nodes")
        lay = drawing.layout(vertices, edges, weights)
        if title is None:
            title = f"{len(self.nodes)} nodes, {len(self.leaves)} leaves"
        return drawing.render(lay, ax=ax, path=path, title=title,
                              weighted=edge_weights is not None)


@functools.lru_cache(maxsize=65536)
def scope_matches(pattern, scope):
    """Does a node recorded in ``scope`` match the scope glob ``pattern``?

    The one pattern language of tinytrace: ``Graph.select``, ``tt.trace.Component``,
    ``tt.trace.split`` and ``tt.trace.ablate`` all call this function.

    - A pattern is a glob over scope paths, segment by segment (segments are the parts
      between ``/``): ``*`` matches within one segment (``t=*``), ``?`` and ``[...]`` as
      in ``fnmatch``, and a segment ``**`` matches any number of segments (none too).
    - It may match anywhere along the path: its segments must match consecutive segments
      of the scope, starting at any of them. ``"forget_gate"`` finds
      ``model/lstm/t=3/forget_gate``; ``"*/forget_gate"`` needs one segment before it.
    - It takes the sub-scopes too: what follows the matched segments does not matter, so
      ``"lstm/t=3"`` is every node of step 3 (``lstm/t=3/forget_gate`` included) and
      ``"*/stack/*"`` everything below a ``stack`` scope, at any depth.
    - A leading ``/`` anchors the pattern at the top-level scope (``"/model/lstm"``).
      Nodes recorded at top level (scope ``""``) match only ``"/"`` and ``"**"``.
    """
    check_scope_pattern(pattern, "scope_matches()")
    segments = scope.split("/") if scope else []
    if pattern == "/":
        return not segments
    parts = pattern.strip("/").split("/")

    def match(i, j):          # parts[i:] against segments[j:], as a prefix
        if i == len(parts):
            return True
        if parts[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(segments) + 1))
        return (j < len(segments) and fnmatch.fnmatchcase(segments[j], parts[i])
                and match(i + 1, j + 1))
    starts = [0] if pattern.startswith("/") else range(len(segments) + 1)
    return any(match(0, j) for j in starts)


def check_scope_pattern(pattern, caller):
    """Refuse what ``scope_matches`` cannot read (``caller`` names the function asked)."""
    if not isinstance(pattern, str) or not pattern.strip("/") and pattern != "/":
        raise ValueError(f"{caller}: pattern must be a non-empty scope glob such as "
                         f"'lstm/t=*/forget_gate' or '*/stack/*', got {pattern!r}")


def _unlink(link):
    """The linked path ``(node, (parent, (...)))`` as a list, root first."""
    path = []
    while link is not None:
        node, link = link
        path.append(node)
    path.reverse()
    return path


def _short(value):
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _esc(text):
    return str(text).replace("\\", "\\\\").replace('"', '\\"')
