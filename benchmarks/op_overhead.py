"""Engine overhead per op: a chain of thousands of tiny ops, forward + backward.

With 4-element tensors the arithmetic is nothing; what is timed is the bookkeeping an
engine does per op (dispatch, recording the node, the backward walk). Each engine runs
the same chain in the same process; the printed ratio is tinytrace / PyTorch (lower is
better, < 1 means tinytrace is faster per op).

    python benchmarks/op_overhead.py [--ops 3000] [--repeats 7]
"""
import argparse
import time

import numpy as np

import tinytrace as tt


def chain(x, w, n_ops):
    """n_ops recorded ops: a mix of the elementwise ops a small model uses."""
    y = x
    for i in range(n_ops // 4):
        y = y * w          # mul
        y = y + x          # add
        y = y.tanh()       # tanh
        y = y - w          # sub
    return y.sum()


def time_engine(make_leaf, n_ops, repeats):
    x, w = make_leaf(), make_leaf()
    best_fwd = best_bwd = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        loss = chain(x, w, n_ops)
        mid = time.perf_counter()
        loss.backward()
        end = time.perf_counter()
        best_fwd, best_bwd = min(best_fwd, mid - start), min(best_bwd, end - mid)
    return best_fwd / n_ops, best_bwd / n_ops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data = rng.uniform(-0.5, 0.5, size=4).astype(np.float32)
    rows = [("tinytrace",) + time_engine(lambda: tt.tensor(data, requires_grad=True),
                                         args.ops, args.repeats)]
    try:
        import torch
        torch.set_num_threads(1)
        rows.append(("pytorch",) + time_engine(
            lambda: torch.tensor(data, requires_grad=True), args.ops, args.repeats))
    except ImportError:
        print("(torch not installed: no ratio)")

    print(f"chain of {args.ops} ops on 4-element float32 tensors, best of {args.repeats}")
    print(f"{'engine':<10} {'forward us/op':>14} {'backward us/op':>15} {'total us/op':>12}")
    for name, fwd, bwd in rows:
        print(f"{name:<10} {fwd * 1e6:>14.2f} {bwd * 1e6:>15.2f} {(fwd + bwd) * 1e6:>12.2f}")
    if len(rows) == 2:
        (_, f1, b1), (_, f2, b2) = rows
        print(f"ratio tinytrace/pytorch: forward {f1 / f2:.2f}x, backward {b1 / b2:.2f}x, "
              f"total {(f1 + b1) / (f2 + b2):.2f}x")


if __name__ == "__main__":
    main()
