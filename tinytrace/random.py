"""One seeded NumPy generator for parameter initialisation and the lessons' data."""
import numpy as np

_GENERATOR = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the generator every layer initialiser draws from."""
    global _GENERATOR
    _GENERATOR = np.random.default_rng(seed)
    return _GENERATOR


def generator(rng=None):
    """``rng`` if given (a Generator or a seed), else the global generator."""
    if rng is None:
        return _GENERATOR
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
