// The tinytrace graph explorer. Plain JavaScript, no libraries: the data is the JSON in
// #tinytrace-data (written by tinytrace/explorer/__init__.py), drawn as SVG.
//
// Items are named by short strings: "n12" a node, "g3" a group, "l0" a leaf's box (a copy
// in each group reading it), "I"/"O" a group's in/out port, "d5.3" edge 5's waypoint on
// layer 3, "sl0>n7" a dashed copy of l0 beside its far reader n7. Python laid out every
// group once (layers, order, x); here each layer is packed again around the sizes of the
// groups that are open (a least-squares fit keeping the order and the gaps).
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("tinytrace-data").textContent);
  const S = D.strings;
  function rowsOf(columns) {      // nodes and leaves come as columns; read them as rows
    const keys = Object.keys(columns), n = columns[keys[0]].length, out = new Array(n);
    for (let i = 0; i < n; i++) {
      const row = {};
      keys.forEach(function (k) { row[k] = columns[k][i]; });
      out[i] = row;
    }
    return out;
  }
  D.nodes = rowsOf(D.nodes);
  D.leaves = rowsOf(D.leaves);
  const BOX_H = 22, CHAR_W = 6.8, BOX_PAD = 14, GAP = 14, ROW_GAP = 28, FRAME_PAD = 12,
        BAR = 18, DUMMY_W = 6, PORT_W = 6;
  const svg = document.getElementById("graph");
  const viewport = document.getElementById("viewport");
  const state = {open: new Set([0]), step: 0, heat: false, widths: true, split: -1,
                 selected: null, hits: null, view: {k: 1, x: 20, y: 20}};
  const groupHeat = [];       // per step: summed adjoint norm of each group (lazily)
  let pos = new Map();        // ref -> {x, y, w, h, rowH}: centres, absolute (after layout)

  // ---- the tree ----------------------------------------------------------------------------
  const nodeCount = new Array(D.groups.length).fill(0);   // nodes under each group
  D.nodes.forEach(function (n) {
    for (let g = n.group; g !== null; g = D.groups[g].parent) nodeCount[g] += 1;
  });
  function parentOf(ref) {
    const k = ref[0], i = +ref.slice(1);
    if (k === "n") return D.nodes[i].group;
    if (k === "g") return D.groups[i].parent;
    return null;
  }
  function ancestors(ref) {   // the groups holding ref, innermost first
    const out = [];
    for (let g = parentOf(ref); g !== null; g = D.groups[g].parent) out.push(g);
    return out;
  }
  function itemLabel(ref) {
    const k = ref[0];
    if (k === "s") {                      // a dashed copy of a box (or of the in port)
      const of = ref.slice(1, ref.indexOf(">"));
      return of === "I" ? "in" : itemLabel(of);
    }
    if (k === "t") return "out";          // an edge leaving the group, far below its top
    const i = +ref.slice(1);
    if (k === "n") return S[D.nodes[i].op];
    if (k === "l") return S[D.leaves[i].name];
    if (k === "g") return (D.groups[i].label || "(top)") + "  +" + nodeCount[i];
    return "";
  }
  function nodeName(i) { return "#" + i + " " + S[D.nodes[i].op]; }
  function scopeColour(scope) {   // one hue per scope, the t=k part left out
    const key = scope.split("/").filter(function (p) { return !/^t=\d+$/.test(p); }).join("/");
    let h = 0;
    for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) % 360;
    return key ? "hsl(" + h + ",55%,62%)" : "hsl(0,0%,70%)";
  }

  // ---- layout --------------------------------------------------------------------------------
  function isotonic(values) {     // nearest non-decreasing sequence (pool adjacent violators)
    const blocks = [];
    values.forEach(function (v) {
      blocks.push([v, 1]);
      while (blocks.length > 1 && blocks[blocks.length - 2][0] > blocks[blocks.length - 1][0]) {
        const b = blocks.pop(), a = blocks.pop();
        blocks.push([(a[0] * a[1] + b[0] * b[1]) / (a[1] + b[1]), a[1] + b[1]]);
      }
    });
    const out = [];
    blocks.forEach(function (b) { for (let i = 0; i < b[1]; i++) out.push(b[0]); });
    return out;
  }
  function boxSize(ref) {
    const k = ref[0];
    if (k === "d") return {w: DUMMY_W, h: 0};
    if (k === "I" || k === "O") return {w: PORT_W, h: 0};
    return {w: itemLabel(ref).length * CHAR_W + BOX_PAD, h: BOX_H};
  }
  // size and relative positions of an open group's contents (centres, from its top-left)
  // A group's drawing with global references (groups of the same shape share one layout
  // in the data, written with local references: item indices, "d3.5", "s2>7", "t4>O").
  const drawings = new Map();
  function drawingOf(gid) {
    let out = drawings.get(gid);
    if (out) return out;
    const g = D.groups[gid], layout = D.layouts[g.layout];
    function end(x) { return x === "I" || x === "O" ? x : g.items[+x]; }
    function ref(r) {
      if (typeof r === "number") return g.items[r];
      if (r === "I" || r === "O") return r;
      if (r[0] === "d") {
        const dot = r.indexOf(".");
        return "d" + g.edges[+r.slice(1, dot)] + r.slice(dot);
      }
      const cut = r.indexOf(">");
      return r[0] + end(r.slice(1, cut)) + ">" + end(r.slice(cut + 1));
    }
    out = {
      rows: layout.rows.map(function (row) {
        return row.map(function (it) { return [ref(it[0]), it[1]]; });
      }),
      edges: layout.chains.map(function (chain, e) { return [g.edges[e], chain.map(ref)]; }),
    };
    drawings.set(gid, out);
    return out;
  }
  function measure(gid) {
    const g = drawingOf(gid), inner = new Map(), rows = [];
    let minX = Infinity, maxX = -Infinity;
    g.rows.forEach(function (row) {
      const sizes = row.map(function (it) {
        const ref = it[0];
        if (ref[0] === "g" && state.open.has(+ref.slice(1))) return measure(+ref.slice(1));
        return boxSize(ref);
      });
      const offsets = [0];
      for (let i = 1; i < row.length; i++)
        offsets.push(offsets[i - 1] + (sizes[i - 1].w + sizes[i].w) / 2 + GAP);
      const fit = isotonic(row.map(function (it, i) { return it[1] - offsets[i]; }));
      const xs = fit.map(function (f, i) { return f + offsets[i]; });
      let h = BOX_H;
      sizes.forEach(function (s) { h = Math.max(h, s.h); });
      row.forEach(function (it, i) {
        minX = Math.min(minX, xs[i] - sizes[i].w / 2);
        maxX = Math.max(maxX, xs[i] + sizes[i].w / 2);
      });
      rows.push({row: row, xs: xs, sizes: sizes, h: h});
    });
    if (!rows.length) { minX = 0; maxX = 40; }
    const w = maxX - minX + 2 * FRAME_PAD;
    let h = 2 * FRAME_PAD + (gid === 0 ? 0 : BAR);
    rows.forEach(function (r, i) { h += r.h + (i ? ROW_GAP : 0); });
    let y = h - FRAME_PAD;                       // layer 0 at the bottom
    rows.forEach(function (r) {
      const cy = y - r.h / 2;
      r.row.forEach(function (it, i) {
        const ref = it[0];
        let yy = cy;
        if (ref === "I") yy = h;                  // the ports sit on the frame
        if (ref === "O") yy = 0;
        inner.set(ref, {x: r.xs[i] - minX + FRAME_PAD, y: yy, w: r.sizes[i].w,
                        h: r.sizes[i].h, rowH: r.h, sub: r.sizes[i].inner ? r.sizes[i] : null});
      });
      y -= r.h + ROW_GAP;
    });
    return {w: w, h: h, inner: inner, gid: gid};
  }
  // absolute positions of everything visible: pos[ref], pos["I@g"], pos["O@g"]
  function place(m, left, top) {
    m.inner.forEach(function (p, ref) {
      const key = (ref === "I" || ref === "O") ? ref + "@" + m.gid : ref;
      const x = left + p.x, y = top + p.y;
      pos.set(key, {x: x, y: y, w: p.w, h: p.h, rowH: p.rowH, open: !!p.sub});
      if (p.sub) place(p.sub, x - p.w / 2, y - p.h / 2);
    });
  }
  let root = null;
  function layout() {
    pos = new Map();
    root = measure(0);
    place(root, 0, 0);
  }

  // ---- numbers -------------------------------------------------------------------------------
  function step() { return D.steps[state.step]; }
  function heatOf(ref) {
    const st = step();
    if (!st.adjoints) return null;
    const i = +ref.slice(1);
    if (ref[0] === "n") return st.adjoints[i];
    if (ref[0] !== "g") return null;
    if (!groupHeat[state.step]) {
      const sums = new Array(D.groups.length).fill(0);
      st.adjoints.forEach(function (v, n) {
        if (v === null || typeof v === "string") return;
        for (let g = D.nodes[n].group; g !== null; g = D.groups[g].parent) sums[g] += v;
      });
      groupHeat[state.step] = sums;
    }
    return groupHeat[state.step][i];
  }
  function heatColour(v, top) {
    if (v === null || v === undefined || typeof v === "string" || !(top > 0)) return "#eee";
    const t = v > 0 ? Math.max(0, Math.min(1, 1 + Math.log10(v / top) / 6)) : 0;
    return "hsl(" + (50 - 50 * t) + ",90%," + (95 - 50 * t) + "%)";
  }
  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "string") return v;
    return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3)
      : String(+v.toPrecision(4));
  }
  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  // ---- drawing ---------------------------------------------------------------------------------
  // An edge is a chain of vertical stretches joined by curves in the gaps between layers:
  // its source from the box's top to the top of the box's layer, each waypoint through its
  // whole layer, its target from the bottom of its layer to the box. Inside a layer an
  // edge is vertical in a slot kept free for it, so it crosses no box.
  function stretch(ref, gid, asSource) {
    if (ref === "I" || ref === "O") {            // this group's own port, on its frame
      const q = pos.get(ref + "@" + gid);
      return [q, q];
    }
    const p = pos.get(ref), top = p.y - p.rowH / 2, bottom = p.y + p.rowH / 2;
    let x = p.x, y = asSource ? p.y - p.h / 2 : p.y + p.h / 2;
    if (ref[0] === "g" && p.open) {               // an open group: its port on the frame
      const port = pos.get((asSource ? "O@" : "I@") + ref.slice(1));
      if (port) { x = port.x; y = port.y; }
    }
    return asSource ? [{x: x, y: y}, {x: x, y: top}] : [{x: x, y: bottom}, {x: x, y: y}];
  }
  function edgePath(gid, chain) {
    const parts = [stretch(chain[0], gid, true)];
    for (let i = 1; i < chain.length - 1; i++) {
      const p = pos.get(chain[i]);
      parts.push([{x: p.x, y: p.y + p.rowH / 2}, {x: p.x, y: p.y - p.rowH / 2}]);
    }
    parts.push(stretch(chain[chain.length - 1], gid, false));
    function xy(q) { return q.x.toFixed(1) + "," + q.y.toFixed(1); }
    let d = "M" + xy(parts[0][0]) + "L" + xy(parts[0][1]);
    for (let i = 1; i < parts.length; i++) {
      const a = parts[i - 1][1], b = parts[i][0];
      const my = ((a.y + b.y) / 2).toFixed(1);
      d += "C" + a.x.toFixed(1) + "," + my + " " + b.x.toFixed(1) + "," + my + " " + xy(b) +
        "L" + xy(parts[i][1]);
    }
    return d;
  }
  function visibleGroups() {       // the open groups whose ancestors are all open
    const out = [];
    (function walk(gid) {
      out.push(gid);
      D.groups[gid].items.forEach(function (ref) {
        if (ref[0] === "g" && state.open.has(+ref.slice(1))) walk(+ref.slice(1));
      });
    })(0);
    return out;
  }
  function memberOf() {            // the split's members, and the groups holding any
    if (state.split < 0) return null;
    const sp = step().splits[state.split];
    const nodes = new Set(sp.members), groups = new Set();
    sp.members.forEach(function (n) {
      for (let g = D.nodes[n].group; g !== null; g = D.groups[g].parent) groups.add(g);
    });
    return {nodes: nodes, groups: groups};
  }
  function render() {
    layout();
    const groups = visibleGroups();
    const st = step(), members = memberOf();
    const flow = state.widths && st.flow ? st.flow : null;
    const parts = [], boxes = [];
    let topHeat = 0, topFlow = 0;
    groups.forEach(function (gid) {
      drawingOf(gid).rows.forEach(function (row) {
        row.forEach(function (it) {
          const r = it[0];
          if (r[0] === "n" || r[0] === "g") {
            const v = heatOf(r);
            if (typeof v === "number" && !(r[0] === "g" && state.open.has(+r.slice(1))))
              topHeat = Math.max(topHeat, v);
          }
        });
      });
      if (flow) drawingOf(gid).edges.forEach(function (e) { topFlow = Math.max(topFlow, flow[e[0]]); });
    });
    // frames of the open groups (outermost first, so inner ones are drawn on top)
    groups.forEach(function (gid) {
      if (gid === 0) return;
      const p = pos.get("g" + gid), g = D.groups[gid];
      const x = p.x - p.w / 2, y = p.y - p.h / 2, c = scopeColour(S[g.scope]);
      const cls = "frame" + (hitGroup(gid) ? " hit" : "");
      parts.push('<g class="' + cls + '" data-ref="g' + gid + '"><rect x="' + x.toFixed(1) +
        '" y="' + y.toFixed(1) + '" width="' + p.w.toFixed(1) + '" height="' + p.h.toFixed(1) +
        '" rx="6" fill="' + c + '" stroke="' + c + '"/><rect class="bar" data-toggle="g' + gid +
        '" x="' + x.toFixed(1) + '" y="' + y.toFixed(1) + '" width="' + p.w.toFixed(1) +
        '" height="' + BAR + '" rx="6" fill="' + c + '"/><text x="' + (x + 6).toFixed(1) +
        '" y="' + (y + 13).toFixed(1) + '">\u2212 ' + esc(g.label || "(top)") + " (" +
        nodeCount[gid] + " nodes)</text></g>");
    });
    // edges
    groups.forEach(function (gid) {
      drawingOf(gid).edges.forEach(function (e) {
        let cls = "edge", width = "";
        if (flow) {
          const f = flow[e[0]];
          if (f > 0 && topFlow > 0) {
            cls += " flow";
            width = ' stroke-width="' + Math.max(0.6, 8 * f / topFlow).toFixed(2) + '"';
          } else cls += " noflow";
        }
        parts.push('<path class="' + cls + '" data-edge="' + e[0] + '"' + width + ' d="' +
          edgePath(gid, e[1]) + '"/>');
      });
    });
    // boxes
    groups.forEach(function (gid) {
      drawingOf(gid).rows.forEach(function (row) {
        row.forEach(function (it) {
          const ref = it[0], k = ref[0];
          if (k === "d") return;
          const p = pos.get(k === "I" || k === "O" ? ref + "@" + gid : ref);
          if (k === "I" || k === "O") {
            parts.push('<circle class="port" cx="' + p.x.toFixed(1) + '" cy="' + p.y.toFixed(1) +
              '" r="3"/>');
            return;
          }
          if (k === "g" && p.open) return;
          boxes.push(ref);
          parts.push(boxSvg(ref, p, topHeat, members));
        });
      });
    });
    viewport.innerHTML = parts.join("");
    applyView();
    document.body.dataset.boxes = String(boxes.length);
  }
  function hitGroup(gid) { return state.hits && state.hits.groups.has(gid); }
  function boxSvg(ref, p, topHeat, members) {
    const k = ref[0], i = +ref.slice(1);
    let cls = "box", fill = "#fff", stroke = "#555";
    if (k === "n") {
      cls += " node";
      fill = scopeColour(S[D.nodes[i].scope]);
      if (state.hits && state.hits.nodes.has(i)) cls += " hit";
      if (members && members.nodes.has(i)) cls += " member";
    } else if (k === "g") {
      cls += " group";
      fill = scopeColour(S[D.groups[i].scope]);
      if (hitGroup(i)) cls += " hit";
      if (members && members.groups.has(i)) cls += " member";
    } else if (k === "l") {
      cls += " leaf" + (D.leaves[i].param ? "" : " const");
      if (state.hits && state.hits.leaves.has(i)) cls += " hit";
    } else if (k === "s" || k === "t") {
      cls += " stub";
    }
    if (state.heat && (k === "n" || k === "g")) fill = heatColour(heatOf(ref), topHeat);
    if (k === "n" || k === "g") stroke = fill;
    if (state.selected === ref) cls += " selected";
    const x = p.x - p.w / 2, y = p.y - p.h / 2;
    return '<g class="' + cls + '" data-ref="' + ref + '"><rect x="' + x.toFixed(1) + '" y="' +
      y.toFixed(1) + '" width="' + p.w.toFixed(1) + '" height="' + p.h.toFixed(1) + '" rx="' +
      (k === "n" ? 10 : 3) + '" fill="' + fill + '" stroke="' + stroke + '"/><text x="' +
      (x + BOX_PAD / 2).toFixed(1) + '" y="' + (p.y + 4).toFixed(1) + '">' +
      esc(itemLabel(ref)) + "</text></g>";
  }

  // ---- the view: pan and zoom ------------------------------------------------------------------
  function applyView() {
    const v = state.view;
    viewport.setAttribute("transform", "translate(" + v.x.toFixed(1) + "," + v.y.toFixed(1) +
      ") scale(" + v.k.toFixed(4) + ")");
  }
  function fit() {
    const r = svg.getBoundingClientRect();
    const k = Math.min(1.5, (r.width - 20) / root.w, (r.height - 20) / root.h);
    state.view = {k: k, x: (r.width - root.w * k) / 2, y: 10};
    applyView();
  }
  function centreOn(ref) {
    const p = pos.get(ref), r = svg.getBoundingClientRect();
    if (!p) return;
    const k = Math.max(state.view.k, 0.8);
    state.view = {k: k, x: r.width / 2 - p.x * k, y: r.height / 2 - p.y * k};
    applyView();
  }
  let drag = null;
  svg.addEventListener("mousedown", function (e) {
    drag = {x: e.clientX, y: e.clientY, vx: state.view.x, vy: state.view.y, moved: false};
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    state.view.x = drag.vx + dx;
    state.view.y = drag.vy + dy;
    applyView();
  });
  window.addEventListener("mouseup", function () { setTimeout(function () { drag = null; }, 0); });
  svg.addEventListener("wheel", function (e) {
    e.preventDefault();
    const r = svg.getBoundingClientRect(), v = state.view;
    const f = Math.exp(-e.deltaY * 0.0015), mx = e.clientX - r.left, my = e.clientY - r.top;
    const k = Math.max(0.02, Math.min(4, v.k * f));
    state.view = {k: k, x: mx - (mx - v.x) * k / v.k, y: my - (my - v.y) * k / v.k};
    applyView();
  }, {passive: false});

  // ---- clicking: open, close, select -----------------------------------------------------------
  svg.addEventListener("click", function (e) {
    if (drag && drag.moved) return;
    const toggle = e.target.closest("[data-toggle]");
    if (toggle) { close(+toggle.dataset.toggle.slice(1)); return; }
    const box = e.target.closest(".box");
    if (!box) return;
    const ref = box.dataset.ref;
    if (ref[0] === "g") { open(+ref.slice(1)); select(ref); return; }
    if (ref[0] === "s" || ref[0] === "t") {    // a copy or mark: go to what it stands for
      const of = ref.slice(1, ref.indexOf(">"));
      if (of !== "I") select(of);
      return;
    }
    select(ref);
  });
  function open(gid) { state.open.add(gid); render(); }
  function close(gid) {
    state.open.delete(gid);
    if (state.selected && ancestors(state.selected).indexOf(gid) >= 0) state.selected = "g" + gid;
    render();
    showDetails(state.selected);
  }
  function select(ref) {
    state.selected = ref;
    render();
    showDetails(ref);
  }
  function reveal(ref) {          // open every group holding ref, select it, centre on it
    ancestors(ref).forEach(function (g) { state.open.add(g); });
    select(ref);
    centreOn(ref);
  }

  // ---- the panel ---------------------------------------------------------------------------------
  const details = document.getElementById("details");
  function statsRows(title, s) {
    if (!s) return "<tr><th>" + title + "</th><td colspan=5>not recorded</td></tr>";
    return "<tr><th>" + title + "</th>" + s.slice(0, 5).map(function (v) {
      return '<td class="num">' + fmt(v) + "</td>";
    }).join("") + "</tr>";
  }
  function statsTable(value, grad, preview) {
    let h = '<table class="stats"><tr><th></th><th class="num">mean</th><th class="num">std</th>' +
      '<th class="num">min</th><th class="num">max</th><th class="num">norm</th></tr>' +
      statsRows("value", value) + statsRows("gradient", grad) + "</table>";
    if (value && value.length > 5)
      h += '<div>first values: <code class="preview">' + value.slice(5).map(fmt).join(", ") +
        (preview > value.length - 5 ? ", …" : "") + "</code></div>";
    return h;
  }
  function refLink(ref) {
    if (ref === "out") return "its own output";
    const k = ref[0], i = +ref.slice(1);
    const text = k === "n" ? nodeName(i) + " (" + (S[D.nodes[i].scope] || "top level") + ")"
      : S[D.leaves[i].name];
    return '<span class="ref" data-goto="' + ref + '">' + esc(text) + "</span>";
  }
  function size(shape) { return shape.reduce(function (a, b) { return a * b; }, 1); }
  function showDetails(ref) {
    if (!ref) return;
    const st = step(), k = ref[0], i = +ref.slice(1);
    let h = "";
    if (k === "n") {
      const n = D.nodes[i];
      h += "<h2>" + esc(nodeName(i)) + "</h2><table>" +
        "<tr><th>op</th><td class='op'>" + esc(S[n.op]) + "</td></tr>" +
        "<tr><th>scope</th><td class='scope'>" + esc(S[n.scope] || "(top level)") + "</td></tr>" +
        "<tr><th>shape</th><td class='shape'>(" + (n.shape || []).join(", ") + ")</td></tr>" +
        "<tr><th>dtype</th><td class='dtype'>" + esc(n.dtype === null ? "?" : S[n.dtype]) + "</td></tr>" +
        (S[n.attrs] ? "<tr><th>attrs</th><td>" + esc(S[n.attrs]) + "</td></tr>" : "") +
        (st.adjoints ? "<tr><th>|dL/d out|</th><td class='adjoint'>" + fmt(st.adjoints[i]) +
          "</td></tr>" : "") + "</table>";
      h += statsTable(st.values[i], st.grads ? st.grads[i] : null, n.shape ? size(n.shape) : 0);
      h += "<div><b>inputs</b>: " + n.inputs.map(refLink).join(", ") + "</div>";
      h += "<div class='saved'><b>saved for backward</b>: " +
        (n.saved.length ? n.saved.map(function (k) {
          return refLink(k < 0 ? "out" : n.inputs[k]);
        }).join(", ") : "nothing (the vjp needs only shapes)") +
        "</div>";
      h += "<div class='source'><b>recorded at</b>: " + (n.src
        ? "<code>" + esc(S[n.src[0]]) + ":" + n.src[1] + "</code> in " + esc(S[n.src[2]]) +
          (n.src.length > 3 ? "<br>called from <code>" + esc(S[n.src[3]]) + ":" + n.src[4] + "</code>" : "")
        : "not recorded (record the forward pass inside <code>tt.explorer.sources()</code>)") +
        "</div>";
    } else if (k === "l") {
      const l = D.leaves[i];
      h += "<h2>" + esc(S[l.name]) + "</h2><table><tr><th>kind</th><td>" +
        (l.param ? "parameter (requires grad)" : "data / constant") + "</td></tr>" +
        "<tr><th>shape</th><td class='shape'>(" + l.shape.join(", ") + ")</td></tr>" +
        "<tr><th>dtype</th><td class='dtype'>" + esc(S[l.dtype]) + "</td></tr></table>";
      h += statsTable(st.leafvalues[i], st.leafgrads ? st.leafgrads[i] : null, size(l.shape));
    } else if (k === "g") {
      const g = D.groups[i];
      h += "<h2>" + esc(g.label || "(top level)") + "</h2><table>" +
        "<tr><th>scope</th><td class='scope'>" + esc(S[g.scope] || "(top level)") + "</td></tr>" +
        "<tr><th>nodes</th><td>" + nodeCount[i] + "</td></tr>" +
        (st.adjoints ? "<tr><th>Σ|dL/d out|</th><td class='adjoint'>" + fmt(heatOf(ref)) +
          "</td></tr>" : "") + "</table>";
      const ops = {};
      D.nodes.forEach(function (n, j) {
        if (ancestors("n" + j).indexOf(i) >= 0) ops[S[n.op]] = (ops[S[n.op]] || 0) + 1;
      });
      h += "<div><b>ops</b>: " + Object.keys(ops).sort().map(function (o) {
        return esc(o) + " ×" + ops[o];
      }).join(", ") + "</div>";
    }
    if (state.split >= 0) h += splitTable(st.splits[state.split]);
    details.innerHTML = h;
  }
  function splitTable(sp) {
    let h = "<h2>split by " + esc(sp.component) + "</h2><p>" + sp.members.length +
      " nodes in the component (outlined); g = via + avoid</p><table class='split'><tr>" +
      "<th>parameter</th><th class='num'>|g|</th><th class='num'>|via|</th>" +
      "<th class='num'>|avoid|</th><th class='num'>signed</th><th class='num'>unsigned</th></tr>";
    sp.params.forEach(function (p) {
      h += "<tr><td>" + esc(p[0]) + (p[6] ? " (inside)" : "") + "</td>" +
        p.slice(1, 6).map(function (v) { return "<td class='num'>" + fmt(v) + "</td>"; }).join("") +
        "</tr>";
    });
    return h + "</table>";
  }
  document.getElementById("panel").addEventListener("click", function (e) {
    const link = e.target.closest("[data-goto]");
    if (link) reveal(link.dataset.goto);
  });

  // ---- search ------------------------------------------------------------------------------------
  const results = document.getElementById("results");
  function search(query) {
    query = query.trim().toLowerCase();
    if (!query) { state.hits = null; results.innerHTML = ""; render(); return; }
    const nodes = new Set(), leaves = new Set(), groups = new Set();
    D.leaves.forEach(function (l, i) {
      if (S[l.name].toLowerCase().indexOf(query) >= 0) leaves.add(i);
    });
    D.nodes.forEach(function (n, i) {
      const readsHit = n.inputs.some(function (r) { return r[0] === "l" && leaves.has(+r.slice(1)); });
      if (S[n.op].toLowerCase().indexOf(query) >= 0 ||
          S[n.scope].toLowerCase().indexOf(query) >= 0 || readsHit) {
        nodes.add(i);
        for (let g = n.group; g !== null; g = D.groups[g].parent) groups.add(g);
      }
    });
    state.hits = {nodes: nodes, leaves: leaves, groups: groups};
    const list = [];
    leaves.forEach(function (i) { list.push("l" + i); });
    nodes.forEach(function (i) { list.push("n" + i); });
    results.innerHTML = "<p><b>" + (nodes.size + leaves.size) + " matches</b>" +
      (list.length > 200 ? " (the first 200)" : "") + "</p>" +
      list.slice(0, 200).map(refLink).join("");
    render();
  }
  let timer = null;
  document.getElementById("search").addEventListener("input", function (e) {
    clearTimeout(timer);
    timer = setTimeout(function () { search(e.target.value); }, 150);
  });
  document.getElementById("search").addEventListener("keydown", function (e) {
    if (e.key === "Enter") { clearTimeout(timer); search(e.target.value); }
  });

  // ---- controls: flow widths, heat, split, training steps ------------------------------------------
  document.getElementById("widths").addEventListener("change", function (e) {
    state.widths = e.target.checked; render();
  });
  document.getElementById("heat").addEventListener("change", function (e) {
    state.heat = e.target.checked; render();
  });
  const splitBox = document.getElementById("split");
  const splits = D.steps[0].splits || [];
  splitBox.hidden = !splits.length;
  splitBox.innerHTML = '<option value="-1">split: none</option>' + splits.map(function (sp, i) {
    return '<option value="' + i + '">split: ' + esc(sp.component) + "</option>";
  }).join("");
  splitBox.addEventListener("change", function (e) {
    state.split = +e.target.value; render(); showDetails(state.selected) ;
    if (state.split >= 0 && !state.selected) details.innerHTML = splitTable(step().splits[state.split]);
  });
  const slider = document.getElementById("step"), stepLabel = document.getElementById("steplabel");
  document.getElementById("training").hidden = D.steps.length < 2;
  slider.max = String(D.steps.length - 1);
  function showStep() {
    const st = step();
    stepLabel.textContent = (st.label || "step " + state.step) +
      (st.loss !== undefined ? "  loss " + fmt(st.loss) : "");
  }
  slider.addEventListener("input", function () {
    state.step = +slider.value; showStep(); render(); showDetails(state.selected);
  });
  document.getElementById("fit").addEventListener("click", fit);
  document.getElementById("heat").disabled = !D.steps.some(function (s) { return s.adjoints; });
  document.getElementById("widths").disabled = !D.steps.some(function (s) { return s.flow; });

  // ---- opening: unfold level by level while the picture stays small ---------------------------------
  function boxesIn(g) {          // boxes drawn when group g is open (copies and marks too)
    let n = 0;
    drawingOf(g).rows.forEach(function (row) {
      row.forEach(function (it) { if ("dIO".indexOf(it[0][0]) < 0) n += 1; });
    });
    return n;
  }
  (function unfold() {
    let level = [0], shown = boxesIn(0);
    for (;;) {
      const next = [];
      level.forEach(function (g) {
        D.groups[g].items.forEach(function (r) { if (r[0] === "g") next.push(+r.slice(1)); });
      });
      const extra = next.reduce(function (a, g) { return a + boxesIn(g) - 1; }, 0);
      if (!next.length || shown + extra > 60) break;
      next.forEach(function (g) { state.open.add(g); });
      shown += extra;
      level = next;
    }
  })();
  showStep();
  render();
  fit();
  // for tests and the size benchmark: what is drawn, and when
  window.tinytraceExplorer = {
    data: D, state: state, render: render, open: open, close: close, select: select,
    reveal: reveal, search: search,
    visibleBoxes: function () { return viewport.querySelectorAll(".box").length; },
  };
  window.tinytraceDrawnMs = performance.now();
  document.body.dataset.ready = "1";
})();
