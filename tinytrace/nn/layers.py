"""The feed-forward layers: ``Linear``, ``Embedding``, ``Sequential``, ``Dropout``,
activations (``ReLU``, ``Tanh``, ``Sigmoid``, ``Softmax``, ``LogSoftmax``), ``Identity`` and
``Flatten``. (``tt.nn`` exports the first seven; the rest are ``tt.nn.layers.X``.)"""
from collections import OrderedDict

import numpy as np

from .. import functions as F
from ..context import scope_phrase
from ..random import generator
from .checks import check_shape, layer_input, size_arg
from .functional import (_embedding, check_inplace, check_probability, check_rng,
                         dropout, padding_index)
from .module import Module, Parameter


def uniform(shape, bound, dtype, rng=None):
    """U(-bound, bound): PyTorch's default initialisation for Linear and recurrent layers."""
    return generator(rng).uniform(-bound, bound, size=shape).astype(dtype)


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        in_features = size_arg("Linear", "in_features", in_features)
        out_features = size_arg("Linear", "out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        rng = generator(rng)     # one stream: a seed must not give bias = weight's first draws
        bound = 1 / np.sqrt(in_features)
        self.weight = Parameter(uniform((out_features, in_features), bound, dtype, rng))
        self.bias = Parameter(uniform((out_features,), bound, dtype, rng)) if bias else None

    def forward(self, x):
        """``x`` (..., in_features): a Tensor or an array (see ``nn.checks``)."""
        x = layer_input(self, x, "input", self.weight.dtype)
        check_shape(self, x, "input", f"(..., in_features={self.in_features})",
                    x.ndim >= 1 and x.shape[-1] == self.in_features)
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` (num_embeddings, embedding_dim) is the vector
    of token ``i`` (N(0, 1) init, as PyTorch). ``padding_idx`` (as in PyTorch; negative
    counts from the end) names a row that starts at zero and gets no gradient, so padding
    tokens map to a fixed vector."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32,
                 rng=None, *, _weight=None, _freeze=False):
        super().__init__()
        num_embeddings = size_arg("Embedding", "num_embeddings", num_embeddings)
        embedding_dim = size_arg("Embedding", "embedding_dim", embedding_dim)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if isinstance(padding_idx, (type, np.dtype)):
            raise TypeError(f"Embedding: the third argument is padding_idx (PyTorch's order), "
                            f"not a dtype; pass dtype={padding_idx!r} by name")
        self.padding_idx = None if padding_idx is None else padding_index(
            "Embedding", padding_idx, num_embeddings)
        if _weight is not None:          # from_pretrained: the given table, as it is
            self.weight = Parameter(_weight, requires_grad=not _freeze)
            return
        weight = generator(rng).standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        if self.padding_idx is not None:
            weight[self.padding_idx] = 0
        self.weight = Parameter(weight)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None):
        """An ``Embedding`` whose table is a copy of ``embeddings`` (2-d, its dtype kept),
        as ``torch.nn.Embedding.from_pretrained``: ``freeze=True`` makes the table a
        constant (``requires_grad=False``); the ``padding_idx`` row is kept as given."""
        data = embeddings.numpy() if hasattr(embeddings, "numpy") else np.asarray(embeddings)
        if data.ndim != 2 or data.dtype.kind != "f":
            raise ValueError(f"Embedding.from_pretrained: embeddings must be a 2-d float "
                             f"array (num_embeddings, embedding_dim), got {data.dtype} of "
                             f"shape {data.shape}")
        return cls(data.shape[0], data.shape[1], padding_idx, dtype=data.dtype,
                   _weight=data.copy(), _freeze=freeze)

    def forward(self, indices):
        """``indices`` (any shape, integers) -> (*indices.shape, embedding_dim)."""
        return _embedding(f"Embedding in {scope_phrase()}", indices, self.weight,
                          self.padding_idx)

    def extra_repr(self):
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class Sequential(Module):
    """Apply the given modules in order, as ``torch.nn.Sequential``: named "0", "1", ...,
    or by the keys of one ``OrderedDict`` (``Sequential(OrderedDict(fc=..., act=...))``).
    ``seq[i]`` is a layer, ``seq[a:b]`` a Sequential of the same layers under the same
    names (so their scopes and parameter names do not change); ``append`` adds one."""

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            named = list(layers[0].items())
        else:
            named = [(str(i), layer) for i, layer in enumerate(layers)]
        for name, layer in named:
            self._add(name, layer)

    def _add(self, name, layer):
        if not isinstance(layer, Module):
            # a plain function would be stored but never called: refuse it here
            raise TypeError(f"Sequential: layer {name!r} must be a Module, not "
                            f"{type(layer).__name__} {layer!r} (wrap a function in a Module "
                            f"with a forward)")
        setattr(self, name, layer)

    def append(self, layer):
        """Add ``layer`` at the end (named by its position); returns this Sequential."""
        self._add(str(len(self)), layer)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, i):
        items = list(self._modules.items())
        if isinstance(i, slice):
            # the same layers, registered directly: setattr would rename their parameters
            # (``p.name``) to paths in the slice, losing the names they have in the model
            view = Sequential()
            for name, layer in items[i]:
                view._modules[name] = layer
                object.__setattr__(view, name, layer)
            return view
        if not -len(items) <= i < len(items):
            raise IndexError(f"Sequential: index {i} is out of range for {len(items)} layers")
        return items[i][1]

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x


class ReLU(Module):
    """``relu`` as a layer (for ``Sequential``)."""

    def forward(self, x):
        return F.relu(x)


class Tanh(Module):
    """``tanh`` as a layer (for ``Sequential``)."""

    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    """``sigmoid`` as a layer (for ``Sequential``)."""

    def forward(self, x):
        return F.sigmoid(x)


class Identity(Module):
    """Its input, unchanged (``torch.nn.Identity``: a placeholder in a ``Sequential``)."""

    def forward(self, x):
        return x


class Flatten(Module):
    """Axes ``start_dim`` to ``end_dim`` merged into one, as ``torch.nn.Flatten`` (by
    default all but the batch axis: (N, C, H, W) -> (N, C H W)); see ``Tensor.flatten``."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.as_tensor(x).flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Softmax(Module):
    """``softmax`` along ``dim`` as a layer (``torch.nn.Softmax(dim)``). ``dim`` is
    required: PyTorch's guess when it is left out is deprecated there."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = _required_dim(type(self).__name__, dim)

    def forward(self, x):
        return F.softmax(x, dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """``log_softmax`` along ``dim`` as a layer (``torch.nn.LogSoftmax(dim)``; ``dim``
    required), e.g. before ``NLLLoss``."""

    def forward(self, x):
        return F.log_softmax(x, dim=self.dim)


def _required_dim(owner, dim):
    if dim is None:
        raise TypeError(f"{owner}: give dim, the axis to normalise (e.g. {owner}(dim=-1)); "
                        "PyTorch's implicit choice is deprecated")
    return dim


class Dropout(Module):
    """Inverted dropout as ``torch.nn.Dropout(p, inplace=False)``: while ``training``
    (after ``.train()``, the default) each element is zeroed with probability ``p`` and the
    rest scaled by ``1 / (1 - p)``; after ``.eval()`` it returns its input unchanged. The
    mask comes from ``rng`` (a Generator or a seed) or, by default, tinytrace's global
    generator, which ``tt.manual_seed`` reseeds; see ``nn.functional.dropout``
    (``inplace=True`` is refused there)."""

    def __init__(self, p=0.5, inplace=False, rng=None):
        super().__init__()
        self.p = check_probability("Dropout", p)
        check_inplace("Dropout", inplace)
        # one stream for the layer's life: a seed gives a new mask each call, reproducibly
        self.rng = None if rng is None else generator(check_rng("Dropout", rng))

    def forward(self, x):
        return dropout(x, self.p, self.training, rng=self.rng)

    def extra_repr(self):
        return f"p={self.p}"
