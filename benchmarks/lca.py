"""What online loss change allocation costs: tinytrace's tracker vs a plain step, vs the bare
LCA-set gradients it needs, and vs the same algorithm written in PyTorch (CPU), one run.

Workload (lesson 9's): the MLP 64-32-16-10 (ReLU) on scikit-learn's 8x8 digits, a
minibatch of 32 per SGD step (momentum 0.9), the LCA set = the 1,347 training images,
float32. Simpson's rule (``--method simpson``) needs 2 new LCA-set gradients per step (the
midpoint and the end; the end is the next step's start), first order 1.

Four timings per engine, per training step (best of ``--repeats`` blocks of ``--steps``):

- plain:   zero_grad, minibatch forward + backward, optimizer.step();
- tracked: the same with the LCA bookkeeping (tinytrace: ``tracker.step()``);
- bare:    only the LCA-set gradients the tracked step needs (k x forward + grad of the
           whole LCA set, nothing else), at the tracked run's current parameters (a
           trained model's numbers cost what they cost: e.g. subnormal floats in softmax
           tails are slow, so an untrained copy would not be a fair baseline);
- overhead = (tracked - plain) / bare: 1.0 means the tracker costs exactly its gradient
  evaluations (snapshots, interpolation, the allocation and its sums are free). What is
  left beyond 1.0 is a fixed cost per step (restoring the random state and the modules'
  modes, the allocation's sums: a few tenths of a millisecond), so it shrinks as the LCA
  set or the model grows; the row ``tinytrace*`` skips saving NumPy's legacy global
  generator (``restore_numpy_random=False``), the largest part of it.

FLOPs: one LCA-set gradient is forward 2·N·P_w plus backward ~4·N·P_w multiply-adds (P_w
= 64·32 + 32·16 + 16·10 = 2,720 weights, N = 1,347), ~22 MFLOP; the script prints the
GFLOP/s each engine reaches on the bare gradients.

    python benchmarks/lca.py [--method simpson|first_order] [--steps 10] [--repeats 20]
                             [--copies 1] [--threads N]
"""
import argparse
import time

import numpy as np

import tinytrace as tt
import tinytrace.nn.functional as F

SIZES = (64, 32, 16, 10)
BATCH, LR, MOMENTUM = 32, 0.05, 0.9
NEW_GRADIENTS = {"simpson": 2, "first_order": 1}


def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    x, y = load_digits(return_X_y=True)
    x_train, _, y_train, _ = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    mean, std = x_train.mean(0), x_train.std(0)
    std[std == 0] = 1
    return ((x_train - mean) / std).astype(np.float32), y_train.astype(np.int64)


def lca_flops(n):
    weights = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    return 3 * 2 * n * weights


def per_step(functions, steps, repeats):
    """Best per-call time of each function over ``repeats`` blocks of ``steps`` calls, the
    functions taking turns block by block (so a busy machine slows them all alike)."""
    for fn in functions.values():
        fn()                                     # warm-up
    best = {name: float("inf") for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / steps)
    return best


def batches(n, seed=0):
    rng = np.random.default_rng(seed)
    while True:
        yield rng.choice(n, BATCH, replace=False)


# ---- tinytrace ---------------------------------------------------------------------------
class MLP(tt.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = tt.nn.Linear(*SIZES[0:2]), tt.nn.Linear(*SIZES[1:3])
        self.out = tt.nn.Linear(*SIZES[2:4])

    def forward(self, x):
        return self.out(tt.relu(self.fc2(tt.relu(self.fc1(x)))))


def tinytrace_steps(x, y, method, restore_numpy_random=True):
    """One model per timing (same initial weights), so that they can take turns."""
    def setup():
        tt.manual_seed(0)
        model = MLP()
        opt = tt.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        return model, opt, (lambda xb, yb: F.cross_entropy(model(tt.tensor(xb)), yb))

    model, opt, loss_fn = setup()
    draw = batches(len(x))

    def plain():
        b = next(draw)
        opt.zero_grad()
        loss_fn(x[b], y[b]).backward()
        opt.step()

    t_model, t_opt, t_loss = setup()
    tracker = tt.lca.Tracker(t_model, t_loss, (x, y), t_opt, method=method,
                             restore_numpy_random=restore_numpy_random)
    t_draw = batches(len(x))

    def tracked():
        b = next(t_draw)
        t_opt.zero_grad()
        t_loss(x[b], y[b]).backward()
        tracker.step()

    params = t_model.parameters()

    def bare():         # at the tracked run's current parameters: the same arithmetic
        for _ in range(NEW_GRADIENTS[method]):
            tt.grad(t_loss(x, y), params)
    return {"plain": plain, "tracked": tracked, "bare": bare}, tracker


# ---- the same algorithm in PyTorch ------------------------------------------------------
def torch_steps(x, y, method):
    """Simpson / first-order LCA written directly in PyTorch: the same snapshots, the same
    LCA-set gradients at the same points, the same per-tensor sums and counts."""
    import torch
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.functional.cross_entropy

    def setup():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(*SIZES[0:2]), torch.nn.ReLU(),
                                    torch.nn.Linear(*SIZES[1:3]), torch.nn.ReLU(),
                                    torch.nn.Linear(*SIZES[2:4]))
        params = list(model.parameters())
        return model, params, torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)

    def minibatch_step(model, opt, draw):
        b = torch.from_numpy(next(draw))
        opt.zero_grad()
        loss_fn(model(X[b]), Y[b]).backward()
        opt.step()

    model, _, opt = setup()
    draw = batches(len(x))

    def plain():
        minibatch_step(model, opt, draw)

    t_model, params, t_opt = setup()
    t_draw = batches(len(x))
    sizes = [p.numel() for p in params]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def snapshot():
        return torch.cat([p.detach().reshape(-1) for p in params]).double()

    def lca_gradient(point=None):
        """(loss, flat float64 gradient) of the whole LCA set, the parameters at point."""
        saved = None
        if point is not None:
            saved = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p, piece in zip(params, torch.split(point, sizes)):
                    p.copy_(piece.view_as(p))
        loss = loss_fn(t_model(X), Y)
        grads = torch.autograd.grad(loss, params)
        if saved is not None:
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)
        return loss.item(), torch.cat([g.reshape(-1) for g in grads]).double()

    state = {"theta": snapshot(), "start": lca_gradient()}
    totals = torch.zeros(sum(sizes), dtype=torch.float64)
    records = []

    def tracked():
        minibatch_step(t_model, t_opt, t_draw)
        end = snapshot()
        delta = end - state["theta"]
        l1, g1 = lca_gradient()
        l0, g0 = state["start"]
        if method == "first_order":
            gbar = g0
        else:
            _, gm = lca_gradient(state["theta"] + 0.5 * delta)
            gbar = (g0 + 4 * gm + g1) / 6
        a = (gbar * delta).numpy()
        per_tensor = np.add.reduceat(a, starts)
        helped = np.add.reduceat((a < 0).astype(np.int64), starts)
        hurt = np.add.reduceat((a > 0).astype(np.int64), starts)
        totals.add_(torch.from_numpy(a))
        records.append((per_tensor, helped, hurt, l1 - l0 - a.sum(), l1 - l0))
        state["theta"], state["start"] = end, (l1, g1)

    def bare():         # at the tracked run's current parameters
        for _ in range(NEW_GRADIENTS[method]):
            torch.autograd.grad(loss_fn(t_model(X), Y), params)
    return {"plain": plain, "tracked": tracked, "bare": bare}, records


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=sorted(NEW_GRADIENTS), default="simpson")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--copies", type=int, default=1,
                        help="LCA set = the training images repeated this many times (a "
                             "bigger set shows the fixed per-step cost shrink)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS / torch threads for both engines (default 1)")
    args = parser.parse_args()
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=args.threads)
    except ImportError:
        pass

    x, y = digits()
    x, y = np.tile(x, (args.copies, 1)), np.tile(y, args.copies)
    k = NEW_GRADIENTS[args.method]
    flops = k * lca_flops(len(x))
    print(f"MLP {'-'.join(map(str, SIZES))}, minibatch {BATCH}, LCA set {len(x)} images, "
          f"method {args.method} ({k} LCA-set gradients per step, {flops / 1e6:.0f} MFLOP), "
          f"{args.threads} thread(s); per-step times, best of {args.repeats} x {args.steps}")
    functions, tracker = tinytrace_steps(x, y, args.method)
    functions = {("tinytrace", name): fn for name, fn in functions.items()}
    lean, _ = tinytrace_steps(x, y, args.method, restore_numpy_random=False)
    functions.update({("tinytrace*", name): fn for name, fn in lean.items()})
    try:
        import torch
        torch.set_num_threads(args.threads)
        peer, records = torch_steps(x, y, args.method)
        functions.update({("pytorch", name): fn for name, fn in peer.items()})
    except ImportError:
        print("(torch is not installed: tinytrace only)")
    results = {}
    for (engine, name), t in per_step(functions, args.steps, args.repeats).items():
        results.setdefault(engine, {})[name] = t
    errors = {"tinytrace": (tracker.steps, tracker.train.conservation().relative)}
    if "pytorch" in results:
        errors["pytorch"] = (len(records), sum(abs(r[3]) for r in records)
                             / sum(abs(r[4]) for r in records))

    print("(tinytrace*: restore_numpy_random=False, i.e. NumPy's legacy global generator "
          "is not saved and restored around each step)")
    print(f"\n{'engine':>10s} {'plain':>9s} {'tracked':>9s} {'bare LCA':>9s} "
          f"{'tracked/plain':>14s} {'overhead':>9s} {'GFLOP/s':>8s}")
    for engine, t in results.items():
        overhead = (t["tracked"] - t["plain"]) / t["bare"]
        print(f"{engine:>10s} {1e3 * t['plain']:8.2f}ms {1e3 * t['tracked']:8.2f}ms "
              f"{1e3 * t['bare']:8.2f}ms {t['tracked'] / t['plain']:14.1f} {overhead:9.2f} "
              f"{flops / t['bare'] / 1e9:8.2f}")
    if "pytorch" in results:
        tt_, pt = results["tinytrace"], results["pytorch"]
        print(f"\ntinytrace / PyTorch: tracked step {tt_['tracked'] / pt['tracked']:.2f}x, "
              f"bare LCA gradients {tt_['bare'] / pt['bare']:.2f}x, plain step "
              f"{tt_['plain'] / pt['plain']:.2f}x")
    print("conservation error (sum |error| / sum |dL| over the timed steps): " + ", ".join(
        f"{engine} {err:.3%} ({n} steps)" for engine, (n, err) in errors.items()))
    print("(each engine starts from its own random initial weights, so the two trajectories "
          "and their errors differ; from the same weights the errors agree to 0.1%)")


if __name__ == "__main__":
    main()
