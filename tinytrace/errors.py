"""The errors tinytrace raises.

Every error raised while recording or running an op says *which* op, *which* shapes and
dtypes, and *which* module scope it happened in, so a learner can find the line of the
model that caused it without a debugger.
"""


class TinytraceError(Exception):
    """Base class of every error tinytrace raises on purpose."""


class ShapeError(TinytraceError, ValueError):
    """Operands whose shapes do not fit the op (e.g. do not broadcast)."""


class DTypeError(TinytraceError, TypeError):
    """Operands whose dtypes do not fit the op (e.g. float32 mixed with float64)."""


class DeviceError(TinytraceError, ValueError):
    """Operands on different devices, or a device that is not available here."""


class BackwardError(TinytraceError, RuntimeError):
    """``backward()`` cannot run: no gradient given for a non-scalar, or the graph was freed."""


class AnomalyError(TinytraceError, FloatingPointError):
    """Raised in anomaly mode by the first op whose forward or backward made NaN/inf."""


class GradcheckError(TinytraceError, AssertionError):
    """Analytic and finite-difference gradients disagree."""


class SerializationError(TinytraceError, ValueError):
    """A saved file is truncated, corrupt, foreign or does not fit the model."""


def describe(arrays):
    """``'(3, 4) float32, (4,) float64'`` — how errors name their operands."""
    parts = []
    for a in arrays:
        shape = getattr(a, "shape", None)
        dtype = getattr(a, "dtype", None)
        parts.append(f"{tuple(shape)} {dtype}" if shape is not None else repr(a))
    return ", ".join(parts)
