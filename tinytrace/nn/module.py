"""``Module`` and ``Parameter``: named trees of layers, as in PyTorch.

Calling a module opens a scope named after the attribute it is stored under (the root
module uses its class name, lower-cased), so every node it records carries a path like
``mlp/fc1`` — gradient tracing groups by those paths with no annotation from the user.
"""
from collections import OrderedDict, namedtuple

from ..backend import to_device, to_host
from ..context import scope
from ..errors import DeviceError, SerializationError
from ..tensor import Tensor


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = """What ``load_state_dict`` did not match: the model's parameter
names absent from the state (``missing_keys``) and the state's names the model lacks
(``unexpected_keys``), as PyTorch returns them."""


class Parameter(Tensor):
    """A leaf tensor that a Module owns and an optimizer updates (requires grad)."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        data = data.data if isinstance(data, Tensor) else data
        super().__init__(data, requires_grad)


class Module:
    """Base class of every layer and model: a tree of named child modules and parameters.

    Assign ``Parameter``s and ``Module``s as attributes in ``__init__`` (after
    ``super().__init__()``) and they are registered under those names; define
    ``forward``. Calling a module runs ``forward`` inside a scope named after the
    attribute it is stored under (the root: its class name, lower-cased), so its nodes
    carry paths like ``mlp/fc1``. ``named_parameters()``, ``state_dict()`` /
    ``load_state_dict()``, ``train()`` / ``eval()`` and ``zero_grad()`` work as in PyTorch.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "scope_name", type(self).__name__.lower())

    # ---- registration ------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 "assigning attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            value.name = name
            self._parameters[name] = value
        elif isinstance(value, Module):
            object.__setattr__(value, "scope_name", name)
            for child_name, p in value.named_parameters():
                p.name = f"{name}.{child_name}"
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # ---- calling -----------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        with scope(self.scope_name):
            return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        """The computation; calling the module runs it inside the module's scope."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # ---- the tree ----------------------------------------------------------------------
    def named_children(self):
        """``(name, module)`` for each direct child, in assignment order."""
        return iter(self._modules.items())

    def children(self):
        """Each direct child module, in assignment order."""
        return iter(self._modules.values())

    def named_modules(self, prefix=""):
        """``(dotted.name, module)`` for this module (name ``prefix``) and every descendant."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        """This module and every descendant."""
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        """``(dotted.name, Parameter)`` for every parameter, each once (shared ones too)."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self):
        """Every parameter once, in ``named_parameters`` order (what an optimizer takes)."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self):
        """The total number of parameter elements."""
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        """Set every parameter's ``.grad`` to None."""
        for p in self.parameters():
            p.grad = None

    def to(self, device):
        """Move every parameter (and its gradient) to ``device`` ("cpu", "cuda",
        "standin"), in place: the Parameter objects stay the same, so an optimizer built
        on them keeps working. Returns the module."""
        for p in self.parameters():
            p.data = to_device(p.data, device)
            if p.grad is not None:
                p.grad = to_device(p.grad, device)
        return self

    @property
    def device(self):
        """The device of the parameters (``None`` without parameters); mixed devices are
        an error, as they would be in the first op."""
        found = {p.device for p in self.parameters()}
        if len(found) > 1:
            raise DeviceError(f"{type(self).__name__}: parameters on {sorted(found)}; "
                              "move the module with .to(device)")
        return found.pop() if found else None

    def train(self, mode=True):
        """Set ``training`` on this module and every descendant; returns the module."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """``train(False)``."""
        return self.train(False)

    # ---- state -------------------------------------------------------------------------
    def state_dict(self):
        """``{dotted.name: array}`` — copies, so later training does not change them."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters, checking names, shapes and dtypes first so a
        mismatched file changes nothing. Returns ``IncompatibleKeys(missing_keys,
        unexpected_keys)`` (both empty unless ``strict=False``), as PyTorch does."""
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise SerializationError(f"load_state_dict({type(self).__name__}): missing "
                                     f"{missing}, unexpected {unexpected}")
        updates = []
        for name, p in own.items():
            if name not in state:
                continue
            value = state[name].data if isinstance(state[name], Tensor) else state[name]
            value = to_host(value)
            if value.shape != p.shape:
                raise SerializationError(f"load_state_dict: '{name}' has shape {value.shape} "
                                         f"in the state but {p.shape} in the model")
            if value.dtype.kind != p.dtype.kind:
                raise SerializationError(f"load_state_dict: '{name}' has dtype {value.dtype} "
                                         f"in the state but {p.dtype} in the model")
            updates.append((p, value))
        for p, value in updates:
            p.data[...] = to_device(value, p.device)
            p._version += 1          # in place: a graph that saved the old values refuses
        return IncompatibleKeys(missing, unexpected)

    # ---- display -----------------------------------------------------------------------
    def extra_repr(self):
        """The text inside this module's ``repr`` parentheses (its settings)."""
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")
