"""Formal-language tasks for next-symbol prediction, generated offline and seeded.

Four languages that a recurrent network can only model with some kind of memory:

=================  ====================  ========================  ======================
task               a string of size n    example (n = 2)           memory it needs
=================  ====================  ========================  ======================
``AnBn``           aⁿbⁿ                  ``aabb``                  one counter
``AnBnCn``         aⁿbⁿcⁿ                ``aabbcc``                two counters
``Reversal``       w # reverse(w), |w|=n ``ab#ba``                 a stack of symbols
``Dyck2``          n balanced pairs of   ``([])`` or ``()[]``      a stack of bracket types
                   ``()`` and ``[]``
=================  ====================  ========================  ======================

Every task works the same way::

    task = tt.data.AnBn(seed=0)                # train sizes n in 1..10, test sizes 11..20
    batch = task.sample(32, "train")           # or "test", or an (lo, hi) range, inclusive
    batch.inputs         # (T, B) int64: start symbol, then the string, then padding
    batch.targets        # (T, B) int64: the string, then the end symbol, then padding
    batch.lengths        # (B,) real positions per column = len(string) + 1
    batch.mask           # (T, B) bool: t < length (the positions to train on)
    batch.deterministic  # (T, B) bool: the positions scored by sequence_accuracy
    batch.allowed        # (T, B, V) bool: every symbol the language allows next
    x = batch.one_hot()  # (T, B, V) float32 inputs for a recurrent layer

Randomness: each task owns a NumPy Generator seeded by ``seed`` (default 0), so successive
``sample`` calls differ but a run is reproducible; ``sample(..., rng=...)`` takes a
Generator or a seed instead (the same seed gives the same batch).

A model reads ``inputs[t]`` and predicts ``targets[t]``, the next symbol. Train on the real
positions, e.g. ``F.cross_entropy(logits[batch.mask], batch.targets[batch.mask])`` with
``logits`` of shape (T, B, V), and score with ``sequence_accuracy(logits, batch)``.

**Which positions are deterministic.** Most of a string is random (how many a's, which
bracket opens), so a perfect model cannot predict it; Joulin & Mikolov (2015, "Inferring
Algorithmic Patterns with Stack-Augmented Recurrent Nets") therefore score only the
*deterministic* part, and count a sequence correct only if every deterministic prediction
in it is right. Here a position is deterministic when the prefix read so far leaves exactly
one possible next symbol in the language (all sizes n >= 1, whatever the train/test split;
the model is not told the split). For aⁿbⁿ that is the first ``a`` (a string always starts
with one) and everything after the first ``b``: the remaining b's and the end symbol. For
aⁿbⁿcⁿ: the first ``a``, then everything after the first ``b``. For reversal: everything
after the marker ``#``, end symbol included. Dyck-2 never forces the next symbol (a new
bracket may always open), so for it we score what its stack decides: at every position
where the string closes a bracket, *which* bracket closes is fixed by the prefix. Its
generator closes an open bracket with probability 1/2 (each opener 1/4), so a model that
predicts the most likely next symbol predicts the right closer there.

**Splits by length.** ``train_range`` and ``test_range`` are inclusive ranges of the size
n and must not overlap, so test strings are strictly longer than anything seen in training
(length generalisation).
"""
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Vocabulary", "Batch", "FormalTask", "AnBn", "AnBnCn", "Reversal", "Dyck2",
           "sequence_accuracy", "position_accuracy", "TASKS"]


class Vocabulary:
    """Single-character symbols with three specials: pad ``_`` (0), start ``^`` (1) and
    end ``$`` (2), then the task's alphabet in the given order."""

    PAD, START, END = "_", "^", "$"

    def __init__(self, symbols):
        symbols = tuple(symbols)
        specials = (self.PAD, self.START, self.END)
        if any(len(s) != 1 for s in symbols) or set(symbols) & set(specials) \
                or len(set(symbols)) != len(symbols):
            raise ValueError(f"Vocabulary: symbols must be distinct single characters other "
                             f"than {specials}, got {symbols}")
        self.symbols = specials + symbols
        self.index = {s: i for i, s in enumerate(self.symbols)}

    pad = property(lambda self: 0, doc="The id of the padding symbol \"_\" (0).")
    start = property(lambda self: 1, doc="The id of the start symbol \"^\" (1).")
    end = property(lambda self: 2, doc="The id of the end symbol \"$\" (2).")

    def __len__(self):
        return len(self.symbols)

    def __repr__(self):
        return f"Vocabulary({''.join(self.symbols)!r})"

    def encode(self, string):
        """The ids of the characters of ``string`` (int64 array); unknown ones raise."""
        try:
            return np.array([self.index[c] for c in string], dtype=np.int64)
        except KeyError:
            bad = sorted({c for c in string if c not in self.index})
            raise ValueError(f"Vocabulary.encode: symbols {bad} are not in {self!r}") from None

    def decode(self, ids, strip=True):
        """The string of ``ids``; with ``strip``, padding is dropped."""
        text = "".join(self.symbols[int(i)] for i in np.asarray(ids).reshape(-1))
        return text.replace(self.PAD, "") if strip else text

    def one_hot(self, ids, dtype=np.float32):
        """``ids`` of any shape -> array of shape ``ids.shape + (len(self),)``."""
        return np.eye(len(self), dtype=dtype)[np.asarray(ids)]


@dataclass
class Batch:
    """A padded, time-major batch of strings for next-symbol prediction (see module doc)."""

    strings: list
    ns: np.ndarray              # (B,) the size parameter n of each string
    inputs: np.ndarray          # (T, B) int64
    targets: np.ndarray         # (T, B) int64
    lengths: np.ndarray         # (B,) int64, real positions per column
    mask: np.ndarray            # (T, B) bool
    deterministic: np.ndarray   # (T, B) bool
    allowed: np.ndarray         # (T, B, V) bool
    vocab: Vocabulary = field(repr=False)

    @property
    def batch_size(self):
        """How many strings the batch holds."""
        return self.inputs.shape[1]

    @property
    def steps(self):
        """T, the padded number of time steps."""
        return self.inputs.shape[0]

    def one_hot(self, dtype=np.float32, batch_first=False):
        """The inputs one-hot encoded: (T, B, V), or (B, T, V) with ``batch_first``."""
        x = self.vocab.one_hot(self.inputs, dtype)
        return x.transpose(1, 0, 2) if batch_first else x

    def show(self, b, predictions=None):
        """Column ``b`` as text: input, target, deterministic marks (and predictions)."""
        n = int(self.lengths[b])
        lines = ["input  " + self.vocab.decode(self.inputs[:n, b]),
                 "target " + self.vocab.decode(self.targets[:n, b]),
                 "det    " + "".join("*" if d else "." for d in self.deterministic[:n, b])]
        if predictions is not None:
            lines.append("pred   " + self.vocab.decode(_as_ids(predictions)[:n, b]))
        return "\n".join(lines)


class FormalTask:
    """A language with a size parameter n >= 1 and a train/test split of n.

    Subclasses define ``alphabet``, ``generate(n, rng)`` (one string of size n),
    ``contains(string)`` (membership) and ``allowed_next(string)`` (for every prefix of a
    string of the language, the set of symbols that may follow it, the end symbol ``$``
    included: ``len(string) + 1`` sets).
    """

    name = "task"
    alphabet = ""
    default_train = (1, 10)
    default_test = (11, 20)

    def __init__(self, train_range=None, test_range=None, seed=0):
        self.rng = np.random.default_rng(seed)
        self.train_range = _check_range(train_range or self.default_train, "train_range")
        self.test_range = _check_range(test_range or self.default_test, "test_range")
        lo = max(self.train_range[0], self.test_range[0])
        hi = min(self.train_range[1], self.test_range[1])
        if lo <= hi:
            raise ValueError(f"{type(self).__name__}: train_range {self.train_range} and "
                             f"test_range {self.test_range} overlap")
        self.vocab = Vocabulary(self.alphabet)

    def __repr__(self):
        return (f"{type(self).__name__}(train_range={self.train_range}, "
                f"test_range={self.test_range})")

    # ---- to define in a subclass ---------------------------------------------------
    def generate(self, n, rng):
        """One string of the language with size parameter ``n`` (``rng`` for the random
        ones)."""
        raise NotImplementedError

    def contains(self, string):
        """Is ``string`` in the language?"""
        raise NotImplementedError

    def allowed_next(self, string):
        """For each of the ``len(string) + 1`` prefixes of ``string`` (a string of the
        language), the set of symbols that may follow it, the end symbol ``$`` included."""
        raise NotImplementedError

    def size_of(self, string):
        """The size parameter n of a string of the language."""
        raise NotImplementedError

    def deterministic_positions(self, string):
        """Bool per target position (``len(string) + 1``): exactly one symbol may follow."""
        return np.array([len(a) == 1 for a in self.allowed_next(string)])

    # ---- batches -----------------------------------------------------------------------
    def n_range(self, which):
        """``"train"``, ``"test"``, an int n, or an inclusive ``(lo, hi)`` -> ``(lo, hi)``."""
        if isinstance(which, str):
            if which not in ("train", "test"):
                raise ValueError(f"n_range must be 'train', 'test' or (lo, hi), not {which!r}")
            return self.train_range if which == "train" else self.test_range
        if isinstance(which, (int, np.integer)):
            return _check_range((int(which), int(which)), "n_range")
        return _check_range(which, "n_range")

    def sample(self, batch_size, n_range="train", rng=None):
        """A batch of ``batch_size`` strings with n drawn uniformly from ``n_range``.

        ``rng``: a NumPy Generator or a seed (the same seed gives the same batch); by
        default the task's own generator (seeded at construction).
        """
        if rng is None:
            rng = self.rng
        elif not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        lo, hi = self.n_range(n_range)
        ns = rng.integers(lo, hi + 1, size=batch_size)
        return self.batch([self.generate(int(n), rng) for n in ns])

    def batch(self, strings):
        """A ``Batch`` of the given strings (each must be in the language)."""
        strings = list(strings)
        if not strings:
            raise ValueError("batch(): no strings")
        for s in strings:
            if not self.contains(s):
                raise ValueError(f"{type(self).__name__}.batch(): {s!r} is not in the language")
        vocab, B = self.vocab, len(strings)
        lengths = np.array([len(s) + 1 for s in strings], dtype=np.int64)
        T = int(lengths.max())
        inputs = np.full((T, B), vocab.pad, dtype=np.int64)
        targets = np.full((T, B), vocab.pad, dtype=np.int64)
        deterministic = np.zeros((T, B), dtype=bool)
        allowed = np.zeros((T, B, len(vocab)), dtype=bool)
        for b, s in enumerate(strings):
            ids = vocab.encode(s)
            L = len(s) + 1
            inputs[0, b] = vocab.start
            inputs[1:L, b] = ids
            targets[:L - 1, b] = ids
            targets[L - 1, b] = vocab.end
            deterministic[:L, b] = self.deterministic_positions(s)
            for t, symbols in enumerate(self.allowed_next(s)):
                allowed[t, b, vocab.encode("".join(sorted(symbols)))] = True
        mask = np.arange(T)[:, None] < lengths[None, :]
        ns = np.array([self.size_of(s) for s in strings], dtype=np.int64)
        return Batch(strings, ns, inputs, targets, lengths, mask, deterministic, allowed, vocab)


# ---- the four languages ----------------------------------------------------------------
class AnBn(FormalTask):
    """aⁿbⁿ, n >= 1 (Joulin & Mikolov 2015's first task): count the a's, then the b's."""

    name = "anbn"
    alphabet = "ab"

    def generate(self, n, rng=None):
        return "a" * n + "b" * n

    def size_of(self, string):
        return len(string) // 2

    def contains(self, string):
        n = len(string) // 2
        return n >= 1 and string == "a" * n + "b" * n

    def allowed_next(self, string):
        out, a, b = [], 0, 0
        for i in range(len(string) + 1):
            if i:
                a += string[i - 1] == "a"
                b += string[i - 1] == "b"
            if b == 0:
                out.append({"a"} if a == 0 else {"a", "b"})
            else:
                out.append({"b"} if b < a else {"$"})
        return out


class AnBnCn(FormalTask):
    """aⁿbⁿcⁿ, n >= 1: not context-free; needs two counters (or a counter and a stack)."""

    name = "anbncn"
    alphabet = "abc"

    def generate(self, n, rng=None):
        return "a" * n + "b" * n + "c" * n

    def size_of(self, string):
        return len(string) // 3

    def contains(self, string):
        n = len(string) // 3
        return n >= 1 and string == "a" * n + "b" * n + "c" * n

    def allowed_next(self, string):
        out, a, b, c = [], 0, 0, 0
        for i in range(len(string) + 1):
            if i:
                ch = string[i - 1]
                a, b, c = a + (ch == "a"), b + (ch == "b"), c + (ch == "c")
            if b == 0:
                out.append({"a"} if a == 0 else {"a", "b"})
            elif b < a:
                out.append({"b"})
            elif c < a:
                out.append({"c"})
            else:
                out.append({"$"})
        return out


class Reversal(FormalTask):
    """w # reverse(w) with w a random string of length n >= 1 over ``alphabet``: after
    the marker every symbol is the mirror image of one before it (a stack's job).

    ``alphabet``: the symbols of w, a string (default ``"ab"``) or a number of symbols
    (``3`` means ``"abc"``). The positions after the marker, end symbol included, are the
    deterministic ones that ``sequence_accuracy`` scores."""

    name = "reversal"
    marker = "#"

    def __init__(self, train_range=None, test_range=None, seed=0, alphabet="ab"):
        if isinstance(alphabet, (int, np.integer)) and not isinstance(alphabet, bool):
            if not 1 <= alphabet <= 26:
                raise ValueError(f"Reversal: an alphabet size must lie in 1..26, got {alphabet}")
            alphabet = "abcdefghijklmnopqrstuvwxyz"[:alphabet]
        if not isinstance(alphabet, str) or not alphabet:
            raise ValueError(f"Reversal: alphabet must be a non-empty string of symbols or a "
                             f"number of symbols, got {alphabet!r}")
        if self.marker in alphabet:
            raise ValueError(f"Reversal: the alphabet may not contain the marker {self.marker!r}")
        self.symbols = tuple(alphabet)
        self.alphabet = tuple(alphabet) + (self.marker,)
        super().__init__(train_range, test_range, seed)

    def generate(self, n, rng):
        w = "".join(self.symbols[i] for i in rng.integers(0, len(self.symbols), size=n))
        return w + self.marker + w[::-1]

    def size_of(self, string):
        return string.index(self.marker)

    def contains(self, string):
        if string.count(self.marker) != 1:
            return False
        w, rest = string.split(self.marker)
        return len(w) >= 1 and all(c in self.symbols for c in w) and rest == w[::-1]

    def allowed_next(self, string):
        out = []
        letters = set(self.symbols)
        k = string.index(self.marker)          # |w|
        for i in range(len(string) + 1):
            if i == 0:
                out.append(letters)
            elif i <= k:
                out.append(letters | {self.marker})
            else:
                j = i - k - 1                  # symbols already read after the marker
                out.append({string[k - 1 - j]} if j < k else {"$"})
        return out


class Dyck2(FormalTask):
    """Balanced strings of n >= 1 pairs of two bracket kinds, ``()`` and ``[]``.

    Generation: while brackets remain to open, open one (of a random kind) if none is open,
    else open with probability ``p_open`` (default 1/2) or close the innermost one; when all
    n have opened, close the rest. Scored positions (``deterministic``) are the closing
    brackets, whose kind the prefix fixes (see the module doc).
    """

    name = "dyck2"
    alphabet = "()[]"
    pairs = {"(": ")", "[": "]"}

    def __init__(self, train_range=None, test_range=None, seed=0, p_open=0.5):
        if not 0 < p_open < 1:
            raise ValueError(f"Dyck2: p_open must lie in (0, 1), got {p_open}")
        self.p_open = p_open
        super().__init__(train_range, test_range, seed)

    def generate(self, n, rng):
        out, open_stack, to_open = [], [], n
        openers = tuple(self.pairs)
        while to_open or open_stack:
            if to_open and (not open_stack or rng.random() < self.p_open):
                bracket = openers[int(rng.integers(0, len(openers)))]
                open_stack.append(bracket)
                out.append(bracket)
                to_open -= 1
            else:
                out.append(self.pairs[open_stack.pop()])
        return "".join(out)

    def size_of(self, string):
        return len(string) // 2

    def contains(self, string):
        if not string:
            return False
        closer_of, open_stack = self.pairs, []
        for ch in string:
            if ch in closer_of:
                open_stack.append(ch)
            elif not open_stack or closer_of[open_stack.pop()] != ch:
                return False
        return not open_stack

    def allowed_next(self, string):
        out, open_stack = [], []
        openers = set(self.pairs)
        for i in range(len(string) + 1):
            if i:
                ch = string[i - 1]
                if ch in self.pairs:
                    open_stack.append(ch)
                else:
                    open_stack.pop()
            if open_stack:
                out.append(openers | {self.pairs[open_stack[-1]]})
            else:
                out.append(openers if i == 0 else openers | {"$"})
        return out

    def deterministic_positions(self, string):
        closers = set(self.pairs.values())
        return np.array([c in closers for c in string] + [False])


TASKS = {cls.name: cls for cls in (AnBn, AnBnCn, Reversal, Dyck2)}


# ---- scoring ---------------------------------------------------------------------------
def _as_ids(predictions):
    """(T, B) predicted ids from ids, or from (T, B, V) scores (logits or probabilities)."""
    p = getattr(predictions, "data", predictions)
    p = p.get() if hasattr(p, "get") and not isinstance(p, np.ndarray) else np.asarray(p)
    return p.argmax(axis=-1) if p.ndim == 3 else p


def sequence_accuracy(predictions, batch, per_sequence=False):
    """Joulin & Mikolov's score: the fraction of sequences whose predictions are right at
    *every* deterministic position. ``predictions``: (T, B) ids or (T, B, V) scores (a
    Tensor or array; scores are argmaxed). ``per_sequence=True`` returns the (B,) bools."""
    ids = _as_ids(predictions)
    if ids.shape != batch.targets.shape:
        raise ValueError(f"sequence_accuracy: predictions have shape {ids.shape[:2]}, the "
                         f"batch has (T, B) = {batch.targets.shape}")
    wrong = (ids != batch.targets) & batch.deterministic
    correct = ~wrong.any(axis=0)
    return correct if per_sequence else float(correct.mean())


def position_accuracy(predictions, batch, positions="deterministic"):
    """The fraction of single positions predicted right: over the ``"deterministic"`` ones
    or over ``"all"`` real positions."""
    if positions not in ("deterministic", "all"):
        raise ValueError(f"positions must be 'deterministic' or 'all', not {positions!r}")
    ids = _as_ids(predictions)
    where = batch.deterministic if positions == "deterministic" else batch.mask
    return float((ids == batch.targets)[where].mean())


def _check_range(r, what):
    try:
        lo, hi = (int(v) for v in r)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an inclusive (lo, hi) pair of ints, got {r!r}") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"{what} must satisfy 1 <= lo <= hi, got ({lo}, {hi})")
    return lo, hi
