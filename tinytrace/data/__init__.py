"""Offline task generators and loaders: nothing is downloaded at run time.

``formal``: formal languages (aⁿbⁿ, aⁿbⁿcⁿ, reversal, Dyck-2) as seeded next-symbol
prediction tasks with train/test splits by length, and Joulin & Mikolov's
deterministic-part sequence accuracy.
``text``: English text for language models (Python's own documentation, or any
plain-text file), a tokenizer, a word vocabulary with ``<unk>``, a train/validation split.
``images``: the 8x8 digits and an MNIST idx reader, raw nonnegative pixels.
"""
from .formal import (TASKS, AnBn, AnBnCn, Batch, Dyck2, FormalTask, Reversal, Vocabulary,
                     position_accuracy, sequence_accuracy)
from .text import (TextCorpus, WordVocabulary, load_corpus, load_text_file, tokenize)
from .images import (ImageData, load_digits, load_mnist, read_idx, write_idx)

__all__ = ["TASKS", "AnBn", "AnBnCn", "Batch", "Dyck2", "FormalTask", "Reversal",
           "Vocabulary", "position_accuracy", "sequence_accuracy",
           "TextCorpus", "WordVocabulary", "load_corpus", "load_text_file", "tokenize",
           "ImageData", "load_digits", "load_mnist", "read_idx", "write_idx"]
