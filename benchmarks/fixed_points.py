"""Fixed-point finding speed: candidates per second to the paper's rule (|F(h) - h|^2 / N
< 1e-8), H = 64 GRU, float64 — tinytrace's joint Adam vs the same algorithm written in
PyTorch, and tinytrace's Newton (Levenberg–Marquardt) option against both, in one run.

The network: a GRU (16-d embeddings, H = 64) trained for a few seconds on the synthetic
sentiment reviews (``tt.data.sentiment``), so the candidates sit near a real approximate
line attractor, the hard case for any finder (one eigenvalue ~1). The candidates: visited
states of held-out reviews, the same array for every finder.

"The same algorithm" in PyTorch is ``tt.fixed_points.find(method="adam")`` line by line:
the step is ``torch.nn.GRUCell`` holding the same float64 weights; the gradient of
q = |F(h) - h|^2 / 2 comes from ``torch.autograd.grad`` with the cotangent r = F(h) - h;
Adam's equations, the one learning rate for the batch, its decay on plateau (judged on the
candidates still running), and the rule that a converged candidate leaves the batch are
the same (``finish=0``: no Newton finish of Adam's stragglers, which ``find``'s defaults
add; the "tinytrace defaults" row shows them). The script prints the iterations
and the count of converged candidates for both: identical for thousands of iterations (200
candidates: the same counts at 100, 500, ..., 3000 iterations), then, once the rate is cut
on plateaus, rounding can flip one plateau decision and the final counts differ by a few
percent (128 candidates: 112 and 117 with one thread); the rate below divides by each
finder's own count.

Cost model, per Adam iteration and candidate: forward 2 * 6 * H^2 multiply-adds for the
six H x H products (three on the state side; three on the input side are (E x H)), the
backward twice that; Newton adds N = 64 replicated copies per Jacobian.

    python benchmarks/fixed_points.py [--candidates 1000] [--repeats 3] [--threads 1]
"""
import argparse
import os
import time

import numpy as np

import tinytrace as tt
import tinytrace.nn.functional as F

H, E = 64, 16


def train_gru(seed=0, reviews=3000, epochs=5):
    """A small sentiment GRU (seconds): embedding -> GRU -> linear readout of h_T."""
    tt.manual_seed(seed)
    task = tt.data.sentiment.SyntheticSentiment(seed=seed)
    vocab = task.vocabulary
    embed = tt.nn.Embedding(len(vocab), E)
    embed.weight.data *= 0.5
    gru = tt.nn.GRU(E, H, mode="fused")
    readout = tt.nn.Linear(H, 1)
    params = embed.parameters() + gru.parameters() + readout.parameters()
    opt = tt.optim.Adam(params, lr=0.01)
    train = task.sample(reviews)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(train))
        for i in range(0, len(train), 64):
            batch = train[order[i:i + 64]]
            ids, lengths = vocab.encode(batch.tokens)
            _, h_n = gru(embed(ids), lengths=lengths)
            z = readout(h_n[0])[:, 0]
            y = tt.tensor(batch.labels.astype(np.float32))
            loss = -(y * F.logsigmoid(z) + (1 - y) * F.logsigmoid(-z)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    held_out = task.sample(300)
    ids, lengths = vocab.encode(held_out.tokens)
    return gru, embed.weight.data[ids], lengths


def torch_adam(cell, candidates, tol, max_iters, lr, lr_decay, patience, plateau, min_lr):
    """``find(method="adam")``'s loop, in PyTorch (see the module docstring)."""
    import torch
    K = len(candidates)
    s = torch.tensor(candidates)                # the active rows, packed
    x = torch.zeros(1, E, dtype=torch.float64)
    m, v = torch.zeros_like(s), torch.zeros_like(s)
    q_paper = torch.full((K,), float("inf"), dtype=torch.float64)
    active = torch.arange(K)
    best_q = torch.full((K,), float("inf"), dtype=torch.float64)   # as find's best_q
    waited, it = 0, 0
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    while True:
        s.requires_grad_(True)
        out = cell(x.expand(len(s), E), s)
        r = (out - s).detach()
        (vjp,) = torch.autograd.grad(out, s, grad_outputs=r)
        s = s.detach()
        g = vjp - r
        q_paper[active] = (r * r).sum(1) / r.shape[1]
        done = q_paper[active] < tol
        # the plateau is judged on the running rows, like for like (find's rule)
        if q_paper[active].mean().item() < best_q[active].mean().item() * (1 - plateau):
            best_q[active], waited = q_paper[active], 0
        else:
            waited += 1
            if waited >= patience:
                lr *= lr_decay
                best_q[active], waited = q_paper[active], 0
        if it >= max_iters or bool(done.all()) or lr < min_lr:
            break
        if bool(done.any()):
            keep = ~done
            active, s, g, m, v = active[keep], s[keep], g[keep], m[keep], v[keep]
        it += 1
        m.mul_(beta1).add_((1 - beta1) * g)
        v.mul_(beta2).add_((1 - beta2) * g * g)
        s = s - (lr / (1 - beta1 ** it)) * m / ((v / (1 - beta2 ** it)).sqrt() + eps)
    return int((q_paper < tol).sum()), it


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS and torch threads (default 1: both engines alike)")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:
        pass
    import torch
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    gru, inputs, lengths = train_gru()
    step = tt.fixed_points.StepMap(gru)
    states, valid = step.run(inputs, lengths)
    cands = tt.fixed_points.candidates(states, valid, args.candidates, rng=0)
    print(f"GRU H={H} trained in {time.perf_counter() - start:.1f} s; {len(cands)} candidates"
          f" from {valid.sum()} visited states; float64, {args.threads} thread(s)")

    cell = torch.nn.GRUCell(E, H).double()
    with torch.no_grad():
        for name, w in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), step.weights):
            getattr(cell, name).copy_(torch.from_numpy(w.data))
    for p in cell.parameters():
        p.requires_grad_(False)
    defaults = dict(tol=1e-8, max_iters=5000, lr=0.01, lr_decay=0.5, patience=20,
                    plateau=1e-2, min_lr=1e-6)

    def run_tinytrace():
        found = tt.fixed_points.find(step, cands, method="adam", polish=0,  # as PyTorch:
                                     finish=0, **defaults)              # Adam alone
        return int(np.sum(found.final_q_paper < 1e-8)), found.iterations

    def run_torch():
        return torch_adam(cell, cands, **defaults)

    def run_defaults():                         # Adam + Newton finish + polish
        found = tt.fixed_points.find(step, cands)
        return int(np.sum(found.final_q_paper < 1e-8)), found.iterations

    def run_newton():
        found = tt.fixed_points.find(step, cands, method="newton")
        return int(np.sum(found.final_q_paper < 1e-8)), found.iterations

    runs = {"tinytrace adam": run_tinytrace, "pytorch adam": run_torch,
            "tinytrace defaults": run_defaults, "tinytrace newton": run_newton}
    results = {name: [] for name in runs}
    for _ in range(args.repeats):               # interleaved: load changes hit all alike
        for name, fn in runs.items():
            t0 = time.perf_counter()
            converged, iterations = fn()
            results[name].append((time.perf_counter() - t0, converged, iterations))
    rate = {}
    print(f"\n{'finder':18s} {'best s':>8s} {'converged':>10s} {'iterations':>11s} "
          f"{'candidates/s':>13s}")
    for name, rows in results.items():
        seconds, converged, iterations = min(rows)
        rate[name] = converged / seconds
        print(f"{name:18s} {seconds:8.2f} {converged:10d} {iterations:11d} {rate[name]:13.1f}")
    print("\nratios (candidates per second to the 1e-8 rule; > 1 means the first is faster)")
    for first, second in (("tinytrace adam", "pytorch adam"),
                          ("tinytrace newton", "tinytrace adam"),
                          ("tinytrace newton", "pytorch adam")):
        print(f"  {first + ' / ' + second:34s} {rate[first] / rate[second]:.2f}")


if __name__ == "__main__":
    main()
