"""One training step of RNN / LSTM / GRU layers: tinytrace (traced and fused) vs PyTorch CPU.

Step = forward over the whole sequence + a linear readout + MSE loss + backward + SGD
update, batch 32, T 50, input 32, hidden 128, float32 (the issue's workload).

FLOPs, to know how far from the machine's matmul rate we are: per step of an LSTM the two
projections cost 2·B·(I+H)·4H multiply-adds forward; backward costs twice that; so one
training step is about 3 · 2 · T·B·(I+H)·G·H FLOPs (G = 1, 3, 4 for RNN, GRU, LSTM).
The script prints that count and the GFLOP/s each engine reaches.

    python benchmarks/recurrent_step.py [--repeats 5] [--cells lstm gru rnn] [--threads N]
"""
import argparse
import time

import numpy as np

import tinytrace as tt

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
T, B, I, H = 50, 32, 32, 128


def flops(cell):
    return 3 * 2 * T * B * (I + H) * GATES[cell] * H


def best_time(step, repeats):
    step()                                    # warm-up (allocations, numba compiles)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def tinytrace_step(cell, mode, x, y):
    layer = {"rnn": tt.nn.RNN, "gru": tt.nn.GRU, "lstm": tt.nn.LSTM}[cell](I, H, mode=mode)
    readout = tt.nn.Linear(H, 1)
    params = layer.parameters() + readout.parameters()
    opt = tt.optim.SGD(params, lr=0.01)
    xt, yt = tt.tensor(x), tt.tensor(y)

    def step():
        opt.zero_grad()
        out, _ = layer(xt)
        loss = tt.nn.functional.mse_loss(readout(out), yt)
        loss.backward()
        opt.step()
    return step


def torch_step(cell, x, y):
    import torch
    layer = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](I, H)
    readout = torch.nn.Linear(H, 1)
    opt = torch.optim.SGD(list(layer.parameters()) + list(readout.parameters()), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        out, _ = layer(xt)
        loss = torch.nn.functional.mse_loss(readout(out), yt)
        loss.backward()
        opt.step()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's own choice)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y = rng.standard_normal((T, B, 1)).astype(np.float32)
    try:
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)
        peer = f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        torch = None
        peer = None

    print(f"training step: T={T} B={B} I={I} H={H} float32, best of {args.repeats}")
    print(f"{'cell':<5} {'engine':<16} {'ms/step':>8} {'GFLOP/s':>8} {'vs torch':>9}")
    for cell in args.cells:
        rows = []
        if torch is not None:
            rows.append(("torch", best_time(torch_step(cell, x, y), args.repeats)))
        for mode in ("fused", "traced"):
            rows.append((f"tinytrace {mode}",
                         best_time(tinytrace_step(cell, mode, x, y), args.repeats)))
        reference = rows[0][1] if torch is not None else None
        for name, seconds in rows:
            ratio = f"{seconds / reference:8.2f}x" if reference else "      -"
            print(f"{cell:<5} {name:<16} {seconds * 1e3:8.2f} "
                  f"{flops(cell) / seconds / 1e9:8.2f} {ratio}")
    if peer:
        print(f"peer: {peer}; ratio = tinytrace time / torch time (< 1: tinytrace faster)")


if __name__ == "__main__":
    main()
