"""The feed-forward layers: ``Linear``, ``Embedding``, ``Sequential``, ``Dropout`` and
activations."""
import numpy as np

from .. import functions as F
from ..random import generator
from .checks import check_shape, layer_input, size_arg
from .functional import dropout, embedding
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
    """A lookup table: row ``i`` of ``weight`` is the vector of token ``i`` (N(0, 1) init)."""

    def __init__(self, num_embeddings, embedding_dim, dtype=np.float32, rng=None):
        super().__init__()
        num_embeddings = size_arg("Embedding", "num_embeddings", num_embeddings)
        embedding_dim = size_arg("Embedding", "embedding_dim", embedding_dim)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(generator(rng).standard_normal(
            (num_embeddings, embedding_dim)).astype(dtype))

    def forward(self, indices):
        return embedding(indices, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Sequential(Module):
    """Apply the given modules in order; they are named "0", "1", ..."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

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


class Dropout(Module):
    """Inverted dropout as ``torch.nn.Dropout(p)``: while ``training`` (after ``.train()``,
    the default) each element is zeroed with probability ``p`` and the rest scaled by
    ``1 / (1 - p)``; after ``.eval()`` it returns its input unchanged. The mask comes from
    ``rng`` (a Generator or a seed) or, by default, tinytrace's global generator, which
    ``tt.manual_seed`` reseeds; see ``nn.functional.dropout``."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1] (the chance of "
                             f"zeroing an element), got {p!r}")
        self.p = float(p)
        # one stream for the layer's life: a seed gives a new mask each call, reproducibly
        self.rng = None if rng is None else generator(rng)

    def forward(self, x):
        return dropout(x, self.p, self.training, self.rng)

    def extra_repr(self):
        return f"p={self.p}"
