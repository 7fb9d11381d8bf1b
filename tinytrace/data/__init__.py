"""Offline task generators: nothing is downloaded at run time.

``formal``: formal languages (aⁿbⁿ, aⁿbⁿcⁿ, reversal, Dyck-2) as seeded next-symbol
prediction tasks with train/test splits by length, and Joulin & Mikolov's
deterministic-part sequence accuracy.
"""
from .formal import (TASKS, AnBn, AnBnCn, Batch, Dyck2, FormalTask, Reversal, Vocabulary,
                     position_accuracy, sequence_accuracy)

__all__ = ["TASKS", "AnBn", "AnBnCn", "Batch", "Dyck2", "FormalTask", "Reversal",
           "Vocabulary", "position_accuracy", "sequence_accuracy"]
from . import sentiment
