"""One training step of RNN / LSTM / GRU layers: tinytrace's fused kernels (numba and the
NumPy reference) vs PyTorch CPU, measured in the same process.

Step = forward over the whole sequence + a linear readout + MSE loss + backward + SGD
update, float32 (the input is data, so neither engine computes dL/dx).

FLOPs. Per step of a layer with G gate blocks (RNN 1, GRU 3, LSTM 4), the forward's two
projections cost 2·B·(I+H)·G·H flops; the backward's dL/dh_{t-1} = dz W_hh costs
2·B·G·H·H and the weight gradients 2·B·G·H·(I+H). One training step is therefore
2·T·B·G·H·(2I + 3H) flops (the readout and the elementwise gate math are not counted).
GFLOP/s divides that by the time; "% peak" divides it by the machine's own float32 matmul
rate, measured at the start on a 1024^3 product with the same number of threads (for
NumPy's BLAS, which runs tinytrace's big products, and for PyTorch's).

    python benchmarks/recurrent_step.py                  # machine, targets, stack RNNs
    python benchmarks/recurrent_step.py --only-memory    # neural stack/queue/deque only
    python benchmarks/recurrent_step.py --grid           # + the T x H x B ratio table
    python benchmarks/recurrent_step.py --threads 1 2 --grid --products

Run it WITHOUT ``OPENBLAS_NUM_THREADS`` set: the script sets the thread counts itself
(threadpoolctl for NumPy's and SciPy's OpenBLAS, ``torch.set_num_threads``), and an
environment cap would make the 2-thread rows lie. OpenBLAS picks its kernels by CPU model;
the machine section prints what it chose (``OPENBLAS_CORETYPE`` overrides it, e.g.
``SkylakeX`` for the AVX-512 kernels on a CPU it does not recognise).
"""
import argparse
import os
import platform
import sys
import time

import numpy as np

import tinytrace as tt

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
# Issue 19, LSTM, 1 thread, numba / torch (2-core VM, load 1.2-2.3): (50, 32, 32, 128)
# unpinned 1.68x before the register-tile product (21.7 ms vs 12.9), 1.18-1.21x after
# (10.1-14.4 ms vs 8.6-11.8); pinned (OPENBLAS_CORETYPE=Haswell) 1.97x -> 1.33-1.41x.
# (200, 8, 8, 20): 1.09x -> 0.87-0.93x unpinned, 1.04x -> 0.89-1.08x pinned; (1000, 1,
# 8, 32): 0.86x -> 0.64-0.70x.
# The 0.8x target is below the floor of this design: the step's 734 MFLOP of products
# alone (input projection 0.58 ms, 2 x 50 per-step products 1.25 + 1.29, dW_hh 1.65,
# dW_ih 0.58, measured at quiet moments) take 5.35 ms, the gate math ~2.1 ms forward and
# backward, the readout/loss/optimizer ~1.5-2, about 9-9.5 ms against 0.8 x 8.6-12.9.
TARGETS = [  # (T, B, I, H), the columns, with its targets (tinytrace / torch)
    ((1000, 1, 8, 32), {"lstm": 1.0, "gru": 0.2, "rnn": 0.2}),
    ((200, 8, 8, 20), {"lstm": 1.0, "gru": 0.2, "rnn": 0.2}),
    ((50, 32, 32, 128), {"lstm": 0.8, "gru": 0.8, "rnn": 0.8}),
]
GRID = dict(T=(50, 500, 5000), H=(32, 128, 512), B=(1, 32, 256), I=32)
GRID_MAX_GFLOP = 120          # cells above this (~1 s per step for PyTorch here) are skipped
GRID_MAX_BYTES = 1.5e9        # ... and cells whose saved activations would exceed this


def flops(cell, T, B, I, H):
    return 2 * T * B * GATES[cell] * H * (2 * I + 3 * H)


def saved_bytes(cell, T, B, H):
    """What a fused forward keeps for its backward plus the backward's buffers, float32:
    about (G + 3) H floats per row and step forward, and as many again backward."""
    return 2 * T * B * (GATES[cell] + 3) * H * 4


# ---- threads and the machine -----------------------------------------------------------

def set_threads(n, torch):
    """n threads for every BLAS and for PyTorch; returns what each reports."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
        threadpool_limits(limits=n, user_api="blas")
        blas = sorted({(i["internal_api"], i["num_threads"]) for i in threadpool_info()
                       if i["user_api"] == "blas"})
    except ImportError:
        blas = "threadpoolctl not installed: BLAS threads unchanged"
    if torch is not None:
        torch.set_num_threads(n)
    return blas


def blas_description():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    return "; ".join(f"{os.path.basename(i['filepath'])} {i.get('version')} "
                     f"kernels={i.get('architecture')}"
                     for i in threadpool_info() if i["user_api"] == "blas")


def best_of(fns, budget=1.0, min_repeats=3, max_repeats=50):
    """Best wall time of each function, measured in turn (a, b, a, b, ...) after one
    warm-up each, until every one ran ``min_repeats`` times and ``budget`` seconds passed
    (interleaving spreads a busy machine's noise over all of them alike)."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    start, repeats = time.perf_counter(), 0
    while repeats < max_repeats and (repeats < min_repeats
                                     or time.perf_counter() - start < budget):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
        repeats += 1
    return best


def matmul_rates(torch, n=1024):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    out = np.empty_like(a)
    fns = [lambda: np.matmul(a, a, out=out)]
    if torch is not None:
        ta = torch.from_numpy(a)
        to = torch.empty_like(ta)
        fns.append(lambda: torch.mm(ta, ta, out=to))
    times = best_of(fns, budget=0.5)
    return [2 * n ** 3 / t / 1e9 for t in times]


# ---- the two training steps ---------------------------------------------------------------

def tinytrace_step(cell, kernel, x, y, H):
    """One training step of a tinytrace layer; ``kernel=None``: the traced mode (every
    gate of every step a node), else the fused layer with that kernel."""
    mode = "traced" if kernel is None else "fused"
    layer = {"rnn": tt.nn.RNN, "gru": tt.nn.GRU, "lstm": tt.nn.LSTM}[cell](
        x.shape[2], H, mode=mode, kernel=kernel, rng=0)
    readout = tt.nn.Linear(H, 1, rng=1)
    opt = tt.optim.SGD(layer.parameters() + readout.parameters(), lr=0.01)
    xt, yt = tt.tensor(x), tt.tensor(y)

    def step():
        opt.zero_grad()
        out, _ = layer(xt)
        loss = tt.nn.functional.mse_loss(readout(out), yt)
        loss.backward()
        opt.step()
    return step


def torch_step(torch, cell, x, y, H):
    torch.manual_seed(0)
    layer = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](
        x.shape[2], H)
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


def measure(cell, shape, torch, kernels, budget):
    """Seconds per training step: ``{"torch": s, "numba": s, "numpy": s}``."""
    T, B, I, H = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y = rng.standard_normal((T, B, 1)).astype(np.float32)
    names, fns = [], []
    if torch is not None:
        names.append("torch")
        fns.append(torch_step(torch, cell, x, y, H))
    for kernel in kernels:
        names.append(kernel)
        fns.append(tinytrace_step(cell, kernel, x, y, H))
    return dict(zip(names, best_of(fns, budget=budget)))


# ---- sections -------------------------------------------------------------------------------

def print_machine(torch, threads):
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch else 'absent'}")
    print(f"BLAS: {blas_description()}")
    if os.environ.get("OPENBLAS_CORETYPE"):
        print(f"  (OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} set by the caller)")
    rates = {}
    for n in threads:
        set_threads(n, torch)
        rates[n] = matmul_rates(torch)
        peer = f", torch.mm {rates[n][1]:.0f}" if torch is not None else ""
        print(f"float32 1024^3 matmul, {n} thread(s): NumPy {rates[n][0]:.0f} GFLOP/s{peer}")
    return rates


def print_row(label, cell, shape, seconds, rates, target=None):
    gflop = flops(cell, *shape) / 1e9
    torch_s = seconds.get("torch")
    parts = [f"{label:<22} {cell:<5}"]
    for name in ("torch", "numba", "numpy"):
        if name in seconds:
            parts.append(f"{seconds[name] * 1e3:9.2f}")
        else:
            parts.append(f"{'-':>9}")
    ours = seconds.get("numba", seconds.get("numpy"))
    if torch_s:
        ratio = ours / torch_s
        mark = "" if target is None else (" ok" if ratio <= target else " MISSED")
        parts.append(f"{ratio:7.2f}x" + (f" (target <= {target:.1f}x{mark})" if target else ""))
    rate = gflop / ours
    parts.append(f"  {rate:6.1f} GFLOP/s = {100 * rate / rates[0]:4.0f}% of NumPy's matmul")
    if torch_s:
        parts.append(f"(torch {gflop / torch_s:5.1f})")
    print(" ".join(parts))


def header(kernels, torch):
    cols = " ".join(f"{n + ' ms':>9}" for n in ("torch", "numba", "numpy"))
    print(f"{'T, B, I, H':<22} {'cell':<5} {cols} {'numba/torch':>8}")


def targets_section(torch, threads, rates, cells, kernels, budget):
    for n in threads:
        set_threads(n, torch)
        print(f"\n== the issue's workloads, {n} thread(s), float32, best time per training "
              f"step ==")
        header(kernels, torch)
        for shape, goal in TARGETS:
            for cell in cells:
                seconds = measure(cell, shape, torch, kernels, budget)
                print_row(f"{shape}", cell, shape, seconds, rates[n],
                          goal[cell] if n == 1 else None)


def grid_section(torch, threads, rates, cells, budget):
    for n in threads:
        set_threads(n, torch)
        print(f"\n== ratio table: numba / torch per training step, I={GRID['I']}, {n} "
              f"thread(s) ==")
        print(f"cells needing > {GRID_MAX_GFLOP} GFLOP or > {GRID_MAX_BYTES / 1e9:.1f} GB of "
              "activations per step are skipped (-): minutes per measurement on this machine")
        header(["numba"], torch)
        skipped = []
        for T in GRID["T"]:
            for H in GRID["H"]:
                for B in GRID["B"]:
                    shape = (T, B, GRID["I"], H)
                    for cell in cells:
                        if (flops(cell, *shape) / 1e9 > GRID_MAX_GFLOP
                                or saved_bytes(cell, T, B, H) > GRID_MAX_BYTES):
                            skipped.append(f"{cell} T={T} H={H} B={B}")
                            continue
                        seconds = measure(cell, shape, torch, ["numba"], budget)
                        print_row(f"T={T} H={H} B={B}", cell, shape, seconds, rates[n])
        print(f"skipped ({len(skipped)}): {', '.join(skipped)}")


TRACED_TARGET = ((50, 32, 32, 128), 2.0)    # issue 19: traced LSTM within 2x torch's


def traced_section(torch, budget):
    """The traced LSTM (one node per gate and step, what lessons and tt.trace record)
    against PyTorch's fused LSTM, 1 thread, at the issue's size.

    Measured (issue 19, 2-core shared VM, load ~1-2, unpinned OpenBLAS, which chose its
    SkylakeX kernels): 3.91x before the engine work of issue 19, 3.38-3.44x after (31.7
    ms vs torch 9.2 ms); with ``OPENBLAS_CORETYPE=Haswell`` 3.98x. The step records ~1480
    nodes, so the engine's own cost is ~4-6 ms of the ~32; the rest is NumPy: eight
    separate gate products per step, unfused elementwise gate math and its backward.
    The 2x target needs a different traced cell (one product for all four gates), not a
    cheaper engine."""
    (T, B, I, H), goal = TRACED_TARGET
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y = rng.standard_normal((T, B, 1)).astype(np.float32)
    fns = [tinytrace_step("lstm", None, x, y, H)]
    if torch is not None:
        fns.append(torch_step(torch, "lstm", x, y, H))
    t = best_of(fns, budget=budget)
    print(f"\n== traced LSTM, {(T, B, I, H)}, 1 thread, float32, best time per training "
          "step ==")
    line = f"tinytrace traced {t[0] * 1e3:.2f} ms"
    if torch is not None:
        ratio = t[0] / t[1]
        line += (f", torch fused {t[1] * 1e3:.2f} ms: {ratio:.2f}x (target <= {goal:.0f}x"
                 f"{' ok' if ratio <= goal else ' MISSED'})")
    print(line)
    floor = stacked_products_floor(T, B, I, H, budget)
    print(f"floor of any traced cell, even one product for all four gates per step: its "
          f"products alone take {floor * 1e3:.2f} ms per training step"
          + (f" = {floor / t[1]:.2f}x torch's whole step" if torch is not None else ""))


def stacked_products_floor(T, B, I, H, budget):
    """Seconds of NumPy products in one training step of the cheapest traced LSTM a graph
    with one node per step could record: per step ONE (B, I) @ (I, 4H) and ONE (B, H) @
    (H, 4H) product for all four gates, and in backward dL/dh_{t-1} = dz W_hh and the two
    weight gradients dz^T x_t, dz^T h_{t-1} (inner size B), added into W_hh's gradient.
    Nothing else (gate math, engine, readout, loss) is counted. Issue 19, 1 thread, B=32,
    I=32, H=128, T=50: 9.1-15.3 ms in six runs on the shared VM, against 2x torch's
    8.1-12.7 ms fused step. That cell, written with tinytrace's ops (one product per step,
    the four gates as slices of it, 14 nodes per step instead of 30), measured 25.3 and
    36.3 ms against torch's 8.8 and 12.7 (2.86-2.88x; the per-gate cell 3.24-3.36x in the
    same runs). Products (9-15 ms) plus the engine's ~7 us per node (~5 ms for ~700
    nodes, measured on tiny tensors) are already at or over 2x torch before any gate math:
    a traced cell with nodes per step does not reach 2x on this machine's OpenBLAS."""
    rng = np.random.default_rng(0)
    x, h, dz = (rng.standard_normal(s).astype(np.float32) for s in
                ((B, I), (B, H), (B, 4 * H)))
    w_ih, w_hh = (rng.standard_normal(s).astype(np.float32) for s in ((4 * H, I), (4 * H, H)))
    dw_hh = np.zeros_like(w_hh)

    def products_of_one_step():
        x @ w_ih.T, h @ w_hh.T                      # forward: the gates' pre-activations
        dz @ w_hh, dz.T @ x                         # backward: dL/dh_{t-1}, dL/dW_ih
        np.add(dw_hh, dz.T @ h, out=dw_hh)          # dL/dW_hh, accumulated over steps
    repeats = 20
    best, = best_of([lambda: [products_of_one_step() for _ in range(repeats)]],
                    budget=budget / 4)
    return best / repeats * T


def stack_section(budget):
    """Lesson 6's workload: a StackRNN(4, 16, noop=False) on the ten strings n = 1..10
    (T = 22, B = 10) and on the evaluation batch n = 1..100 (T = 202, B = 100)."""
    print("\n== StackRNN (lesson 6 sizes), forward + backward + Adam step, float32 ==")
    print(f"{'workload':<26} {'traced ms':>10} {'fused numpy':>12} {'fused numba':>12} "
          f"{'traced/numba':>13}")
    for label, T, B in (("train: T=22 B=10", 22, 10), ("evaluate: T=202 B=100", 202, 100)):
        x = tt.tensor(np.random.default_rng(0).standard_normal((T, B, 4)).astype(np.float32))
        fns = []
        for mode, kernel in (("traced", None), ("fused", "numpy"), ("fused", "numba")):
            model = tt.nn.StackRNN(4, 16, noop=False, mode=mode, kernel=kernel, rng=0)
            opt = tt.optim.Adam(model.parameters(), lr=0.01)

            def step(model=model, opt=opt):
                out, _, _ = model(x)
                loss = (out * out).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            fns.append(step)
        t = best_of(fns, budget=budget, min_repeats=2)
        print(f"{label:<26} {t[0] * 1e3:10.1f} {t[1] * 1e3:12.2f} {t[2] * 1e3:12.2f} "
              f"{t[0] / t[2]:12.0f}x")


def memory_section(budget):
    """Grefenstette et al.'s memories (``NeuralStackRNN`` / ``QueueRNN`` / ``DequeRNN``,
    width 8, LSTM and RNN controllers of H = 32) on a batch of B = 16 sequences of T = 60
    steps (input size 8): the unbounded memory makes a sequence O(T^2) in both modes."""
    T, B, I, H, width = 60, 16, 8, 32, 8
    print(f"\n== Neural stack/queue/deque (T={T} B={B} H={H} width {width}), forward + "
          "backward + Adam step, float32 ==")
    print(f"{'workload':<26} {'traced ms':>10} {'fused numpy':>12} {'fused numba':>12} "
          f"{'traced/numpy':>13} {'traced/numba':>13}")
    x = tt.tensor(np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32))
    for name in ("NeuralStackRNN", "NeuralQueueRNN", "NeuralDequeRNN"):
        for controller in ("rnn", "lstm"):
            fns = []
            for mode, kernel in (("traced", None), ("fused", "numpy"), ("fused", "numba")):
                model = getattr(tt.nn, name)(I, H, width, controller=controller, mode=mode,
                                             kernel=kernel, rng=0)
                opt = tt.optim.Adam(model.parameters(), lr=0.01)

                def step(model=model, opt=opt):
                    out, _, _ = model(x)
                    loss = (out * out).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                fns.append(step)
            t = best_of(fns, budget=budget, min_repeats=2)
            label = f"{name[6:-3].lower()} {controller}"
            print(f"{label:<26} {t[0] * 1e3:10.1f} {t[1] * 1e3:12.2f} {t[2] * 1e3:12.2f} "
                  f"{t[0] / t[1]:12.1f}x {t[0] / t[2]:12.0f}x")


def products_section():
    """The kernels' tiled per-step product against BLAS, both timed inside compiled code
    (BLAS through numba's ``np.dot``, i.e. SciPy's OpenBLAS), and NumPy's matmul called
    from Python (BLAS plus the call overhead a Python loop would pay).

    Measured (issue 19, 2-core shared VM, load 1.2-2, 1 thread, us per product; tiles =
    ``_common.product``, 8-row x 128-byte register tiles, before them a 4 x 4 blocked dot
    product vectorized along k):

        shape                     before   tiles   BLAS   numpy@   (unpinned)
        (1, 32) @ (32, 128)         1.21    0.20   0.21    1.12
        (8, 20) @ (20, 80)          3.06    0.23   0.28    1.57
        (8, 80) @ (80, 20)          0.94    0.48   0.59    1.92
        (32, 128) @ (128, 512)    120.55   46.27  62.85   53.23
        (32, 512) @ (512, 128)     71.58   41.99  66.73   52.13

    Pinned (``OPENBLAS_CORETYPE=Haswell``) the tiles did (32, 128) @ (128, 512) in 24.8-27.6
    us, 150-170 GFLOP/s, with BLAS at 85-93; the spread between runs is the machine's load.
    """
    from numba import njit
    from tinytrace.kernels.numba import _common

    @njit
    def tiled(a, b, out, n):
        for _ in range(n):
            _common.product(a, b, out)

    @njit
    def blas(a, b, out, n):
        for _ in range(n):
            np.dot(a, b, out)

    print("\n== per-step product, float32, us per product: the kernels' register tiles vs "
          "BLAS ==")
    print(f"{'shape':<22} {'MACs':>8} {'tiles':>8} {'BLAS':>8} {'numpy@':>8}  GFLOP/s tiles")
    for rows, inner, cols in ((1, 32, 128), (1, 128, 32), (8, 20, 80), (8, 80, 20),
                              (1, 128, 512), (1, 512, 128), (8, 64, 256), (8, 256, 64),
                              (32, 32, 128), (32, 128, 32), (32, 128, 512), (32, 512, 128),
                              (256, 128, 512)):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((rows, inner)).astype(np.float32)
        b = rng.standard_normal((inner, cols)).astype(np.float32)
        out = np.empty((rows, cols), np.float32)
        n = max(1, int(2e7 / (rows * inner * cols)))

        def numpy_loop():
            for _ in range(n):
                np.matmul(a, b, out=out)
        times = best_of([lambda: tiled(a, b, out, n), lambda: blas(a, b, out, n),
                         numpy_loop], budget=0.3)
        us = [t / n * 1e6 for t in times]
        macs = rows * inner * cols
        print(f"({rows}, {inner}) @ ({inner}, {cols})".ljust(22)
              + f" {macs:8d} {us[0]:8.2f} {us[1]:8.2f} {us[2]:8.2f}  {2 * macs / us[0] / 1e3:6.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"])
    parser.add_argument("--grid", action="store_true", help="the T x H x B ratio table")
    parser.add_argument("--products", action="store_true",
                        help="in-kernel loops vs BLAS for the per-step products")
    parser.add_argument("--no-stack", action="store_true", help="skip the StackRNN section")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the neural stack/queue/deque section")
    parser.add_argument("--only-memory", action="store_true",
                        help="only the neural stack/queue/deque section")
    parser.add_argument("--budget", type=float, default=1.0,
                        help="seconds of repeats per measurement (at least 3 repeats)")
    args = parser.parse_args()
    if "OPENBLAS_NUM_THREADS" in os.environ and max(args.threads) > 1:
        print("warning: OPENBLAS_NUM_THREADS is set; BLAS cannot use more threads than it "
              "says", file=sys.stderr)
    try:
        import torch
    except ImportError:
        torch = None
    kernels = ["numba", "numpy"] if tt.kernels.available()["numba"] is None else ["numpy"]
    if "numba" in kernels:
        # Compile (or load) every kernel first, so that no timing includes it, and so
        # that SciPy's BLAS (numba's np.dot) is loaded before the thread limits are set.
        for cell in args.cells:
            tinytrace_step(cell, "numba", np.zeros((2, 1, 2), np.float32),
                           np.zeros((2, 1, 1), np.float32), 2)()
        tt.nn.StackRNN(2, 2, mode="fused")(tt.zeros(2, 1, 2))
        for controller in ("rnn", "lstm"):
            tt.nn.NeuralQueueRNN(2, 2, controller=controller, mode="fused")(tt.zeros(2, 1, 2))
    if args.only_memory:
        set_threads(1, torch)
        memory_section(args.budget)
        return
    rates = print_machine(torch, args.threads)
    if "numba" in kernels:
        from tinytrace.kernels.numba import COMPILE
        print("numba kernels: " + "; ".join(
            f"{e['cell']} {e['dtype']} {'compiled' if e['compiled'] else 'loaded'} in "
            f"{e['seconds']:.2f} s" for e in COMPILE.log))
    else:
        print(f"numba kernels unavailable: {tt.kernels.available()['numba']}")
    targets_section(torch, args.threads, rates, args.cells, kernels, args.budget)
    set_threads(1, torch)
    traced_section(torch, args.budget)
    if not args.no_stack:
        set_threads(1, torch)
        stack_section(args.budget)
    if not args.no_memory:
        set_threads(1, torch)
        memory_section(args.budget)
    if args.products and "numba" in kernels:
        set_threads(1, torch)
        products_section()
    if args.grid and "numba" in kernels:
        grid_section(torch, args.threads, rates, args.cells, args.budget)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (2 = both cores busy)")
    if torch is not None:
        print("ratio = tinytrace time / torch time for the same training step (< 1: "
              "tinytrace faster); targets from issue 11")


if __name__ == "__main__":
    main()
