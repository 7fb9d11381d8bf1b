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

**Transduction tasks.** ``Transduction`` and its subclasses are Grefenstette et al.'s
(2015) string transductions read as one string ``source # target``: ``Copy`` (``abc#abc``),
``Reversal`` (``abc#cba``), ``BigramFlip`` (``abcd#badc``), ``DuplicatedString``
(``abc#aabbcc``), ``OddsFirst`` (``abcde#acebd``) and ``MarkedCopy`` (``ab!cd#cd``). The
source is random, so only the target (and the end symbol) is scored; n is the source
length, 8..64 for training and 65..128 for testing by default (``Reversal`` keeps its
lesson-sized defaults). Score with ``coarse_accuracy`` (the whole target right) and
``fine_accuracy`` (the share of the target right before the first error).

**Splits by length.** ``train_range`` and ``test_range`` are inclusive ranges of the size
n and must not overlap, so test strings are strictly longer than anything seen in training
(length generalisation).
"""
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Vocabulary", "Batch", "FormalTask", "AnBn", "AnBnCn", "Reversal", "Dyck2",
           "Transduction", "Copy", "BigramFlip", "DuplicatedString", "OddsFirst", "MarkedCopy",
           "sequence_accuracy", "position_accuracy", "coarse_accuracy", "fine_accuracy",
           "TASKS", "TRANSDUCTION_TASKS"]


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


# Symbols for an alphabet given by its size: letters first (so 2 means "ab", as before),
# then digits and Latin-1 / Latin Extended-A letters; every one a single character, as Vocabulary requires.
_SYMBOL_POOL = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                + "".join(chr(c) for c in range(0xC0, 0x180) if c not in (0xD7, 0xF7)))


class Transduction(FormalTask):
    """A string transduction read as one string ``source # target`` (Grefenstette et al.
    2015, "Learning to Transduce with Unbounded Memory"): ``source`` is a random string of
    length n over ``alphabet``, ``target = transform(source)``. The model reads the source
    and the separator ``#``; every position after it (the target, then the end symbol) is
    forced, so those are the ``deterministic`` positions that the scores use. Train on them
    with ``batch.deterministic`` as the loss mask (the paper scores and trains only the
    target), or on ``batch.mask`` like the other formal tasks.

    The size parameter n is the source length; by default train on n in 8..64 and test on
    65..128, the paper's split. ``alphabet``: a string of symbols or a number of them
    (``4`` means ``"abcd"``; at most 252); default 128 symbols.
    Score with ``coarse_accuracy`` and ``fine_accuracy``.

    Subclasses define ``transform(source)`` and, if not every length is allowed,
    ``valid_length(n)``.
    """

    separator = "#"
    default_train = (8, 64)
    default_test = (65, 128)
    min_symbols = 2             # with one symbol most transformations leave it unchanged
    reserved = ""               # symbols of the source other than the alphabet's

    def __init__(self, train_range=None, test_range=None, seed=0, alphabet=128):
        what = type(self).__name__
        if isinstance(alphabet, (int, np.integer)) and not isinstance(alphabet, bool):
            if not self.min_symbols <= alphabet <= len(_SYMBOL_POOL):
                raise ValueError(f"{what}: an alphabet size must lie in "
                                 f"{self.min_symbols}..{len(_SYMBOL_POOL)}, got {alphabet}")
            alphabet = _SYMBOL_POOL[:alphabet]
        if not isinstance(alphabet, str) or len(set(alphabet)) < self.min_symbols:
            raise ValueError(f"{what}: alphabet must be a string of at least "
                             f"{self.min_symbols} symbols or a number of symbols, got {alphabet!r}")
        clash = set(alphabet) & set(self.separator + self.reserved)
        if clash:
            raise ValueError(f"{what}: the alphabet may not contain {sorted(clash)}, the "
                             f"task's markers")
        self.symbols = tuple(alphabet)
        self.alphabet = tuple(alphabet) + tuple(self.reserved) + (self.separator,)
        super().__init__(train_range, test_range, seed)
        for name, (lo, hi) in (("train_range", self.train_range),
                               ("test_range", self.test_range)):
            if not any(self.valid_length(n) for n in range(lo, hi + 1)):
                raise ValueError(f"{what}: {name} ({lo}, {hi}) holds no valid source length")

    # ---- to define in a subclass ---------------------------------------------------
    def transform(self, source):
        """The target string for ``source``."""
        raise NotImplementedError

    def valid_length(self, n):
        """May a source have length ``n``? (Any n >= 1 by default.)"""
        return n >= 1

    def random_source(self, n, rng):
        """A random source of length ``n``: symbols drawn uniformly and independently."""
        return "".join(self.symbols[i] for i in rng.integers(0, len(self.symbols), size=n))

    def valid_source(self, source):
        """Is ``source`` a complete source of the task?"""
        return self.valid_length(len(source)) and all(c in self.symbols for c in source)

    def source_next(self, prefix):
        """The source symbols that may follow ``prefix`` (a prefix of a source)."""
        return set(self.symbols)

    # ---- FormalTask ----------------------------------------------------------------
    def generate(self, n, rng):
        if not self.valid_length(n):
            raise ValueError(f"{type(self).__name__}: no source has length {n}")
        source = self.random_source(n, rng)
        return source + self.separator + self.transform(source)

    def sample(self, batch_size, n_range="train", rng=None):
        """A batch of ``batch_size`` examples with the source length drawn uniformly from
        the valid lengths in ``n_range`` (see ``FormalTask.sample``)."""
        if rng is None:
            rng = self.rng
        elif not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        lo, hi = self.n_range(n_range)
        lengths = [n for n in range(lo, hi + 1) if self.valid_length(n)]
        if not lengths:
            raise ValueError(f"{type(self).__name__}: ({lo}, {hi}) holds no valid source length")
        ns = rng.choice(lengths, size=batch_size)
        return self.batch([self.generate(int(n), rng) for n in ns])

    def split(self, string):
        """``string`` -> ``(source, target)`` at the first separator."""
        source, _, target = string.partition(self.separator)
        return source, target

    def size_of(self, string):
        return string.index(self.separator)

    def contains(self, string):
        if self.separator not in string:
            return False
        source, target = self.split(string)
        return self.valid_source(source) and target == self.transform(source)

    def allowed_next(self, string):
        source, target = self.split(string)
        out = []
        for i in range(len(source) + 1):
            prefix = source[:i]
            allowed = self.source_next(prefix)
            if self.valid_source(prefix):
                allowed = allowed | {self.separator}
            out.append(allowed)
        out.extend({c} for c in target)
        out.append({"$"})
        return out

    def deterministic_positions(self, string):
        k = self.size_of(string)
        return np.arange(len(string) + 1) > k


class Copy(Transduction):
    """Sequence copying: ``target = source`` (``abc#abc``), a queue's job."""

    name = "copy"

    def transform(self, source):
        return source


class Reversal(Transduction):
    """Sequence reversal: ``w # reverse(w)``, |w| = n >= 1 (``ab#ba``), a stack's job.

    Unlike the other transduction tasks its defaults are lesson-sized: train n in 1..10,
    test 11..20, alphabet ``"ab"`` (lesson 7 relies on them); pass ``train_range=(8, 64)``,
    ``test_range=(65, 128)`` and ``alphabet=128`` for Grefenstette et al.'s protocol. The
    positions after the marker, end symbol included, are the deterministic ones that
    ``sequence_accuracy`` scores."""

    name = "reversal"
    marker = Transduction.separator
    default_train = (1, 10)
    default_test = (11, 20)
    min_symbols = 1

    def __init__(self, train_range=None, test_range=None, seed=0, alphabet="ab"):
        super().__init__(train_range, test_range, seed, alphabet)

    def transform(self, source):
        return source[::-1]


class BigramFlip(Transduction):
    """Bigram flipping: swap the symbols of each successive pair, ``abcd#badc``. Sources
    have even length, so odd lengths in a range are skipped and odd sources rejected."""

    name = "bigram_flip"

    def valid_length(self, n):
        return n >= 2 and n % 2 == 0

    def transform(self, source):
        if len(source) % 2:
            raise ValueError(f"BigramFlip: a source must have even length, got {len(source)}")
        return "".join(source[i + 1] + source[i] for i in range(0, len(source), 2))


class DuplicatedString(Transduction):
    """Duplicated string: every symbol twice in place, ``abc#aabbcc``."""

    name = "duplicated_string"

    def transform(self, source):
        return "".join(c + c for c in source)


class OddsFirst(Transduction):
    """Odds first: the symbols at the odd positions (1st, 3rd, ...), then those at the even
    positions (2nd, 4th, ...), ``abcde#acebd``."""

    name = "odds_first"

    def transform(self, source):
        return source[0::2] + source[1::2]


class MarkedCopy(Transduction):
    """Marked copy: the source holds one marker ``!`` at a random place; the target is the
    part after it, ``ab!cd#cd``. The model must find the marker and copy from there.

    The marker counts in the source length n >= 2 and is never last, so the target is
    never empty: it has n - 1 - m symbols, m (uniform in 0..n-2) before the marker."""

    name = "marked_copy"
    mark = "!"
    reserved = mark

    def valid_length(self, n):
        return n >= 2

    def random_source(self, n, rng):
        symbols = super().random_source(n - 1, rng)
        m = int(rng.integers(0, n - 1))
        return symbols[:m] + self.mark + symbols[m:]

    def valid_source(self, source):
        if source.count(self.mark) != 1 or source.endswith(self.mark):
            return False
        return all(c in self.symbols for c in source.replace(self.mark, ""))

    def source_next(self, prefix):
        return set(self.symbols) | ({self.mark} if self.mark not in prefix else set())

    def transform(self, source):
        if source.count(self.mark) != 1:
            raise ValueError(f"MarkedCopy: a source holds exactly one {self.mark!r}, got "
                             f"{source!r}")
        return source[source.index(self.mark) + 1:]


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
TRANSDUCTION_TASKS = {cls.name: cls for cls in (Copy, Reversal, BigramFlip, DuplicatedString,
                                                 OddsFirst, MarkedCopy)}


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


def _target_positions(ids, batch, what):
    """The (T, B) bool mask of target symbols of a transduction batch (after the separator,
    end symbol excluded), after checking the predictions' shape."""
    if ids.shape != batch.targets.shape:
        raise ValueError(f"{what}: predictions have shape {ids.shape[:2]}, the batch has "
                         f"(T, B) = {batch.targets.shape}")
    return batch.deterministic & (batch.targets != batch.vocab.end)


def coarse_accuracy(predictions, batch, per_sequence=False):
    """Grefenstette et al.'s coarse accuracy on a ``Transduction`` batch: the fraction of
    sequences whose target symbols (the positions after the separator, the end symbol
    excluded) are *all* predicted right. ``predictions``: (T, B) ids or (T, B, V) scores;
    ``per_sequence=True`` returns the (B,) bools. (``sequence_accuracy`` is the same
    with the end symbol also scored.)"""
    ids = _as_ids(predictions)
    target = _target_positions(ids, batch, "coarse_accuracy")
    correct = ~((ids != batch.targets) & target).any(axis=0)
    return correct if per_sequence else float(correct.mean())


def fine_accuracy(predictions, batch, per_sequence=False):
    """Grefenstette et al.'s fine accuracy on a ``Transduction`` batch: per sequence, the
    share of its target symbols predicted right *before the first error* (k / len(target)
    for a first error at target position k, counting from 0; 1 when all are right),
    averaged over sequences. Same arguments as ``coarse_accuracy``."""
    ids = _as_ids(predictions)
    target = _target_positions(ids, batch, "fine_accuracy")
    wrong = (ids != batch.targets) & target
    # a target position counts while no error has happened at it or before it
    before_first_error = target & (np.cumsum(wrong, axis=0) == 0)
    share = before_first_error.sum(axis=0) / target.sum(axis=0)
    return share if per_sequence else float(share.mean())


def _check_range(r, what):
    try:
        lo, hi = (int(v) for v in r)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an inclusive (lo, hi) pair of ints, got {r!r}") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"{what} must satisfy 1 <= lo <= hi, got ({lo}, {hi})")
    return lo, hi
