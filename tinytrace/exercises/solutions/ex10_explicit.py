"""Lesson 10: the explicit solution of a bigram softmax model."""
import numpy as np


def bigram_logits(tokens, vocab_size, alpha=1.0):
    """Exercise 10.1: the reference solution (the exercise's docstring is in exercises/)."""
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (tokens[:-1], tokens[1:]), 1.0)     # counts[a, b]: a followed by b
    smoothed = counts + alpha
    return np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
