"""Where each tracked parameter sits: in the flat vector, in its rows, module and gates.

The tracker works on one flat float64 vector of all tracked parameters (so an allocation
step is a handful of vector operations, whatever the model). ``Layout`` remembers how that
vector maps back: tensor ``k`` is ``flat[offsets[k]:offsets[k + 1]]`` with shape
``shapes[k]``; its rows (slices along axis 0, an output unit's incoming weights in
PyTorch's (out, in) layout; for a 1-D bias each element) start at ``row_starts``; it
belongs to the module ``modules[k]``; and if it is a recurrent layer's stacked weight,
``gates[name]`` says which row block is which gate.
"""
import numpy as np


class Layout:
    """How the flat parameter vector splits into tensors, rows, modules and gates."""

    def __init__(self, names, shapes, modules, gates):
        self.names = list(names)
        self.shapes = [tuple(s) for s in shapes]
        self.modules = list(modules)         # per tensor: its module path ("" at the top)
        self.gates = dict(gates)             # tensor name -> (gate names, hidden size)
        self.index = {name: k for k, name in enumerate(self.names)}
        sizes = [int(np.prod(s)) for s in self.shapes]
        self.sizes = sizes
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.size = int(self.offsets[-1])
        # One "row" per slice along axis 0 (a 0-d parameter is one row of one element).
        self.row_counts = [s[0] if len(s) else 1 for s in self.shapes]
        self.row_offsets = np.concatenate([[0], np.cumsum(self.row_counts)]).astype(np.int64)
        starts = []
        for k, (shape, rows) in enumerate(zip(self.shapes, self.row_counts)):
            width = sizes[k] // rows if rows else 0
            starts.append(self.offsets[k] + width * np.arange(rows, dtype=np.int64))
        self.row_starts = np.concatenate(starts)
        self.tensor_starts = self.offsets[:-1]

    @property
    def n_rows(self):
        """The number of rows (neurons and gate blocks) over all tensors."""
        return int(self.row_offsets[-1])

    def tensor_slice(self, name):
        """Where tensor ``name``'s parameters sit in the flat parameter vector."""
        k = self.index[name]
        return slice(int(self.offsets[k]), int(self.offsets[k + 1]))

    def row_slice(self, name):
        """Where tensor ``name``'s rows sit in the flat row vector."""
        k = self.index[name]
        return slice(int(self.row_offsets[k]), int(self.row_offsets[k + 1]))

    def layer_of(self, name):
        """A tensor's layer: its module path, or its own name if it sits at the top."""
        module = self.modules[self.index[name]]
        return module if module else name

    def layer_names(self):
        """The layers in model order, each once."""
        return list(dict.fromkeys(self.layer_of(n) for n in self.names))

    def unflatten(self, flat):
        """``{name: array of the parameter's shape}`` from a flat vector (views)."""
        flat = np.asarray(flat)
        return {name: flat[self.tensor_slice(name)].reshape(shape)
                for name, shape in zip(self.names, self.shapes)}


def module_layout(named_params, modules):
    """The ``Layout`` of ``named_params`` (``[(dotted.name, Parameter)]``) of a model whose
    ``named_modules()`` are ``modules``: every tensor's module path, and the gate blocks of
    the stacked weights of recurrent modules (any module with ``gates`` and
    ``hidden_size``: ``LSTM``/``GRU``/``RNN`` and their cells; rows k*H..(k+1)*H of
    ``weight_ih*``, ``weight_hh*``, ``bias_ih*``, ``bias_hh*`` are gate k, PyTorch's order).
    """
    gated = {path: (tuple(m.gates), int(m.hidden_size)) for path, m in modules
             if getattr(m, "gates", ()) and getattr(m, "hidden_size", None)}
    names, shapes, owners, gates = [], [], [], {}
    for name, p in named_params:
        module, _, leaf = name.rpartition(".")
        names.append(name)
        shapes.append(p.shape)
        owners.append(module)
        if module in gated and leaf.startswith(("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
            gate_names, hidden = gated[module]
            if len(p.shape) and p.shape[0] == len(gate_names) * hidden:
                gates[name] = (gate_names, hidden)
    return Layout(names, shapes, owners, gates)
