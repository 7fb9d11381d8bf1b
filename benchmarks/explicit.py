"""The explicit bigram solution at scale: counting and solving against the alternatives.

A vocabulary of several thousand words and a million tokens. Timed in this process, best
of ``--repeats``:

- ``tt.explicit.count`` (one ``np.bincount`` over ``word * V + next`` keys) against a
  Python loop over the tokens (a ``collections.Counter`` of pairs, run on a tenth of the
  tokens and scaled up) and against ``np.add.at`` into the dense table;
- ``tt.explicit.solve`` (one ``log`` per cell of the V x V table);
- one full-batch descent step on the same model (the grouped V x V loss, the cheapest
  exact gradient there is) in tinytrace and in PyTorch (one thread), so the explicit
  solution's cost can be read as "this many descent steps";
- the same on real text: the standard library's docstrings (``python-docstrings``).

    python benchmarks/explicit.py [--tokens 1000000] [--vocab 5000] [--repeats 3]
"""
import argparse
import time
from collections import Counter

import numpy as np

import tinytrace as tt

ex = tt.explicit


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def python_loop_count(tokens, v):
    pairs = Counter(zip(tokens[:-1].tolist(), tokens[1:].tolist()))
    table = np.zeros((v, v))
    for (i, j), n in pairs.items():
        table[i, j] = n
    return table


def add_at_count(tokens, v):
    table = np.zeros((v, v))
    np.add.at(table, (tokens[:-1], tokens[1:]), 1)
    return table


def tinytrace_step(v, table, repeats):
    layer = tt.nn.Linear(v, v, rng=0)
    grouped = ex.OneHotInputs(np.arange(v), v)
    optimizer = tt.optim.Adam(layer.parameters(), lr=0.05)

    def step():
        loss = ex.cross_entropy(layer, grouped, table)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return best(step, repeats)[0]


def torch_step(v, table, repeats):
    import torch
    torch.set_num_threads(1)
    layer = torch.nn.Linear(v, v)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    targets = torch.tensor(table, dtype=torch.float32)
    total = float(table.sum())

    def step():
        logits = layer.weight.T + layer.bias            # one-hot inputs: row i = column i
        loss = -(targets * torch.log_softmax(logits, dim=1)).sum() / total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return best(step, repeats)[0]


def report(name, tokens, v, repeats, loops=True):
    print(f"\n{name}: {len(tokens):,} tokens, vocabulary {v:,} ({v * v:,} table cells)")
    inputs, targets = ex.bigram(tokens, v)
    t_count, counts = best(lambda: ex.count(inputs, targets, v), repeats)
    t_solve, _ = best(lambda: ex.solve(counts, smoothing=0.01), repeats)
    explicit = t_count + t_solve
    print(f"  tt.explicit.count   {t_count * 1e3:9.1f} ms  "
          f"({len(tokens) / t_count / 1e6:.0f} M tokens/s)")
    print(f"  tt.explicit.solve   {t_solve * 1e3:9.1f} ms  "
          f"({v * v / t_solve / 1e6:.0f} M cells/s)")
    print(f"  explicit solution   {explicit * 1e3:9.1f} ms in all")
    if loops:
        tenth = tokens[:len(tokens) // 10]
        t_loop = best(lambda: python_loop_count(tenth, v), 1)[0] * len(tokens) / len(tenth)
        t_add_at = best(lambda: add_at_count(tokens, v), 1)[0]
        print(f"  Python loop count   {t_loop * 1e3:9.1f} ms  (scaled from a tenth: "
              f"{t_loop / t_count:.0f}x bincount)")
        print(f"  np.add.at count     {t_add_at * 1e3:9.1f} ms  ({t_add_at / t_count:.1f}x "
              "bincount)")
    step_tt = tinytrace_step(v, counts.cooc, repeats)
    line = (f"  one descent step    {step_tt * 1e3:9.1f} ms tinytrace"
            f"  -> explicit = {explicit / step_tt:.2f} steps")
    try:
        step_torch = torch_step(v, counts.cooc, repeats)
        line += (f"; {step_torch * 1e3:.1f} ms PyTorch -> explicit = "
                 f"{explicit / step_torch:.2f} steps (tinytrace/PyTorch "
                 f"{step_tt / step_torch:.2f})")
    except ImportError:
        line += " (torch not installed)"
    print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--vocab", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    zipf = (rng.zipf(1.2, args.tokens) - 1) % args.vocab        # word frequencies like text's
    report("synthetic Zipf(1.2) tokens", zipf, args.vocab, args.repeats)
    corpus = tt.data.load_corpus("python-docstrings", max_vocab=args.vocab)
    text = np.concatenate([corpus.train, corpus.validation])
    report("python-docstrings", text, len(corpus.vocab), args.repeats, loops=False)


if __name__ == "__main__":
    main()
