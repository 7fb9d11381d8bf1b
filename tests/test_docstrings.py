"""Every public module, class, function and method of tinytrace has a docstring (a method
may inherit its base class's, as an override of ``forward`` does)."""
import importlib
import inspect
import pkgutil

import tinytrace


def public_modules():
    for info in pkgutil.walk_packages(tinytrace.__path__, "tinytrace."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            yield importlib.import_module(info.name)


def class_doc(cls):
    """A class's docstring (``Primitive`` makes ``__doc__`` a property showing its op's
    docstring; the property's own docstring then describes the class)."""
    doc = cls.__doc__
    return doc.__doc__ if isinstance(doc, property) else doc


def undocumented():
    missing = []
    for module in [tinytrace, *public_modules()]:
        if not (module.__doc__ or "").strip():
            missing.append(module.__name__)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            doc = class_doc(obj) if inspect.isclass(obj) else obj.__doc__
            if not (doc or "").strip():
                missing.append(f"{module.__name__}.{name}")
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(value, (staticmethod, classmethod)):
                        value = value.__func__
                    if inspect.isfunction(value) or isinstance(value, property):
                        if not (inspect.getdoc(getattr(obj, attr, value)) or "").strip():
                            missing.append(f"{module.__name__}.{name}.{attr}")
    return missing


def test_the_core_classes_have_docstrings():
    for cls in (tinytrace.Tensor, tinytrace.Graph, tinytrace.nn.Module, tinytrace.optim.Optimizer,
                tinytrace.nn.Parameter, tinytrace.ops.Primitive):
        assert class_doc(cls) and len(class_doc(cls).split()) >= 8, cls


def test_every_public_function_class_and_method_has_a_docstring():
    missing = undocumented()
    assert not missing, f"{len(missing)} public names without a docstring: {missing}"
