"""What gradient tracing costs, as a ratio to one plain backward pass of the same graph.

Workload (the issue's): a traced LSTM, T = 100 steps, hidden 64, input 16, batch 16, a
linear read-out at every step and a cross-entropy loss, float32. Every ratio divides the
tool's time by the time of ``loss.backward()`` on the same recorded graph (forward pass
excluded from both; each measured on a fresh forward, best of ``--repeats``):

- ``split``: the component split by ``"*/forget_gate"`` — one blocked backward pass and
  one full one, so about 2 by construction;
- ``flow``: one backward pass with a hook (adjoint and edge-message norms for every node,
  the per-use split by time step), plus a tiny pass per step through the weights'
  preparation (transposes and gate slices);
- ``lag_matrix`` (``--lag``): one traced pass per step loss, so about T times ``flow``.

    python benchmarks/trace_cost.py [--repeats 5] [--steps 100] [--hidden 64] [--lag]
"""
import argparse
import time

import numpy as np

import tinytrace as tt
import tinytrace.nn.functional as F


class Model(tt.nn.Module):
    def __init__(self, inputs, hidden, classes):
        super().__init__()
        self.lstm = tt.nn.LSTM(inputs, hidden, mode="traced")
        self.head = tt.nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out)


def timed(make_loss, run, repeats):
    """Best time of ``run(loss)`` over ``repeats`` fresh forward passes."""
    best = float("inf")
    for _ in range(repeats + 1):              # the first one warms up
        loss = make_loss()
        start = time.perf_counter()
        run(loss)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lag", action="store_true", help="also time lag_matrix (T passes)")
    args = parser.parse_args()

    T, B, I, H, C = args.steps, args.batch, 16, args.hidden, 8
    rng = np.random.default_rng(0)
    tt.manual_seed(0)
    model = Model(I, H, C)
    x = tt.tensor(rng.normal(size=(T, B, I)).astype(np.float32))
    targets = rng.integers(0, C, size=T * B)

    def make_loss():
        return F.cross_entropy(model(x).reshape(T * B, C), targets)

    def step_losses():
        logp = tt.log_softmax(model(x), axis=-1)
        picked = np.eye(C, dtype=np.float32)[targets.reshape(T, B)] / (T * B)
        return -(logp * tt.tensor(picked)).sum(axis=(1, 2))

    nodes = len(make_loss().graph())
    plain = timed(make_loss, lambda loss: tt.grad(loss, model.parameters()), args.repeats)
    split = timed(make_loss, lambda loss: tt.trace.split(loss, "*/forget_gate", model),
                  args.repeats)
    flow = timed(make_loss, lambda loss: tt.trace.flow(loss, model), args.repeats)
    print(f"traced LSTM, T={T}, B={B}, I={I}, H={H}: {nodes} nodes; plain backward "
          f"{plain * 1e3:.1f} ms")
    print(f"split by '*/forget_gate' / plain backward: {split / plain:.2f}  "
          f"({split * 1e3:.1f} ms; 2 backward passes)")
    print(f"flow (hook, per-use split, edge norms) / plain backward: {flow / plain:.2f}  "
          f"({flow * 1e3:.1f} ms)")
    if args.lag:
        lag = timed(step_losses, lambda losses: tt.trace.lag_matrix(losses, model),
                    max(1, args.repeats // 5))
        print(f"lag_matrix ({T} step losses) / plain backward: {lag / plain:.1f}  "
              f"({lag:.2f} s)")


if __name__ == "__main__":
    main()
