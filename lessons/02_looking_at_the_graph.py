# %% [markdown]
# # 2. Looking at the graph: every path from the loss to a weight
#
# In lesson 1 the engine's gradient matched the hand derivation. This lesson opens the
# engine up. Every op that touches a tensor requiring gradients records a **node**: the
# op's name, its inputs, its attributes and the module *scope* it ran in. `loss.graph()`
# hands you those nodes as a plain Python object, a `Graph`, that you can print, walk,
# export and draw.
#
# The story ends with the chain rule seen whole: the gradient of a weight is the **sum,
# over every path from the loss down to that weight, of the product of the local
# derivatives along the path**. We list the paths with `graph.paths(w)`, multiply along
# each one, add them up, and get exactly what `backward()` computes.

# %%
import matplotlib.pyplot as plt
import numpy as np

import tinytrace as tt
from tinytrace.lessonkit import Lesson

lesson = Lesson("02_looking_at_the_graph")

# %% [markdown]
# ## A small expression with two diamonds
#
# One weight `w` and one input `x`, all scalars in float64:
#
# $$ a = wx,\quad d = \tanh(a)\,\sigma(a),\quad
#    L = \tanh(d) + e^{d/2} + w^2 $$
#
# `a` feeds two ops (tanh and sigmoid) which meet again in `d`: a *diamond*. `d` feeds two
# ops which meet again in the final sum: a second diamond. And `w` is used twice, once in
# `a` and once in `w²`.

# %%
w = tt.tensor(0.8, requires_grad=True, dtype=tt.float64, name="w")
x = tt.tensor(1.5, dtype=tt.float64, name="x")
half = tt.tensor(0.5, dtype=tt.float64, name="1/2")

a = w * x
d = tt.tanh(a) * tt.sigmoid(a)
loss = tt.tanh(d) + tt.exp(d * half) + w ** 2

graph = loss.graph()
print(repr(graph))
print(graph.table())

# %% [markdown]
# `table()` lists the nodes in **topological order**: every node after the nodes it
# reads, which is also the order the program recorded them. `#k` refers to row `k`;
# named leaves (`w`, `x`) appear by name. `tree()` shows the same graph hanging from the
# loss; a node reached a second time is shown once and then referred to as `(see #k)` —
# those are the diamonds.

# %%
print(graph.tree())

# %% [markdown]
# ## Walking it
#
# A `Graph` is a list of nodes (`len`, iteration, indexing) plus a few lookups:
# `graph.op_counts()`, `graph.by_scope()`, `graph.leaves`, and `graph.consumers_of(item)`,
# the nodes that read a node's output or a leaf. (`graph.select("fc1")` picks nodes by
# scope; the MLP below has scopes.) Walking forwards through the list and printing who
# reads what:

# %%
for node in graph:
    reads = ", ".join(graph.label(t.node) if t.node is not None else graph.label(t)
                      for t in node.inputs)
    read_by = ", ".join(graph.label(c) for c in graph.consumers_of(node)) or "(the loss)"
    print(f"{graph.label(node):>10} = {node.op}({reads})  ->  read by {read_by}")

op_counts = graph.op_counts()
print("nodes by op:", op_counts)
forks = [graph.label(item) for item in graph.leaves + graph.nodes
         if len(graph.consumers_of(item)) > 1]
print("values read by more than one op (forks):", forks)

lesson.claim("expression_nodes", len(graph), "the expression recorded {} nodes")
lesson.claim("expression_forks", len(forks),
             "{} values are read by two ops each: w, a and d (the forks)")

# %% [markdown]
# ## Exporting and drawing
#
# `graph.to_dot()` writes Graphviz DOT text (render it with `dot -Tpng` if you have
# Graphviz); `graph.draw()` draws the same picture with matplotlib alone: leaves at the
# bottom, the loss on top, nodes coloured by scope. We save both.

# %%
dot = graph.to_dot("expression")
dot_path = lesson.figures / "expression.dot"
dot_path.write_text(dot + "\n")
print(f"[dot] {dot_path}  ({dot.count('->')} edges)")
lesson.claim("expression_dot_edges", dot.count("->"),
             "the DOT export has {} edges, one per (input, op) pair")

# %% [markdown]
# ## Every path from the loss to `w`
#
# `graph.paths(w)` lists the paths from the loss down to `w`, each as the list of nodes it
# passes, loss first. Count them before asking the computer: `w` reaches the loss
# directly through `w²` (1 path) and through `a`; from `a` there are 2 ways to reach `d`,
# and from `d` 2 ways to reach the loss. So $1 + 2 \times 2 = 5$ paths.

# %%
paths = graph.paths(w)
for path in paths:
    print("  " + " -> ".join(graph.label(n) for n in path) + " -> w")
lesson.claim("n_paths_expression", len(paths), "graph.paths(w) finds {} paths (1 + 2 x 2)")

# %% [markdown]
# ## The chain rule as a sum over paths
#
# Each node carries its vector-Jacobian product `node.vjp`: given the gradient of its
# output, it returns the gradient of each input. For scalars, feeding it `1` returns the
# **local derivatives** $\partial(\text{output})/\partial(\text{input}_j)$. The chain rule
# says
#
# $$ \frac{\partial L}{\partial w} = \sum_{\text{paths } p}\ \prod_{\text{edges } e \in p}
#    \frac{\partial(\text{upper end of } e)}{\partial(\text{lower end of } e)} . $$
#
# (We read the vjps *before* calling `backward()`, which frees them to save memory.)

# %%
def local_derivative(node, below):
    """d node.output / d below, where ``below`` is a node or a leaf tensor read by ``node``."""
    grads = node.vjp(np.ones(()))
    return sum(g for t, g in zip(node.inputs, grads)
               if (t.node is below if hasattr(below, "op") else t is below))


def path_product(path, leaf):
    product = 1.0
    for upper, lower in zip(path, path[1:] + [leaf]):
        product *= local_derivative(upper, lower)
    return float(product)


# (An op that reads one tensor twice, like x * x, would list the same path twice; we sum
# over distinct paths and let local_derivative add up both slots.)
distinct = list(dict.fromkeys(tuple(p) for p in paths))
products = [path_product(list(p), w) for p in distinct]
for path, product in zip(distinct, products):
    print(f"  {' -> '.join(graph.label(n) for n in path)} -> w : {product:+.12f}")
path_sum = sum(products)

loss.backward()
print(f"sum over paths = {path_sum:.15f}")
print(f"w.grad         = {w.grad.item():.15f}")
lesson.claim("path_sum_minus_grad", abs(path_sum - w.grad.item()),
             "|sum of path products - w.grad| = {:.1e}", at_most=1e-12)

# %% [markdown]
# The direct path through `w²` contributes exactly $2w = 1.6$; the four paths through the
# diamonds carry the rest. Here is the picture, with the five paths drawn in red on the
# graph's own layout (`graph.layout()` gives every node's position; `graph.draw(ax=ax)`
# draws into our axes so we can add to the picture).

# %%
def highlight(ax, graph, paths, leaf, label):
    """Draw ``paths`` (from ``graph.paths(leaf)``) in red over ``graph.draw(ax=ax)``."""
    pos = graph.layout()                   # nodes keyed by node, leaves by id(tensor)
    for path in paths:
        chain = path + [leaf]
        for upper, lower in zip(chain, chain[1:]):
            x0, y0 = pos[lower if hasattr(lower, "op") else id(lower)]
            x1, y1 = pos[upper]
            ax.annotate("", xy=(x1, y1 - 0.18), xytext=(x0, y0 + 0.18),
                        arrowprops=dict(arrowstyle="->", color="red", lw=2, alpha=0.5))
    scopes = ax.get_legend()               # keep draw()'s scope legend next to ours
    if scopes is not None:
        ax.add_artist(scopes)
    red, = ax.plot([], [], color="red", lw=2, alpha=0.5)
    ax.legend([red], [label], loc="upper right", fontsize=8)


fig, ax = plt.subplots(figsize=(9, 6.5))
graph.draw(ax=ax, title="L = tanh(d) + exp(d/2) + w²,  d = tanh(wx)·σ(wx):  "
                        f"the {len(paths)} paths from L to w in red")
highlight(ax, graph, paths, w, "a path from L to w")
lesson.savefig(fig, "expression_paths")

# %% [markdown]
# ## The graph of an MLP, by scope
#
# Modules open a scope when called, so every node a layer records carries its path, like
# `mlp/fc1`. Here is a two-layer MLP on a batch of 6 inputs with 4 features and 3
# classes, and a cross-entropy loss.

# %%
class MLP(tt.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = tt.nn.Linear(4, 8, dtype=tt.float64)
        self.fc2 = tt.nn.Linear(8, 3, dtype=tt.float64)

    def forward(self, inputs):
        return self.fc2(tt.relu(self.fc1(inputs)))


model = MLP()
inputs = tt.tensor(lesson.rng.normal(size=(6, 4)), name="inputs")
targets = lesson.rng.integers(0, 3, size=6)

data_loss = tt.nn.functional.cross_entropy(model(inputs), targets)
mlp_graph = data_loss.graph()
print(mlp_graph.table())
scope_counts = {scope or "(top level)": len(nodes)
                for scope, nodes in mlp_graph.by_scope().items()}
print("nodes by scope:", scope_counts)
print("mlp_graph.select('fc1'):", [mlp_graph.label(n) for n in mlp_graph.select("fc1")])
print("nodes by op:   ", mlp_graph.op_counts())
lesson.claim("mlp_nodes", len(mlp_graph), "the MLP's loss has {} nodes")
lesson.claim("mlp_fc1_nodes", scope_counts["mlp/fc1"],
             "{} of them in scope mlp/fc1 (transpose, matmul, add)")

# %% [markdown]
# A `Linear` layer is three nodes: `weight.T`, the matrix product, the bias. The loss is
# four: `log_softmax`, picking each row's target (`getitem`), `mean`, `neg`. From the loss
# to `fc1.weight` there is a single path, straight down the chain.
#
# Add an L2 penalty $\lambda \sum_p \|p\|^2$ to the loss and each weight gains a second
# path, through its own `pow` node. The sum-over-paths rule predicts that the gradient
# changes by exactly that path's product, $2\lambda W$.

# %%
paths_plain = mlp_graph.paths(model.fc1.weight)
data_loss.backward()
grad_plain = model.fc1.weight.grad.copy()

lam = tt.tensor(1e-2, dtype=tt.float64, name="λ")
model.zero_grad()
data_loss = tt.nn.functional.cross_entropy(model(inputs), targets)
with tt.scope("l2_penalty"):
    squares = [(p ** 2).sum() for p in model.parameters()]
    penalty = sum(squares[1:], squares[0]) * lam
total_loss = data_loss + penalty
total_graph = total_loss.graph()
paths_l2 = total_graph.paths(model.fc1.weight)
for path in paths_l2:
    print("  " + " -> ".join(f"{n.op}[{n.scope or 'top'}]" for n in path) + " -> fc1.weight")
total_loss.backward()
change = model.fc1.weight.grad - grad_plain

lesson.claim("n_paths_fc1_plain", len(paths_plain),
             "paths from the cross-entropy loss to fc1.weight: {}")
lesson.claim("n_paths_fc1_l2", len(paths_l2), "with the L2 penalty: {}")
lesson.claim("l2_path_minus_2_lambda_w",
             np.abs(change - 2 * lam.item() * model.fc1.weight.data).max(),
             "the gradient changed by 2·λ·W, to within {:.1e}", at_most=1e-12)

# %%
fig, ax = plt.subplots(figsize=(14, 7))
total_graph.draw(ax=ax, title=f"MLP + L2 penalty: {len(total_graph)} nodes coloured by "
                              "scope; the 2 paths from the loss to fc1.weight in red")
highlight(ax, total_graph, paths_l2, model.fc1.weight, "a path from the loss to fc1.weight")
lesson.savefig(fig, "mlp_graph")
(lesson.figures / "mlp_graph.dot").write_text(total_graph.to_dot("mlp") + "\n")

# %% [markdown]
# ## The graph in a browser
#
# A recurrent network over many steps records thousands of nodes, too many for one picture.
# `graph.to_html(path)` writes the graph as one interactive page, a single file that opens
# in any browser, offline: scopes are boxes you open and close, a search box finds ops,
# scopes and parameters, and clicking a node shows its shape, the statistics of its value
# and gradient, the tensors its backward saved and the line of code that recorded it.
# `tt.explorer.Recorder` keeps a few training steps of the same model (values, gradients,
# gradient flow) and its page has a slider to scrub through them. Here a small traced LSTM
# learns to say whether its 8-step input sums to more than zero. Open the page, then the
# `lstm` box (its steps are its time axis), a step such as `t=5`, its `forget_gate`, and
# click the `sigmoid`; tick "heat" to colour every box by its gradient.

# %%
from tinytrace import explorer  # noqa: E402


class Summer(tt.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = tt.nn.LSTM(1, 4, mode="traced", rng=lesson.rng)
        self.head = tt.nn.Linear(4, 2, rng=lesson.rng)

    def forward(self, sequence):
        states, _ = self.lstm(sequence)
        return self.head(states[-1])


summer = Summer()
sequences = lesson.rng.normal(size=(8, 16, 1)).astype(np.float32)       # (T, B, 1)
labels = (sequences.sum(axis=(0, 2)) > 0).astype(int)
optimizer = tt.optim.Adam(summer.parameters(), lr=0.05)
recorder = explorer.Recorder(split=["*/forget_gate"])
for step in range(lesson.pick(quick=3, full=6)):
    with explorer.sources():                     # remember each node's line of code
        summer_loss = tt.nn.functional.cross_entropy(summer(tt.tensor(sequences)), labels)
    recorder.add(summer_loss, label=f"training step {step}")
    summer_loss.backward()
    optimizer.step()
    optimizer.zero_grad()
page = recorder.to_html(lesson.figures / "lstm_explorer.html",
                        title="a traced LSTM, step by step")
print(f"[page] {page} (open it in a browser)")

# %% [markdown]
# ## What to remember
#
# - The graph is data: a topologically ordered list of nodes with ops, inputs, attrs and
#   scopes. Printing, exporting, drawing, backward itself: all are loops over that list.
# - The gradient of a weight is the sum over all paths from the loss to it of the product
#   of local derivatives. Forks (values read twice) multiply the number of paths.
# - Scopes name where each node came from; later lessons use them to ask *which part of
#   the model* the gradient flowed through. Next, lesson 3 trains an MLP on real data.

# %%
lesson.done()
