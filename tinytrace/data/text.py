"""English text for language models, offline: a corpus, a tokenizer, a word vocabulary.

    corpus = tt.data.load_corpus("python-docs", max_vocab=2000)
    corpus.train, corpus.validation      # int64 token ids
    corpus.vocab.decode(corpus.train[:12])
    tt.data.load_text_file("my_book.txt")  # the same, from any plain-text file

**Which text, and why.** The corpora here are documentation text that ships inside every
CPython installation, so they "install" with Python itself: nothing is downloaded, no
package is added, and CI and every learner's machine have the same text.

- ``"python-docs"`` (the default): the prose of the Python Language Reference and the
  other help topics, as ``pydoc_data.topics`` ships them for ``help("if")`` — about
  80 topics, 64,000 words of English with 3,100 distinct words on CPython 3.11.
- ``"python-docstrings"``: the docstrings of the standard library's own modules, read
  from their source files with ``ast`` (nothing is imported or run), tests and IDLE
  left out — about 260,000 words and 9,000 distinct words on CPython 3.11. It takes a
  few seconds to parse, so it is the one to use when a vocabulary of several thousand
  words is wanted.

Licence: this text is not public domain. It is Python's documentation, copyright the
Python Software Foundation, distributed under the PSF License Agreement together with
Python. tinytrace does not copy or redistribute any of it: it reads it at run time from
the Python installation the user already has, under the licence that came with it. A
learner who wants public-domain prose can point ``load_text_file`` at any plain-text book
(Project Gutenberg's texts, for instance).

**Tokens.** ``tokenize`` lower-cases (by default) and keeps words (letters, with inner
apostrophes as in "don't"), numbers and the punctuation marks ``. , ; : ! ?`` as separate
tokens; everything else (code symbols, brackets, quotes) is dropped.

**Vocabulary.** ``WordVocabulary`` is built from the *training* tokens only: id 0 is
``<unk>``, then the words by falling count (ties alphabetically). A word outside the
vocabulary — rare, or seen only in validation — becomes ``<unk>``.

**Split.** The token stream is cut into consecutive blocks of ``block`` tokens and a
fraction ``validation`` of the blocks, spread evenly (at 0.1: every tenth), goes to
validation, so both sides sample the whole text (the topics are alphabetical; a plain
tail split would validate on a few topics only).
"""
import ast
import re
from fractions import Fraction
import sysconfig
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["TOKEN_PATTERN", "tokenize", "WordVocabulary", "TextCorpus", "CORPORA",
           "corpus_text", "load_corpus", "load_text_file", "split_blocks"]

TOKEN_PATTERN = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*|\d+|[.,;:!?]")


def tokenize(text, lowercase=True):
    """The tokens of ``text`` (a list of str): words, numbers and ``. , ; : ! ?``."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize: expected a str, got {type(text).__name__}")
    if lowercase:
        text = text.lower()
    return TOKEN_PATTERN.findall(text)


class WordVocabulary:
    """Words <-> ids: ``<unk>`` is id 0, then the words by falling count (ties
    alphabetically). Build one with ``WordVocabulary.from_tokens(tokens, max_size=,
    min_count=)``; ``encode`` maps unknown words to ``<unk>``."""

    UNK = "<unk>"

    def __init__(self, words, counts=None):
        words = list(words)
        if self.UNK in words or len(set(words)) != len(words):
            raise ValueError("WordVocabulary: words must be distinct and must not contain "
                             f"{self.UNK!r} (it is added as id 0)")
        self.itos = [self.UNK] + words
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.counts = (np.zeros(len(self.itos), np.int64) if counts is None
                       else np.asarray(counts, dtype=np.int64))
        if self.counts.shape != (len(self.itos),):
            raise ValueError(f"WordVocabulary: counts must have one entry per id "
                             f"({len(self.itos)}), got shape {self.counts.shape}")

    unk = property(lambda self: 0, doc="The index of ``<unk>`` (0).")

    @classmethod
    def from_tokens(cls, tokens, max_size=None, min_count=1):
        """The vocabulary of ``tokens``: at most ``max_size`` ids (``<unk>`` included),
        only words seen at least ``min_count`` times. ``counts[0]`` is how many tokens
        became ``<unk>``."""
        if max_size is not None and max_size < 1:
            raise ValueError(f"WordVocabulary.from_tokens: max_size must be >= 1 (room for "
                             f"<unk>), got {max_size}")
        if min_count < 1:
            raise ValueError(f"WordVocabulary.from_tokens: min_count must be >= 1, got "
                             f"{min_count}")
        counter = Counter(tokens)
        counter.pop(cls.UNK, None)
        ranked = sorted(counter.items(), key=lambda wc: (-wc[1], wc[0]))
        kept = [(w, c) for w, c in ranked if c >= min_count]
        if max_size is not None:
            kept = kept[:max_size - 1]
        unknown = len(tokens) - sum(c for _, c in kept)
        return cls([w for w, _ in kept], [unknown] + [c for _, c in kept])

    def __len__(self):
        return len(self.itos)

    def __contains__(self, word):
        return word in self.stoi

    def __repr__(self):
        head = " ".join(self.itos[1:6])
        return f"WordVocabulary({len(self)} ids: <unk> {head} ...)"

    def encode(self, tokens):
        """int64 ids of ``tokens`` (a list of str); words not in the vocabulary -> 0."""
        if isinstance(tokens, str):
            raise TypeError("WordVocabulary.encode: expected a list of tokens, got a str "
                            "(tokenize it first: tt.data.tokenize(text))")
        get = self.stoi.get
        return np.fromiter((get(t, 0) for t in tokens), dtype=np.int64, count=len(tokens))

    def decode(self, ids):
        """The words of ``ids``, joined by spaces."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"WordVocabulary.decode: ids must lie in [0, {len(self)}), got "
                             f"range [{ids.min()}, {ids.max()}]")
        return " ".join(self.itos[int(i)] for i in ids)


def split_blocks(n, validation=0.1, block=1000):
    """Boolean mask over ``n`` positions: True for validation. Consecutive blocks of
    ``block`` positions; block b is validation when ``floor((b + 1) v) > floor(b v)``
    for ``v = validation``, which spreads a fraction v of the blocks evenly (v = 1/k:
    the last block of every k; the first block is always training)."""
    if not 0 < validation < 1:
        raise ValueError(f"split_blocks: validation must be a fraction in (0, 1), got "
                         f"{validation}")
    if block < 1:
        raise ValueError(f"split_blocks: block must be >= 1, got {block}")
    share = Fraction(validation).limit_denominator(1000)    # exact: no float rounding
    p, q = share.numerator, share.denominator
    block_index = np.arange(n) // block
    return (block_index + 1) * p // q > block_index * p // q


@dataclass
class TextCorpus:
    """A tokenized text: ``train`` and ``validation`` id arrays (int64) over ``vocab``,
    built from the training tokens only. ``name`` says where the text came from."""

    name: str
    vocab: WordVocabulary = field(repr=False)
    train: np.ndarray = field(repr=False)
    validation: np.ndarray = field(repr=False)

    def __repr__(self):
        return (f"TextCorpus({self.name!r}: {len(self.train):,} training and "
                f"{len(self.validation):,} validation tokens, vocabulary {len(self.vocab):,})")

    @property
    def unk_rate(self):
        """Fraction of validation tokens that are ``<unk>``."""
        return float(np.mean(self.validation == 0)) if len(self.validation) else 0.0


def _python_docs():
    try:
        from pydoc_data.topics import topics
    except ImportError:   # some distributions split pydoc_data off
        raise FileNotFoundError(
            "corpus 'python-docs': this Python has no pydoc_data package (some Linux "
            "distributions ship it separately); use 'python-docstrings' or "
            "load_text_file(path)") from None
    return "\n\n".join(topics[key] for key in sorted(topics))


def _stdlib_sources():
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "test", "tests", "idlelib", "__pycache__"}
    return [p for p in sorted(root.rglob("*.py"))
            if not skip.intersection(p.relative_to(root).parts)]


def _python_docstrings():
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    docs = []
    for path in _stdlib_sources():
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):   # a template or foreign file
            continue
        for node in ast.walk(tree):
            if isinstance(node, documented):
                doc = ast.get_docstring(node)
                if doc:
                    docs.append(doc)
    if not docs:
        raise FileNotFoundError("corpus 'python-docstrings': found no standard-library "
                                f"sources under {sysconfig.get_paths()['stdlib']}")
    return "\n\n".join(docs)


CORPORA = {"python-docs": _python_docs, "python-docstrings": _python_docstrings}


def corpus_text(name="python-docs"):
    """The raw text of a built-in corpus (see the module doc for what each one is)."""
    if name not in CORPORA:
        raise ValueError(f"corpus_text: unknown corpus {name!r}; choose one of "
                         f"{sorted(CORPORA)} or use load_text_file(path)")
    return CORPORA[name]()


def _build(text, name, max_vocab, min_count, validation, block, lowercase):
    tokens = tokenize(text, lowercase=lowercase)
    if len(tokens) < 2:
        raise ValueError(f"{name}: the text has {len(tokens)} token(s); a language model "
                         "needs at least 2")
    is_validation = split_blocks(len(tokens), validation, block)
    train_tokens = [t for t, v in zip(tokens, is_validation) if not v]
    vocab = WordVocabulary.from_tokens(train_tokens, max_size=max_vocab, min_count=min_count)
    ids = vocab.encode(tokens)
    return TextCorpus(name, vocab, ids[~is_validation], ids[is_validation])


def load_corpus(name="python-docs", max_vocab=None, min_count=1, validation=0.1,
                block=1000, lowercase=True):
    """A built-in corpus, tokenized and split (see the module doc): a ``TextCorpus``.

    ``max_vocab``: at most this many ids, ``<unk>`` included; ``min_count``: words rarer
    than this in the training part become ``<unk>``; ``validation``: the fraction of
    blocks of ``block`` tokens held out."""
    return _build(corpus_text(name), name, max_vocab, min_count, validation, block,
                  lowercase)


def load_text_file(path, max_vocab=None, min_count=1, validation=0.1, block=1000,
                   lowercase=True, encoding="utf-8"):
    """Any plain-text file, tokenized and split like ``load_corpus``: a ``TextCorpus``."""
    path = Path(path)
    try:
        text = path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise FileNotFoundError(f"load_text_file: no file {path}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"load_text_file: {path} is not {encoding} text ({e.reason} at "
                         f"byte {e.start}); pass encoding=... (e.g. 'latin-1')") from None
    return _build(text, str(path), max_vocab, min_count, validation, block, lowercase)
