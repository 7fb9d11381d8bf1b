"""Offline task generators and loaders: nothing is downloaded at run time.

``formal``: formal languages (aⁿbⁿ, aⁿbⁿcⁿ, reversal, Dyck-2) as seeded next-symbol
prediction tasks with train/test splits by length, and Joulin & Mikolov's
deterministic-part sequence accuracy; the transduction tasks of Grefenstette et al. (2015),
``source # target`` (copy, reversal, bigram flipping, duplicated string, odds-first, marked
copy), with coarse and fine accuracy.
``sentiment``: synthetic reviews from the VADER lexicon's human valence ratings, and
loaders for real reviews (IMDB's ``aclImdb`` folder, CSV/TSV files).
``text``: English text for language models (Python's own documentation, or any
plain-text file), a tokenizer, a word vocabulary with ``<unk>``, a train/validation split.
``images``: the 8x8 digits and an MNIST idx reader, raw nonnegative pixels.
``loader``: ``DataLoader`` (seeded, shuffled minibatches of arrays) and ``pad_sequences``
(variable-length sequences to a padded array and the ``lengths`` recurrent layers take).
"""
from . import sentiment
from .formal import (TASKS, TRANSDUCTION_TASKS, AnBn, AnBnCn, Batch, BigramFlip, Copy,
                     DuplicatedString, Dyck2, FormalTask, MarkedCopy, OddsFirst, Reversal,
                     Transduction, Vocabulary, coarse_accuracy, fine_accuracy,
                     position_accuracy, sequence_accuracy)
from .images import ImageData, load_digits, load_mnist, read_idx, write_idx
from .loader import DataLoader, pad_sequences
from .text import TextCorpus, WordVocabulary, load_corpus, load_text_file, tokenize

__all__ = ["TASKS", "AnBn", "AnBnCn", "Batch", "Dyck2", "FormalTask", "Reversal",
           "Vocabulary", "position_accuracy", "sequence_accuracy", "sentiment",
           "TRANSDUCTION_TASKS", "Transduction", "Copy", "BigramFlip", "DuplicatedString",
           "OddsFirst", "MarkedCopy", "coarse_accuracy", "fine_accuracy",
           "TextCorpus", "WordVocabulary", "load_corpus", "load_text_file", "tokenize",
           "ImageData", "load_digits", "load_mnist", "read_idx", "write_idx",
           "DataLoader", "pad_sequences"]
