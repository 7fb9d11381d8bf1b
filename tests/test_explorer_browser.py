"""The graph explorer as a user sees it: the page opened from a file in real headless
Chromium (driven by pip's ``playwright`` with the system browser as its executable):
the boxes drawn, opening and closing a scope, search, a node's panel, the training
slider, flow widths and heat, edges clear of boxes, a screenshot.

Without a browser these tests skip with a message, except in CI (the environment variable
``CI`` set, as CI services do, or ``TINYTRACE_REQUIRE_BROWSER``, as ``.ci/run`` does): there
a missing browser is a failure.
Set ``TINYTRACE_CHROMIUM`` to a browser binary to choose one."""
import os
import shutil

import numpy as np
import pytest

import tinytrace as tt
from tinytrace import explorer

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def find_browser():
    """``(playwright's sync_playwright, path of the browser)``, or a reason there is none."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None, "pip's playwright is not installed (pip install playwright)"
    chosen = os.environ.get("TINYTRACE_CHROMIUM")
    path = chosen or next(filter(None, map(shutil.which, BROWSERS)), None)
    if not path or not os.path.exists(path):
        return None, ("no Chromium found (looked for TINYTRACE_CHROMIUM, " + ", ".join(BROWSERS)
                      + "); on Debian: apt-get install chromium-headless-shell")
    return (sync_playwright, path), None


@pytest.fixture(scope="module")
def browser():
    found, reason = find_browser()
    if found is None:
        required = [v for v in ("CI", "TINYTRACE_REQUIRE_BROWSER") if os.environ.get(v)]
        if required:
            pytest.fail(f"{required[0]} is set, so the browser tests must run, but: {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    sync_playwright, path = found
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


class Seq(tt.nn.Module):
    def __init__(self, steps):
        super().__init__()
        rng = np.random.default_rng(0)
        self.lstm = tt.nn.LSTM(3, 4, mode="traced", rng=rng)
        self.head = tt.nn.Linear(4, 2, rng=rng)
        self.x = tt.tensor(rng.normal(size=(steps, 2, 3)).astype(np.float32))

    def forward(self):
        out, _ = self.lstm(self.x)
        return (self.head(out[-1]) ** 2).mean()


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    """A traced LSTM trained for three steps, recorded with sources, flow and a split."""
    model = Seq(steps=5)
    opt = tt.optim.SGD(model.parameters(), lr=0.5)
    rec = explorer.Recorder(split=["*/forget_gate"])
    for step in range(3):
        with explorer.sources():
            loss = model()
        rec.add(loss, label=f"step {step}")
        loss.backward()
        opt.step()
        opt.zero_grad()
    path = rec.to_html(tmp_path_factory.mktemp("explorer") / "lstm.html")
    return path, rec._data


@pytest.fixture
def page(browser, page_file):
    path, _ = page_file
    p = browser.new_page(viewport={"width": 1300, "height": 850})
    p.problems = []
    p.on("pageerror", lambda err: p.problems.append(f"error: {err}"))
    p.on("console", lambda m: m.type in ("error", "warning") and p.problems.append(m.text))
    p.requests = []
    p.on("request", lambda r: p.requests.append(r.url))
    p.goto(path.as_uri())
    p.wait_for_selector("body[data-ready='1']", timeout=20_000)
    yield p
    p.close()


def nodes_of(data):
    """The page's nodes (stored as columns) as one dict per node."""
    return [dict(zip(data["nodes"], v)) for v in zip(*data["nodes"].values())]


def leaves_of(data):
    return [dict(zip(data["leaves"], v)) for v in zip(*data["leaves"].values())]


def expected_boxes(data, open_groups):
    """The boxes the page should draw: the items of every open group whose ancestors are
    open, except the open groups themselves (drawn as frames), waypoints and ports."""
    count, stack = 0, [0]
    while stack:
        g = explorer.group_drawing(data, stack.pop())
        for row in g["rows"]:
            for ref, _ in row:
                if ref[0] in "dIO":
                    continue
                if ref[0] == "g" and int(ref[1:]) in open_groups:
                    stack.append(int(ref[1:]))
                else:
                    count += 1
    return count


def open_set(page):
    return set(page.evaluate("Array.from(window.tinytraceExplorer.state.open)"))


def group_id(data, scope_suffix):
    S = data["strings"]
    return next(i for i, g in enumerate(data["groups"]) if S[g["scope"]].endswith(scope_suffix))


def test_it_loads_from_a_file_fetching_nothing_and_draws_the_open_groups(page, page_file):
    _, data = page_file
    assert page.problems == []
    assert all(url.startswith("file:") for url in page.requests), page.requests
    drawn = page.locator("#viewport .box").count()
    assert drawn == expected_boxes(data, open_set(page)) > 0
    # the LSTM is open and its steps are boxes: the time axis
    lstm = group_id(data, "/lstm")
    assert lstm in open_set(page)
    for t in range(5):
        step = group_id(data, f"/lstm/t={t}")
        assert page.locator(f'#viewport .box[data-ref="g{step}"]').count() == 1


def test_open_a_step_then_a_gate_then_close_them(page, page_file):
    _, data = page_file
    before = page.locator("#viewport .box").count()
    step = group_id(data, "/lstm/t=3")
    page.click(f'#viewport .box[data-ref="g{step}"]')
    assert page.locator(f'#viewport .frame[data-ref="g{step}"]').count() == 1
    after = page.locator("#viewport .box").count()
    assert after == expected_boxes(data, open_set(page)) > before
    gate = group_id(data, "/lstm/t=3/forget_gate")
    page.click(f'#viewport .box[data-ref="g{gate}"]')
    inner = page.locator("#viewport .box").count()
    assert inner == expected_boxes(data, open_set(page)) > after
    ops = {data["strings"][nodes_of(data)[i]["op"]] for i in range(len(nodes_of(data)))
           if nodes_of(data)[i]["group"] == gate}
    assert "sigmoid" in ops
    sigmoid = next(i for i, n in enumerate(nodes_of(data))
                   if n["group"] == gate and data["strings"][n["op"]] == "sigmoid")
    assert page.locator(f'#viewport .box[data-ref="n{sigmoid}"]').count() == 1
    # closing the step (the bar on top of its frame) hides the gate again
    page.click(f'#viewport .frame[data-ref="g{step}"] .bar')
    assert page.locator("#viewport .box").count() == before
    assert page.locator(f'#viewport .box[data-ref="n{sigmoid}"]').count() == 0


def test_search_lists_every_match_and_marks_them(page, page_file):
    _, data = page_file
    S = data["strings"]
    page.fill("#search", "forget")
    page.press("#search", "Enter")
    want = sum(1 for n in nodes_of(data) if "forget" in S[n["op"]] or "forget" in S[n["scope"]])
    assert page.locator("#results b").inner_text() == f"{want} matches"
    assert page.locator("#viewport .box.hit").count() > 0
    # a parameter by name: the leaf and the nodes reading it
    page.fill("#search", "head.weight")
    page.press("#search", "Enter")
    assert page.locator("#results .ref").first.inner_text() == "head.weight"
    page.locator("#results .ref").first.click()            # goes there
    leaf = next(k for k, leaf in enumerate(leaves_of(data)) if S[leaf["name"]] == "head.weight")
    assert page.locator(f'#viewport .box.selected[data-ref="l{leaf}"]').count() == 1
    assert "parameter" in page.locator("#details").inner_text()


def test_clicking_a_gate_node_shows_its_value_gradient_saved_tensors_and_source(page, page_file):
    _, data = page_file
    S = data["strings"]
    i = next(k for k, n in enumerate(nodes_of(data))
             if S[n["scope"]].endswith("lstm/t=2/forget_gate") and S[n["op"]] == "sigmoid")
    page.evaluate(f"window.tinytraceExplorer.reveal('n{i}')")
    page.click(f'#viewport .box[data-ref="n{i}"]')
    details = page.locator("#details")
    assert details.locator("h2").inner_text() == f"#{i} sigmoid"
    assert details.locator(".op").inner_text() == "sigmoid"
    assert details.locator(".scope").inner_text() == S[nodes_of(data)[i]["scope"]]
    assert details.locator(".shape").inner_text() == "(2, 4)"
    assert details.locator(".dtype").inner_text() == "float32"
    value = data["steps"][0]["values"][i]
    cells = details.locator("table.stats tr").nth(1).locator("td").all_inner_texts()
    assert [float(c) for c in cells] == pytest.approx(value[:5], rel=2e-3)
    grad = data["steps"][0]["grads"][i]
    cells = details.locator("table.stats tr").nth(2).locator("td").all_inner_texts()
    assert [float(c) for c in cells] == pytest.approx(grad[:5], rel=2e-3, abs=1e-12)
    assert "its own output" in details.locator(".saved").inner_text()     # sigmoid saves y
    source = details.locator(".source").inner_text()
    assert "tinytrace/nn/cells.py:" in source and "test_explorer_browser.py:" in source


def test_the_slider_moves_through_the_training_steps(page, page_file):
    _, data = page_file
    S = data["strings"]
    i = next(k for k, n in enumerate(nodes_of(data)) if S[n["scope"]].endswith("head")
             and S[n["op"]] == "add")
    page.evaluate(f"window.tinytraceExplorer.reveal('n{i}')")
    first = page.locator("#details table.stats tr").nth(1).locator("td").first.inner_text()
    assert page.locator("#steplabel").inner_text().startswith("step 0")
    slider = page.locator("#step")
    slider.fill("2")                                   # as dragging it does: an input event
    assert page.locator("#steplabel").inner_text().startswith("step 2")
    loss = data["steps"][2]["loss"]
    assert f"loss {loss:.4g}"[:9] in page.locator("#steplabel").inner_text()
    last = page.locator("#details table.stats tr").nth(1).locator("td").first.inner_text()
    assert float(last) == pytest.approx(data["steps"][2]["values"][i][0], rel=2e-3)
    assert first != last


def test_flow_widths_heat_and_a_split(page, page_file):
    _, data = page_file
    widths = page.eval_on_selector_all("#viewport path.edge.flow",
                                       "ps => ps.map(p => +p.getAttribute('stroke-width'))")
    assert len(set(widths)) > 3 and max(widths) == pytest.approx(8, rel=1e-3)
    fills = lambda: page.eval_on_selector_all(   # noqa: E731
        "#viewport .box.node rect, #viewport .box.group rect",
        "rs => rs.map(r => r.getAttribute('fill'))")
    plain = fills()
    page.check("#heat")
    heat = fills()
    assert heat != plain and all(f.startswith("hsl(") or f == "#eee" for f in heat)
    # a collapsed group's heat is the sum of its nodes' adjoint norms (as Flow.by_scope)
    step = group_id(data, "/lstm/t=2")
    page.evaluate(f"window.tinytraceExplorer.select('g{step}')")
    under = [i for i, n in enumerate(nodes_of(data))
             if "/lstm/t=2/" in "/" + data["strings"][n["scope"]] + "/"]
    assert len(under) > 20
    total = sum(data["steps"][0]["adjoints"][i] or 0 for i in under)
    shown = float(page.locator("#details .adjoint").inner_text())
    assert shown == pytest.approx(total, rel=2e-3)
    page.select_option("#split", "0")
    assert page.locator("#viewport .box.member").count() > 0
    assert "split by */forget_gate" in page.locator("#details").inner_text()


def test_edges_keep_clear_of_every_box_they_do_not_join(page, page_file):
    _, data = page_file
    for suffix in ("/lstm/t=1", "/lstm/t=1/forget_gate", "/lstm/t=3"):
        page.evaluate(f"window.tinytraceExplorer.open({group_id(data, suffix)})")
    hits = page.evaluate("""() => {
      const D = window.tinytraceExplorer.data, bad = [];
      const boxes = Array.from(document.querySelectorAll('#viewport .box')).map(g => {
        const r = g.querySelector('rect');
        return {ref: g.dataset.ref, x: +r.getAttribute('x'), y: +r.getAttribute('y'),
                w: +r.getAttribute('width'), h: +r.getAttribute('height')};
      });
      document.querySelectorAll('#viewport path.edge').forEach(p => {
        const e = D.edges[+p.dataset.edge], ends = [e[1], e[2]];
        const n = 60, len = p.getTotalLength();
        for (let i = 1; i < n; i++) {
          const q = p.getPointAtLength(len * i / n);
          boxes.forEach(b => {
            if (ends.indexOf(b.ref) >= 0 || b.ref === 's' + e[1] + '>' + e[2] ||
                b.ref === 't' + e[1] + '>O') return;
            if (q.x > b.x + 1 && q.x < b.x + b.w - 1 && q.y > b.y + 1 && q.y < b.y + b.h - 1)
              bad.push([e, b.ref]);
          });
        }
      });
      return bad;
    }""")
    assert page.locator("#viewport path.edge").count() > 50
    assert hits == []


def test_a_screenshot_shows_the_drawing(page, tmp_path):
    import matplotlib.image as mpimg
    shot = tmp_path / "explorer.png"
    page.screenshot(path=str(shot))
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (850, 1300)
    drawing = pixels[60:, :900, :3]                    # the graph, below the controls
    assert drawing.std() > 0.02                        # not a blank page
    assert len(np.unique(drawing.reshape(-1, 3), axis=0)) > 20     # boxes in colours


def test_a_large_graph_opens_collapsed_and_its_batches_open_one_at_a_time(browser, tmp_path):
    w = tt.tensor(np.ones(3), requires_grad=True, name="w")
    h = w
    for t in range(3000):                   # 3000 nodes in one scope, 900 in another
        with tt.scope("long"):
            h = h * 1.0001
    for t in range(900):
        with tt.scope("tail"):
            h = h + 0.001
    path = h.sum().graph().to_html(tmp_path / "large.html")
    page = browser.new_page(viewport={"width": 1300, "height": 850})
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    first = page.locator("#viewport .box").count()
    assert first <= 60                                   # boxes, not thousands
    data = page.evaluate("window.tinytraceExplorer.data")
    S = data["strings"]
    long = next(i for i, g in enumerate(data["groups"]) if S[g["scope"]] == "long"
                and g["kind"] == "scope")
    # it opened with "long" open as its 25 batches of MAX_ITEMS nodes, each one box
    assert long in open_set(page)
    page.evaluate(f"window.tinytraceExplorer.close({long})")
    closed = page.locator("#viewport .box").count()
    assert closed == first - 3000 // explorer.MAX_ITEMS + 1
    page.evaluate(f"window.tinytraceExplorer.open({long})")
    shown = page.locator("#viewport .box").count()
    assert shown == first
    batch = next(int(r[1:]) for r in data["groups"][long]["items"] if r[0] == "g")
    assert data["groups"][batch]["kind"] == "batch"
    page.click(f'#viewport .box[data-ref="g{batch}"]')
    opened = page.locator("#viewport .box").count()
    # the batch's 120 nodes and the constants they read (each product its own leaf)
    assert opened == expected_boxes(data, open_set(page)) == shown - 1 + 2 * 120 + 1
    page.close()
