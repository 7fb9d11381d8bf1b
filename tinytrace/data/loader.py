"""Minibatches of arrays, and padding for variable-length sequences.

``DataLoader(data, batch_size, shuffle=True, seed=0)`` iterates over an array, or a tuple
of arrays sharing their first axis (inputs and labels), in minibatches; each ``for``
over it is one epoch. ``pad_sequences`` turns a list of (T_i, F) sequences into one
zero-padded (T, B, F) array and the ``lengths`` that the recurrent layers take
(``lstm(x, lengths=lengths)``), so padding never reaches a layer's state.

How this differs from ``torch.utils.data.DataLoader``: it takes the arrays themselves (no
``Dataset`` class), yields NumPy arrays (wrap them with ``tt.tensor``; integer labels go
to the losses as they are), runs in the calling process (no workers) and is seeded with
``seed=`` instead of a ``generator=``. ``collate`` receives a whole batch at once in the
data's own structure, not a list of samples.
"""
import numbers

import numpy as np

from .. import functions as F
from ..backend import asarray_like
from ..errors import DTypeError, ShapeError
from ..random import generator
from ..tensor import Tensor


def pad_sequences(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """``(padded, lengths)`` for a list of B arrays of shapes (T_i, *F) (F the same for
    all, possibly empty: token ids are (T_i,)): ``padded`` is (T, B, *F) with T the
    longest T_i (``batch_first=True``: (B, T, *F)), sequence b in ``padded[:T_b, b]`` and
    ``padding_value`` after it (``padding_side="left"``: before it, in
    ``padded[T - T_b:, b]``, as ``torch.nn.utils.rnn.pad_sequence``'s option; the
    recurrent layers' ``lengths`` assume right padding); ``lengths`` is the int64 array
    of the T_i, in the given order (no sorting needed: the recurrent layers take them
    unsorted, like ``pack_padded_sequence(..., enforce_sorted=False)``). The dtype is the
    sequences' common one (``np.result_type``); a ``padding_value`` that dtype cannot hold
    (nan or 0.5 for integer tokens) is refused rather than rounded.

    Arrays give an array. If any sequence is a Tensor (an embedding's output, say),
    ``padded`` is a Tensor built in the graph (``concat`` with the padding, then
    ``stack``), so gradients flow back to each sequence, as through PyTorch's
    ``pad_sequence``."""
    if isinstance(sequences, np.ndarray) or not hasattr(sequences, "__len__"):
        raise TypeError(f"pad_sequences: expected a list of arrays (one per sequence), not "
                        f"{type(sequences).__name__}")
    if len(sequences) == 0:
        raise ValueError("pad_sequences: no sequences to pad (an empty list)")
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequences: padding_side must be 'right' or 'left', not "
                         f"{padding_side!r}")
    arrays = [np.asarray(s) for s in sequences]
    for b, a in enumerate(arrays):
        if a.ndim == 0:
            raise ShapeError(f"pad_sequences: sequence {b} is a scalar; each must be (T_i, ...) "
                             "with time first")
        if a.shape[1:] != arrays[0].shape[1:]:
            raise ShapeError(f"pad_sequences: sequence {b} has feature shape {a.shape[1:]} "
                             f"(shape {a.shape}) but sequence 0 has {arrays[0].shape[1:]} "
                             f"(shape {arrays[0].shape}); only the time axis may differ")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    dtype = np.result_type(*arrays)
    _check_fits(padding_value, dtype)
    steps = int(lengths.max())
    if any(isinstance(s, Tensor) for s in sequences):
        return _pad_tensors(sequences, steps, batch_first, padding_value, padding_side), lengths
    padded = np.full((steps, len(arrays)) + arrays[0].shape[1:], padding_value, dtype=dtype)
    for b, a in enumerate(arrays):
        if padding_side == "right":
            padded[:len(a), b] = a
        else:
            padded[steps - len(a):, b] = a
    return (np.swapaxes(padded, 0, 1).copy() if batch_first else padded), lengths


def _pad_tensors(sequences, steps, batch_first, padding_value, padding_side):
    """Sequences of which some are Tensors, padded in the graph (as PyTorch's
    ``pad_sequence`` pads tensors): each is joined to a constant block of
    ``padding_value`` (a ``concat``), then all are stacked, so the gradient reaches every
    sequence's own steps and the padding gets none."""
    dtypes = {s.dtype for s in sequences if isinstance(s, Tensor)}
    if len(dtypes) > 1:
        raise DTypeError(f"pad_sequences: the Tensors are of different dtypes "
                         f"{sorted(str(d) for d in dtypes)}; convert them to one")
    like = next(s for s in sequences if isinstance(s, Tensor))
    columns = []
    for s in sequences:
        s = s if isinstance(s, Tensor) else Tensor(asarray_like(s, like.data, dtype=like.dtype))
        missing = steps - s.shape[0]
        if missing:
            block = np.full((missing,) + tuple(s.shape[1:]), padding_value)
            pad = Tensor(asarray_like(block, like.data, dtype=like.dtype))
            s = F.concat([s, pad] if padding_side == "right" else [pad, s], axis=0)
        columns.append(s)
    return F.stack(columns, axis=0 if batch_first else 1)


def _check_fits(value, dtype):
    """Refuse a padding value that an integer ``dtype`` would change (NumPy would turn
    nan into an arbitrary integer and 0.5 into 0, silently). Float sequences take any
    value (rounded to their precision, as the sequences themselves are)."""
    if np.dtype(dtype).kind not in "biu":
        return
    with np.errstate(invalid="ignore", over="ignore"):
        stored = np.array(value).astype(dtype)
    if stored != value:
        raise ValueError(f"pad_sequences: padding_value {value!r} does not fit the "
                         f"sequences' dtype {np.dtype(dtype)} (it would be stored as "
                         f"{stored.item()!r}); pass a value of that type")


def _pad_ragged(part):
    """The ``collate="pad"`` rule for one part of a batch: a list of sequences becomes
    ``(padded (T, B, ...), lengths)``; an array (labels) stays as it is."""
    return pad_sequences(part) if isinstance(part, list) else part


def _is_sample_list(data):
    """A list of tuples: samples as a PyTorch map-style dataset holds them."""
    return isinstance(data, list) and len(data) > 0 and all(isinstance(s, tuple)
                                                            for s in data)


def _parts_of_samples(samples):
    """A list of N samples ``(x_i, y_i, ...)`` as the tuple of parts ``(xs, ys, ...)``,
    each a list (``_list_part`` then decides which to stack)."""
    widths = {len(s) for s in samples}
    if len(widths) > 1:
        raise ShapeError(f"DataLoader: the samples are tuples of different lengths "
                         f"{sorted(widths)}; each must hold the same parts")
    return tuple([s[k] for s in samples] for k in range(widths.pop()))


def _list_part(items, collate):
    """A part of data given as a list: one array (N, ...) when its items share a shape
    and ``collate`` is None (as PyTorch's default collate stacks them), or for
    ``collate="pad"`` when they are single numbers (labels); otherwise the list itself
    (ragged sequences, sequences for ``"pad"`` to pad, what a custom collate gets)."""
    arrays = [np.asarray(a) for a in items]
    if arrays and len({a.shape for a in arrays}) == 1 and (
            collate is None or (collate == "pad" and arrays[0].ndim == 0)):
        return np.stack(arrays)
    return items


class _Examples:
    """What ``loader.dataset`` is: the data as given, its length the number of examples
    (so ``total / len(loader.dataset)`` averages per example as in PyTorch code)."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        first = self.data[0] if isinstance(self.data, tuple) and self.data else self.data
        return len(first)

    def __getitem__(self, i):
        if isinstance(self.data, tuple):
            return tuple(part[i] for part in self.data)
        return self.data[i]


class DataLoader:
    """Minibatches of ``data``: an array (or list), or a tuple of them with the same
    length, split along the first axis. Iterating is one epoch; ``len()`` is the number
    of batches.

    ``shuffle=True`` visits the examples in a random order drawn from a generator made
    once from ``seed`` (None: tinytrace's global generator, which ``tt.manual_seed``
    reseeds), so each epoch has a new order and the sequence of epochs repeats for the
    same seed. ``drop_last=True`` leaves out a last batch smaller than ``batch_size``.

    Parts that are arrays are indexed (``x[idx]``). A part given as a list is stacked into
    one array when its items share a shape and ``collate`` is None (PyTorch's default
    collate); a list of sequences of different lengths (or any list part under a custom
    ``collate``, or sequences for ``collate="pad"``) stays a list and gives lists. A list
    of sample tuples ``[(x_0, y_0), ...]`` (a PyTorch dataset kept as a list) is taken
    apart into the parts ``(xs, ys)`` first; batches are then tuples ``(x, y)``. (Under
    ``collate="pad"`` every such part whose items have an axis counts as sequences and is
    padded; give vector labels, one-hot say, as an array part: ``((sequences, labels))``.) ``collate`` (a function) is then called on each
    batch, in the data's structure (one part, or a tuple of parts), and its result is
    yielded; ``collate="pad"`` pads each list part with ``pad_sequences``, so
    ``DataLoader((sequences, labels), 8, collate="pad")`` yields
    ``((x (T, B, F), lengths), labels)``. See the module docstring for how this differs
    from PyTorch's loader.
    """

    def __init__(self, data, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 collate=None):
        if isinstance(data, (dict, set, frozenset)):
            raise TypeError(f"DataLoader: data must be an array, a list, or a tuple of them "
                            f"(inputs, labels), not {type(data).__name__}")
        if _is_sample_list(data):
            data = _parts_of_samples(data)
        # as torch's loader.dataset: len(loader.dataset) is the number of examples
        self.dataset = _Examples(data)
        self.single = not isinstance(data, tuple)
        parts = (data,) if self.single else data
        if not parts:
            raise ValueError("DataLoader: data is an empty tuple")
        self.parts = tuple(_list_part(p, collate) if isinstance(p, list) else np.asarray(p)
                           for p in parts)
        for k, p in enumerate(self.parts):
            if not isinstance(p, list) and p.ndim == 0:
                raise ShapeError(f"DataLoader: part {k} of data is a scalar; each part needs "
                                 "a first axis of examples")
        sizes = [len(p) for p in self.parts]
        if len(set(sizes)) > 1:
            raise ShapeError(f"DataLoader: the parts of data hold {sizes} examples; they "
                             "must have the same length (the first axis)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or \
                batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        if collate == "pad":
            collate = self._pad
        elif collate is not None and not callable(collate):
            raise TypeError(f"DataLoader: collate must be a function or 'pad', not "
                            f"{collate!r}")
        self.num_examples, self.batch_size = sizes[0], int(batch_size)
        self.shuffle, self.drop_last, self.collate = shuffle, drop_last, collate
        # made once: each epoch draws the next permutation from the same stream
        self.rng = generator(seed) if seed is not None else None

    def _pad(self, batch):
        return _pad_ragged(batch) if self.single else tuple(_pad_ragged(p) for p in batch)

    def __len__(self):
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        if self.shuffle:
            order = (self.rng if self.rng is not None else generator()).permutation(
                self.num_examples)
        else:
            order = np.arange(self.num_examples)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            batch = tuple([p[i] for i in idx] if isinstance(p, list) else p[idx]
                          for p in self.parts)
            batch = batch[0] if self.single else batch
            yield self.collate(batch) if self.collate is not None else batch

    def __repr__(self):
        return (f"DataLoader({self.num_examples} examples in {len(self)} batches of "
                f"{self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last})")
