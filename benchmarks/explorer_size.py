"""How big the graph explorer's page is and how long it takes until it is drawn.

Workload: a traced LSTM (input 3, hidden 8, batch 4, float32) with a linear read-out of
its last state and a squared loss, its steps chosen so the graph has about 1,000, 10,000
and 100,000 nodes (29 nodes per step). Each page has the gradient flow
(``tt.trace.flow``) and every node's gradient. Measured per size:

- ``build``: seconds of ``graph.to_html(...)`` in Python (data, layout, writing);
- ``size``: the file's size;
- ``drawn``: milliseconds from navigation start until the page has drawn its first view
  (``window.tinytraceDrawnMs``, set after the first render), in headless Chromium opened
  from the file; the best of ``--repeats`` loads;
- ``open lstm``: milliseconds to open the ``lstm`` group and redraw (clicking it);
- ``boxes``: boxes drawn in the first view (the page opens collapsed as far as needed).

    python benchmarks/explorer_size.py [--sizes 1000 10000 100000] [--repeats 3]
                                       [--browser /usr/bin/chromium-headless-shell]
"""
import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import tinytrace as tt

NODES_PER_STEP = 29


class Model(tt.nn.Module):
    def __init__(self, steps):
        super().__init__()
        rng = np.random.default_rng(0)
        self.lstm = tt.nn.LSTM(3, 8, mode="traced", rng=rng)
        self.head = tt.nn.Linear(8, 2, rng=rng)
        self.x = tt.tensor(rng.normal(size=(steps, 4, 3)).astype(np.float32))

    def forward(self):
        out, _ = self.lstm(self.x)
        return (self.head(out[-1]) ** 2).mean()


def build(nodes, folder):
    loss = Model(max(1, nodes // NODES_PER_STEP))()
    graph = loss.graph()
    start = time.perf_counter()
    flow = tt.trace.flow(loss, retain_graph=True)
    path = graph.to_html(Path(folder) / f"graph_{nodes}.html", flow=flow, gradients=True)
    return len(graph), path, time.perf_counter() - start


def measure(browser, path, repeats):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    best = float("inf")
    for _ in range(repeats):
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=300_000)
        best = min(best, page.evaluate("window.tinytraceDrawnMs"))
    boxes = page.evaluate("window.tinytraceExplorer.visibleBoxes()")
    lstm = page.evaluate("""() => {
      const D = window.tinytraceExplorer.data;
      return D.groups.findIndex(g => D.strings[g.scope].endsWith('lstm'));
    }""")
    page.evaluate(f"window.tinytraceExplorer.close({lstm})")
    opened = page.evaluate(f"""() => {{
      const t0 = performance.now();
      window.tinytraceExplorer.open({lstm});
      return performance.now() - t0;
    }}""")
    page.close()
    return best, opened, boxes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--browser", default=shutil.which("chromium-headless-shell")
                        or shutil.which("chromium"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    rows = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.browser, args=["--no-sandbox"])
        for size in args.sizes:
            nodes, path, seconds = build(size, folder)
            drawn, opened, boxes = measure(browser, path, args.repeats)
            rows.append((nodes, path.stat().st_size, seconds, drawn, opened, boxes))
            print(f"{nodes} nodes: {path.stat().st_size / 1e6:.2f} MB, build {seconds:.1f} s, "
                  f"drawn after {drawn:.0f} ms, open lstm {opened:.0f} ms, {boxes} boxes",
                  flush=True)
        browser.close()
    print("\n| nodes | file size | build (Python) | drawn after | open `lstm` | boxes first drawn |")
    print("|---:|---:|---:|---:|---:|---:|")
    for nodes, size, seconds, drawn, opened, boxes in rows:
        print(f"| {nodes:,} | {size / 1e6:.2f} MB | {seconds:.1f} s | {drawn:.0f} ms | "
              f"{opened:.0f} ms | {boxes} |")


if __name__ == "__main__":
    main()
