"""Optimizers: plain updates on ``.data`` with the same equations (and defaults) as PyTorch."""
from .backend import array_module


class Optimizer:
    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if lr < 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be >= 0, got {lr}")
        self.lr = lr
        self.steps = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient (in place: each one's version goes
        up, so a retained graph that saved the old values refuses a second backward)."""
        self.steps += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self.update(i, p, p.grad)
                p._version += 1

    def update(self, i, p, grad):
        raise NotImplementedError


class SGD(Optimizer):
    """``p -= lr * g`` with ``g = grad + weight_decay * p``; with momentum,
    ``buf = momentum * buf + g`` (``buf = g`` on the first step) and ``p -= lr * buf``
    (Nesterov: ``p -= lr * (g + momentum * buf)``)."""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        self.buffers = [None] * len(self.params)

    def update(self, i, p, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        if self.momentum:
            buf = self.buffers[i]
            buf = grad.copy() if buf is None else self.momentum * buf + grad
            self.buffers[i] = buf
            grad = grad + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * grad


class Adam(Optimizer):
    """Kingma & Ba (2015): running means of g and g², bias-corrected, ``p -= lr * m̂ /
    (sqrt(v̂) + eps)``; ``weight_decay`` adds ``wd * p`` to g (L2, as torch.optim.Adam)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        # Moments are made at a parameter's first step, on its device (as PyTorch's lazy
        # state): a model moved with .to(device) after building the optimizer just works.
        self.m = [None] * len(self.params)
        self.v = [None] * len(self.params)
        self.t = [0] * len(self.params)   # per parameter: one without a grad is not stepped

    def update(self, i, p, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        xp = array_module(p.data)
        if self.m[i] is None:
            self.m[i], self.v[i] = xp.zeros_like(p.data), xp.zeros_like(p.data)
        m, v = self.m[i], self.v[i]
        self.t[i] += 1
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        m_hat_scale = 1 / (1 - self.beta1 ** self.t[i])
        v_hat_scale = 1 / (1 - self.beta2 ** self.t[i])
        p.data -= self.lr * m_hat_scale * m / (xp.sqrt(v * v_hat_scale) + self.eps)
