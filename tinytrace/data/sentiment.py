"""Sentiment classification data, offline: synthetic reviews from a human-rated lexicon,
and loaders for real review collections (IMDB's ``aclImdb`` folder, a CSV/TSV file).

**Synthetic reviews** (``SyntheticSentiment``). The words and their valences are real: the
VADER lexicon (Hutto & Gilbert 2014), in which ten human raters scored each of ~7,500
words and emoticons from -4 (extremely negative) to +4 (extremely positive). It ships in
the pip package ``vaderSentiment`` (MIT licence, copyright 2016 C.J. Hutto; see the
package's LICENSE.txt), installed with ``pip install vaderSentiment`` or the ``lessons``
extra; only the lexicon file is read, nothing of VADER's rule-based scorer. The sentiment
words are the lexicon's plain lowercase words whose mean rating has |valence| >=
``min_valence`` and on which the raters agreed (standard deviation <= ``max_std``);
``words_per_polarity`` of each sign are taken, evenly spread over the valence range (a
few offensive entries, ``EXCLUDED_PREFIXES``, are left out). A
hand-written vocabulary of everyday words that are *not* in the lexicon
(``NEUTRAL_WORDS``) fills the rest of a review.

A review is generated as: a length uniform in ``lengths`` (inclusive); a tone +1 or -1
(fair coin); each token a sentiment word with probability ``sentiment_rate``, else a
neutral word (uniform); a sentiment word agrees with the tone with probability
``agreement`` and is drawn uniformly among the words of its sign. Its **label is the sign
of the summed valence** of its words (1 positive, 0 negative), not the tone; reviews whose
|sum| is below ``margin`` are ambiguous and dropped (and redrawn, so ``sample(n)`` returns
n). There is no syntax, no negation and no word order in the label: it is a bag-of-words
rule by construction, which a bag-of-words logistic regression can learn too — the
baseline Maheswaranathan et al. (2019) report against.

**Real data.** ``load_imdb(path, split)`` reads Maas et al.'s ``aclImdb`` directory
(``<path>/<split>/pos/*.txt`` and ``neg/*.txt``, e.g. ``12_8.txt``: review 12, 8 stars);
``load_csv(path)`` reads a CSV or TSV file with a text and a label column; ``load_reviews``
picks one by the path. ``tokenize`` lowercases, removes IMDB's ``<br />`` and keeps words
(letters, digits, inner apostrophes); ``Vocabulary.build`` and ``Vocabulary.encode`` turn
token lists into the padded (T, B) index arrays and lengths the recurrent layers take.

Every loader returns ``Reviews``: ``tokens`` (a list of token lists), ``labels`` (int64,
1 = positive) and, for synthetic reviews, ``scores`` (the summed valence).
"""
import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Reviews", "Vocabulary", "SyntheticSentiment", "vader_lexicon", "tokenize",
           "load_imdb", "load_csv", "load_reviews", "NEUTRAL_WORDS"]

# Everyday words, none of them in the VADER lexicon (checked when the lexicon is loaded).
NEUTRAL_WORDS = tuple("""
the a an and or of to in on at by for from with as about into over under after before
this that these those it its he she they we you his her their our my your one two three
four five six first second third last next movie film plot story scene scenes actor
actress director script camera screen sound music score cast crew role roles character
characters dialogue ending opening sequence shot shots frame editing studio set sets
costume costumes location locations house room door window street city town car train
road river water table chair book page letter phone picture television radio series
episode season sequel remake version minute minutes hour hours day days night nights
week year years time morning evening summer winter family father mother brother sister
son daughter man woman men women boy girl child children people group team school office
hospital police doctor teacher student soldier officer captain king queen village island
country world army ship plane bridge tower garden kitchen hotel restaurant bar wedding
dinner breakfast lunch coffee tea bread shirt hat coat shoes bag box paper pen clock
wall floor roof stairs corner side front back middle end part parts half piece numbers
name names word words line lines voice face hands eyes head hair feet body moment
moments place places thing things way ways sort type style color colour light shadow sun
moon sky rain snow wind tree trees forest mountain hill field stone metal glass wood
smoke
""".split())

# Lexicon entries kept out of the synthetic reviews (profanity, slurs, sexual violence):
# a lesson's printed examples should not need a content warning.
EXCLUDED_PREFIXES = ("rape", "rapi", "wank", "fuck", "shit", "bitch", "bastard", "cunt",
                     "slut", "whore", "dick", "piss", "fag", "retard", "nigg", "douche",
                     "asshole", "prick", "twat", "kill", "suicid", "murder")

PAD, UNK = "<pad>", "<unk>"


# ---- the lexicon -------------------------------------------------------------------------

_LEXICON = None


def vader_lexicon():
    """The VADER lexicon as ``{token: (mean valence, std)}`` (valence in [-4, 4]).

    Read from the ``vaderSentiment`` pip package (MIT licence) on first use; raises an
    ImportError that says how to install it if it is missing."""
    global _LEXICON
    if _LEXICON is None:
        try:
            from importlib.resources import files
            text = files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(
                encoding="utf-8")
        except (ModuleNotFoundError, FileNotFoundError) as err:
            raise ImportError(
                "tinytrace.data.sentiment: the synthetic reviews use the VADER lexicon, which "
                "ships in the pip package 'vaderSentiment' (MIT licence). Install it with "
                "`pip install vaderSentiment` (or `pip install -e \".[lessons]\"`); the "
                "IMDB and CSV loaders do not need it") from err
        lexicon = {}
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                try:
                    lexicon[parts[0]] = (float(parts[1]), float(parts[2]))
                except ValueError:
                    continue
        _LEXICON = lexicon
    return _LEXICON


# ---- reviews, tokens and vocabularies ----------------------------------------------------

@dataclass
class Reviews:
    """A labelled collection of tokenised reviews: ``tokens`` (list of lists of str),
    ``labels`` (n,) int64, 1 positive and 0 negative; ``scores`` (n,) the summed lexicon
    valence for synthetic reviews (None for real ones)."""

    tokens: list
    labels: np.ndarray
    scores: np.ndarray = None

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.tokens) != len(self.labels):
            raise ValueError(f"Reviews: {len(self.tokens)} token lists but "
                             f"{len(self.labels)} labels")
        if self.labels.size and not np.isin(self.labels, (0, 1)).all():
            raise ValueError("Reviews: labels must be 0 (negative) or 1 (positive)")

    def __len__(self):
        return len(self.tokens)

    def __getitem__(self, index):
        """A subset by an index array, a boolean mask or a slice."""
        idx = np.arange(len(self))[index]
        return Reviews([self.tokens[i] for i in idx], self.labels[idx],
                       None if self.scores is None else self.scores[idx])

    def lengths(self):
        """The number of tokens of each review, (N,) int64."""
        return np.array([len(t) for t in self.tokens], dtype=np.int64)

    def split(self, fraction, rng=None):
        """Two disjoint random parts, the first with ``fraction`` of the reviews."""
        if not 0 < fraction < 1:
            raise ValueError(f"Reviews.split: fraction must be in (0, 1), got {fraction}")
        order = np.random.default_rng(rng).permutation(len(self))
        cut = int(round(fraction * len(self)))
        return self[order[:cut]], self[order[cut:]]

    def __repr__(self):
        pos = int(self.labels.sum())
        return f"Reviews({len(self)}: {pos} positive, {len(self) - pos} negative)"


_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text):
    """Lowercase words of ``text``: IMDB's ``<br />`` tags become spaces, and a token is a
    run of letters or digits with an optional inner apostrophe (``don't``, ``film's``)."""
    return _TOKEN.findall(re.sub(r"<br\s*/?>", " ", text.lower()))


class Vocabulary:
    """Words <-> indices; index 0 is padding ``<pad>``, 1 the unknown word ``<unk>``.

    ``Vocabulary(words)`` from a list, or ``Vocabulary.build(token_lists, max_size=None,
    min_count=1)`` from training reviews (most frequent first, ties alphabetical).
    ``encode(token_lists, max_length=None)`` -> ``(ids (T, B) int64, lengths (B,))``,
    time-major as the recurrent layers take it, padded with 0; words not in the
    vocabulary become ``<unk>``, reviews longer than ``max_length`` keep their first
    ``max_length`` tokens.
    """

    def __init__(self, words):
        words = [w for w in words if w not in (PAD, UNK)]
        if len(set(words)) != len(words):
            raise ValueError("Vocabulary: the words must be distinct")
        self.words = [PAD, UNK] + list(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    pad = property(lambda self: 0, doc="The index of the padding token (0).")
    unk = property(lambda self: 1, doc="The index of the unknown-word token (1).")

    @classmethod
    def build(cls, token_lists, max_size=None, min_count=1):
        """A vocabulary of the words in ``token_lists``, most frequent first (ties
        alphabetical): words seen at least ``min_count`` times, at most ``max_size``
        entries counting the two specials."""
        counts = Counter(t for tokens in token_lists for t in tokens)
        ranked = sorted((w for w, c in counts.items() if c >= min_count),
                        key=lambda w: (-counts[w], w))
        return cls(ranked if max_size is None else ranked[:max(0, max_size - 2)])

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index

    def encode(self, token_lists, max_length=None):
        """Token lists as a padded (T, N) int64 index array (time-major, as the
        recurrent layers take it) and their (N,) lengths (cut at ``max_length``); unknown
        words map to ``unk``."""
        lengths = np.array([len(t) if max_length is None else min(len(t), max_length)
                            for t in token_lists], dtype=np.int64)
        if len(lengths) and lengths.min() == 0:
            raise ValueError(f"Vocabulary.encode: review {int(np.argmin(lengths))} has no "
                             "tokens (the recurrent layers need at least one step)")
        steps = int(lengths.max()) if len(lengths) else 0
        ids = np.zeros((steps, len(token_lists)), dtype=np.int64)
        unk = self.unk
        for b, tokens in enumerate(token_lists):
            ids[:lengths[b], b] = [self.index.get(t, unk) for t in tokens[:lengths[b]]]
        return ids, lengths

    def decode(self, ids, length=None):
        """The words of one review's index column (up to ``length``)."""
        ids = np.asarray(ids)[:length]
        return [self.words[i] for i in ids]

    def __repr__(self):
        return f"Vocabulary({len(self)} words incl. {PAD}, {UNK})"


# ---- synthetic reviews -------------------------------------------------------------------

class SyntheticSentiment:
    """Reviews made of real lexicon words, labelled by the sign of their summed valence.

    ``SyntheticSentiment(words_per_polarity=80, min_valence=1.0, max_std=1.0,
    sentiment_rate=0.25, agreement=0.7, lengths=(20, 60), margin=2.0, seed=0)``; the
    generative rule is in the module docstring. Attributes: ``valence`` ``{word: mean
    rating}`` of the chosen sentiment words, ``neutral`` (the neutral words),
    ``vocabulary`` (a ``Vocabulary`` of all of them). ``sample(n, rng=None)`` -> ``Reviews``.
    """

    def __init__(self, words_per_polarity=80, min_valence=1.0, max_std=1.0,
                 sentiment_rate=0.25, agreement=0.7, lengths=(20, 60), margin=2.0, seed=0):
        lo, hi = lengths
        if not (isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer))
                and 1 <= lo <= hi):
            raise ValueError(f"SyntheticSentiment: lengths must be ints 1 <= lo <= hi, got "
                             f"{lengths}")
        if not 0 < sentiment_rate <= 1 or not 0 <= agreement <= 1 or margin < 0:
            raise ValueError("SyntheticSentiment: need 0 < sentiment_rate <= 1, "
                             f"0 <= agreement <= 1, margin >= 0; got {sentiment_rate}, "
                             f"{agreement}, {margin}")
        lexicon = vader_lexicon()
        clash = [w for w in NEUTRAL_WORDS if w in lexicon]
        if clash:            # the hand-written list must stay out of the lexicon
            raise AssertionError(f"NEUTRAL_WORDS contains lexicon words: {clash}")
        plain = {w: v for w, (v, sd) in lexicon.items()
                 if re.fullmatch(r"[a-z]+", w) and abs(v) >= min_valence and sd <= max_std
                 and not w.startswith(EXCLUDED_PREFIXES)}
        chosen = {}
        for sign in (1, -1):
            words = sorted((w for w, v in plain.items() if v * sign > 0),
                           key=lambda w: (plain[w], w))
            if len(words) < words_per_polarity:
                raise ValueError(f"SyntheticSentiment: only {len(words)} lexicon words of "
                                 f"sign {sign:+d} pass min_valence={min_valence} and "
                                 f"max_std={max_std}; asked for {words_per_polarity}")
            picks = np.linspace(0, len(words) - 1, words_per_polarity).round().astype(int)
            chosen.update({words[i]: plain[words[i]] for i in picks})
        self.valence = chosen
        self.positive = sorted(w for w, v in chosen.items() if v > 0)
        self.negative = sorted(w for w, v in chosen.items() if v < 0)
        self.neutral = sorted(set(NEUTRAL_WORDS))
        self.vocabulary = Vocabulary(self.positive + self.negative + self.neutral)
        self.lengths = (int(lo), int(hi))
        self.sentiment_rate, self.agreement, self.margin = sentiment_rate, agreement, margin
        self.rng = np.random.default_rng(seed)

    def word_valence(self, vocabulary=None):
        """Valence per word index of ``vocabulary`` (default: this task's), 0 for neutral
        and special words: the ground truth the lesson compares the network with."""
        vocabulary = self.vocabulary if vocabulary is None else vocabulary
        return np.array([self.valence.get(w, 0.0) for w in vocabulary.words])

    def sample(self, n, rng=None):
        """``n`` reviews (``Reviews`` with ``scores``), half expected positive."""
        rng = self.rng if rng is None else np.random.default_rng(rng)
        words = self.positive + self.negative + self.neutral      # drawn by index
        valence = np.array([self.valence.get(w, 0.0) for w in words])
        n_pos, n_neg = len(self.positive), len(self.negative)
        tokens, labels, scores = [], [], []
        while len(tokens) < n:
            length = int(rng.integers(self.lengths[0], self.lengths[1] + 1))
            tone = 1 if rng.random() < 0.5 else -1
            is_sentiment = rng.random(length) < self.sentiment_rate
            agrees = rng.random(length) < self.agreement
            ids = n_pos + n_neg + rng.integers(len(self.neutral), size=length)
            positive = is_sentiment & (agrees == (tone > 0))
            negative = is_sentiment & ~positive
            ids[positive] = rng.integers(n_pos, size=int(positive.sum()))
            ids[negative] = n_pos + rng.integers(n_neg, size=int(negative.sum()))
            score = float(valence[ids].sum())
            if abs(score) < self.margin:          # ambiguous: dropped, drawn again
                continue
            tokens.append([words[i] for i in ids])
            labels.append(int(score > 0))
            scores.append(score)
        return Reviews(tokens, np.array(labels), np.array(scores))

    def __repr__(self):
        return (f"SyntheticSentiment({len(self.positive)} positive + {len(self.negative)} "
                f"negative lexicon words, {len(self.neutral)} neutral, lengths "
                f"{self.lengths[0]}-{self.lengths[1]})")


# ---- real data ---------------------------------------------------------------------------

def load_imdb(path, split="train", limit=None):
    """Maas et al.'s IMDB reviews from the ``aclImdb`` folder: ``<path>/<split>/pos`` and
    ``neg``, one review per ``.txt`` file, read in file-name order (numeric id). ``limit``:
    at most that many reviews per class. Returns tokenised ``Reviews`` (positive = 1)."""
    root = Path(path) / split
    tokens, labels = [], []
    for label, folder in ((1, "pos"), (0, "neg")):
        directory = root / folder
        if not directory.is_dir():
            raise FileNotFoundError(f"load_imdb: no folder {directory} (expected the "
                                    f"aclImdb layout <path>/{split}/pos and .../neg)")
        files = sorted(directory.glob("*.txt"), key=_imdb_order)
        for file in files[:limit]:
            tokens.append(tokenize(file.read_text(encoding="utf-8", errors="replace")))
            labels.append(label)
    if not tokens:
        raise ValueError(f"load_imdb: no .txt reviews under {root}")
    return Reviews(tokens, np.array(labels))


def _imdb_order(file):
    head = file.stem.split("_")[0]
    return (0, int(head), file.name) if head.isdigit() else (1, 0, file.name)


_LABELS = {"1": 1, "pos": 1, "positive": 1, "0": 0, "neg": 0, "negative": 0, "-1": 0}


def load_csv(path, text_column="text", label_column="label", delimiter=None):
    """Reviews from a CSV (``,``) or TSV (``\\t``; chosen by the ``.tsv`` suffix unless
    ``delimiter`` is given) file with a header row. Labels may be 1/0, -1, pos/neg or
    positive/negative (any case). Returns tokenised ``Reviews``."""
    path = Path(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        missing = [c for c in (text_column, label_column) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"load_csv: {path} has columns {reader.fieldnames}, not "
                             f"{missing}")
        tokens, labels = [], []
        for line, row in enumerate(reader, start=2):
            raw = (row[label_column] or "").strip().lower()
            if raw not in _LABELS:
                raise ValueError(f"load_csv: {path} line {line}: label {row[label_column]!r} "
                                 f"is not one of {sorted(set(_LABELS))}")
            tokens.append(tokenize(row[text_column] or ""))
            labels.append(_LABELS[raw])
    if not tokens:
        raise ValueError(f"load_csv: {path} has no rows")
    return Reviews(tokens, np.array(labels))


def load_reviews(path, split="train", **kwargs):
    """``load_imdb`` for a directory, ``load_csv`` for a file."""
    return load_imdb(path, split, **kwargs) if Path(path).is_dir() else load_csv(path, **kwargs)
