// A run's DAG as SVG, laid out in layers by topological depth (a step sits one layer right of
// the deepest step it needs), each layer ordered to keep edges short, each step coloured by state.

import { s } from "./dom.js";

const NODE = { w: 176, h: 46 };
const GAP = { x: 56, y: 16 };
const MARGIN = 8;

/** Depth of every step: 0 without needs, else one more than its deepest need. */
function depths(steps) {
  const byId = new Map(steps.map((step) => [step.id, step]));
  const depth = new Map();
  const visiting = new Set();
  const visit = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0; // a cycle cannot be recorded, but never loop on one
    visiting.add(id);
    const needs = (byId.get(id)?.needs || []).filter((n) => byId.has(n));
    const d = needs.length ? 1 + Math.max(...needs.map(visit)) : 0;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  steps.forEach((step) => visit(step.id));
  return depth;
}

/** Layers of step ids, each ordered by the mean position of the steps it needs. */
function layers(steps) {
  const depth = depths(steps);
  const result = [];
  for (const step of [...steps].sort((a, b) => a.position - b.position)) {
    const d = depth.get(step.id);
    (result[d] ||= []).push(step);
  }
  const index = new Map();
  result.forEach((layer) => layer.forEach((step, i) => index.set(step.id, i)));
  for (let d = 1; d < result.length; d++) {
    const weight = (step) => {
      const ups = (step.needs || []).filter((n) => index.has(n));
      return ups.length ? ups.reduce((sum, n) => sum + index.get(n), 0) / ups.length : index.get(step.id);
    };
    result[d].sort((a, b) => weight(a) - weight(b) || a.position - b.position);
    result[d].forEach((step, i) => index.set(step.id, i));
  }
  return result;
}

function label(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

/**
 * steps: [{id, kind, state, needs, position, duration_ms}]; onSelect(stepId) when a step is clicked.
 */
export function drawDag(steps, onSelect) {
  const layout = layers(steps);
  const tallest = Math.max(1, ...layout.map((layer) => layer.length));
  const width = MARGIN * 2 + layout.length * NODE.w + Math.max(0, layout.length - 1) * GAP.x;
  const height = MARGIN * 2 + tallest * NODE.h + (tallest - 1) * GAP.y;
  const at = new Map();
  layout.forEach((layer, d) => {
    const offset = ((tallest - layer.length) * (NODE.h + GAP.y)) / 2;
    layer.forEach((step, i) => {
      at.set(step.id, { x: MARGIN + d * (NODE.w + GAP.x), y: MARGIN + offset + i * (NODE.h + GAP.y) });
    });
  });

  const svg = s("svg", {
    id: "dag",
    class: "dag",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": "the run's steps and what each needs",
  });
  svg.append(s("defs", {},
    s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }))));

  const edges = s("g", { class: "edges" });
  for (const step of steps) {
    const to = at.get(step.id);
    for (const need of step.needs || []) {
      const from = at.get(need);
      if (!from || !to) continue;
      const x1 = from.x + NODE.w, y1 = from.y + NODE.h / 2;
      const x2 = to.x - 2, y2 = to.y + NODE.h / 2;
      const bend = (x2 - x1) / 2;
      edges.append(s("path", {
        class: "edge", "data-from": need, "data-to": step.id, "marker-end": "url(#arrow)",
        d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
      }));
    }
  }
  svg.append(edges);

  for (const step of steps) {
    const { x, y } = at.get(step.id);
    const node = s("g", {
      class: `dag-node state-${step.state}`,
      "data-step": step.id,
      "data-state": step.state,
      transform: `translate(${x} ${y})`,
      tabindex: 0,
    },
      s("title", {}, `${step.id} (${step.kind}): ${step.state.replace("_", " ")}`),
      s("rect", { width: NODE.w, height: NODE.h, rx: 7 }),
      s("text", { x: 10, y: 19, class: "name" }, label(step.id, 21)),
      s("text", { x: 10, y: 36, class: "kind" }, label(step.kind, 25)));
    if (onSelect) {
      node.addEventListener("click", () => onSelect(step.id));
      node.addEventListener("keydown", (e) => { if (e.key === "Enter") onSelect(step.id); });
    }
    svg.append(node);
  }
  return svg;
}
