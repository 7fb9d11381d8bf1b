"""Lesson 10 exercise: solve a bigram softmax model instead of training it.

Check it with: python -m tinytrace check 10
"""
import numpy as np


def bigram_logits(tokens, vocab_size, alpha=1.0):
    """Exercise 10.1: the explicit solution of a bigram model ``p(b | a) = softmax(W[a])[b]``
    on the token sequence ``tokens`` (an int array, values in [0, vocab_size)), with
    add-``alpha`` smoothing: return W (V, V) such that ``softmax(W[a])[b]`` equals
    ``(count(a followed by b) + alpha) / (count(a followed by anything) + alpha V)``.
    At that W the smoothed cross-entropy's gradient is zero: descent has nowhere to go.

    Hint: count the pairs ``(tokens[i], tokens[i + 1])`` into a (V, V) table (a loop, or
    ``np.add.at``), add alpha, and take logs of the rows' frequencies.
    """
    raise NotImplementedError
