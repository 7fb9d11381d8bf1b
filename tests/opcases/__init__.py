"""Gradient property-test cases, one module per family of ops.

Each module defines ``CASES = {op_name: strategy}``; a strategy draws ``(fn, arrays)``
where ``fn(*tensors)`` applies the op (possibly with drawn attrs) and ``arrays`` are
float64 inputs kept away from kinks and poles. ``tests/test_op_gradients.py`` merges
every module's CASES and fails if an op in ``tinytrace.ops.OPS`` has none.
"""
import importlib
import pkgutil


def all_cases():
    cases = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, strategy in getattr(module, "CASES", {}).items():
            if name in cases:
                raise ValueError(f"op {name!r} has cases in two modules")
            cases[name] = strategy
    return cases
