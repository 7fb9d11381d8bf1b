"""GPU: a fused LSTM training step, tinytrace (CuPy) against PyTorch (cuDNN), same process.

    python benchmarks/gpu_lstm.py [--batch 256] [--steps 100] [--hidden 512] [--repeats 20]

Forward + backward of one LSTM layer (input size = hidden size), float32, timed after a
warm-up (which compiles tinytrace's fused step kernels and picks cuDNN's algorithms), with
the device synchronised around every timed call. Prints both times and the ratio
tinytrace / PyTorch (the goal: within 1.5x of cuDNN). On a machine without CuPy and an
NVIDIA GPU it says so and measures nothing: no GPU number in the README comes from here
unless this script printed it on a GPU.
"""
import argparse
import time

import numpy as np

import tinytrace as tt


def flops(batch, steps, hidden):
    """Forward + backward matrix-product FLOPs: 3 passes of 2*T*B*(I+H)*4H, I = H."""
    return 3 * 2 * steps * batch * (2 * hidden) * 4 * hidden


def best_time(step, synchronize, repeats):
    """The fastest of ``repeats`` calls of ``step`` after 3 warm-up calls, with the device
    synchronised before the clock stops (GPU work is asynchronous)."""
    for _ in range(3):
        step()
    synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def time_tinytrace(batch, steps, hidden, repeats):
    import cupy
    tt.manual_seed(0)
    lstm = tt.nn.LSTM(hidden, hidden, mode="fused").to("cuda")
    x = tt.tensor(np.random.default_rng(0).standard_normal((steps, batch, hidden))
                  .astype(np.float32), device="cuda")

    def step():
        out, _ = lstm(x)
        out.sum().backward()
        lstm.zero_grad()
    return best_time(step, cupy.cuda.Device().synchronize, repeats)


def time_torch(batch, steps, hidden, repeats):
    import torch
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(hidden, hidden).cuda()
    x = torch.randn(steps, batch, hidden, device="cuda")

    def step():
        out, _ = lstm(x)
        out.sum().backward()
        lstm.zero_grad()
    return best_time(step, torch.cuda.synchronize, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not tt.backend.cuda_available():
        print("no CuPy with an NVIDIA GPU here (tt.devices() = "
              f"{tt.devices()}): nothing measured")
        return
    b, t, h = args.batch, args.steps, args.hidden
    ours = time_tinytrace(b, t, h, args.repeats)
    try:
        import torch
        theirs = time_torch(b, t, h, args.repeats) if torch.cuda.is_available() else None
    except ImportError:
        theirs = None
    gflop = flops(b, t, h) / 1e9
    print(f"LSTM B={b} T={t} H={h} float32, forward + backward ({gflop:.1f} GFLOP)")
    print(f"tinytrace (CuPy, fused steps): {ours * 1e3:8.2f} ms  {gflop / ours:7.1f} GFLOP/s")
    if theirs is None:
        print("PyTorch with CUDA is not available: no ratio")
        return
    print(f"PyTorch (cuDNN):               {theirs * 1e3:8.2f} ms  {gflop / theirs:7.1f} GFLOP/s")
    print(f"ratio tinytrace / PyTorch: {ours / theirs:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
