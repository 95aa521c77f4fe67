// Step timings as a Gantt chart: one row per step, one bar per attempt (a retry shows as a
// second bar after the wait), on a time axis from the run's start.

import { s, formatDuration } from "./dom.js";

const LABEL = 150;
const PLOT = 620;
const ROW = 22;
const AXIS = 22;

const OUTCOME_STATE = {
  succeeded: "succeeded",
  failed: "failed",
  timed_out: "failed",
  cancelled: "cancelled",
  interrupted: "interrupted",
};

function niceStep(totalSeconds) {
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  return steps.find((step) => totalSeconds / step <= 8) || 14400;
}

export function drawGantt(run, steps) {
  const now = Date.now();
  const time = (iso) => (iso ? new Date(iso).getTime() : null);
  const starts = steps.flatMap((step) => step.attempts.map((a) => time(a.started_at)));
  const start = Math.min(...[time(run.started_at), ...starts].filter((t) => t !== null), now);
  const ends = steps.flatMap((step) => step.attempts.map((a) => time(a.ended_at) ?? now));
  const end = Math.max(time(run.ended_at) ?? now, ...ends, start + 1);
  const span = end - start;
  const x = (t) => LABEL + ((t - start) / span) * PLOT;
  const rows = [...steps].sort((a, b) => a.position - b.position);
  const height = AXIS + rows.length * ROW + 4;

  const svg = s("svg", {
    id: "gantt",
    class: "gantt",
    viewBox: `0 0 ${LABEL + PLOT + 70} ${height}`,
    role: "img",
    "aria-label": "when each step ran",
  });
  const tick = niceStep(span / 1000);
  for (let t = 0; t <= span / 1000 + 1e-9; t += tick) {
    const tx = x(start + t * 1000);
    svg.append(
      s("line", { x1: tx, x2: tx, y1: AXIS - 4, y2: height, class: "grid" }),
      s("text", { x: tx, y: AXIS - 8, class: "axis", "text-anchor": "middle" }, formatDuration(t * 1000)),
    );
  }
  rows.forEach((step, i) => {
    const y = AXIS + i * ROW;
    const row = s("g", { class: "gantt-row", "data-step": step.id },
      s("text", { x: LABEL - 8, y: y + ROW / 2 + 4, class: "label", "text-anchor": "end" }, step.id));
    if (step.attempts.length === 0) {
      row.append(s("text", { x: LABEL + 4, y: y + ROW / 2 + 4, class: "muted" }, step.state.replace("_", " ")));
    }
    let lastEnd = null;
    for (const attempt of step.attempts) {
      const from = time(attempt.started_at);
      const to = time(attempt.ended_at) ?? now;
      const state = attempt.outcome ? OUTCOME_STATE[attempt.outcome] || "failed" : step.state;
      row.append(s("rect", {
        x: x(from), y: y + 4, width: Math.max(2, x(to) - x(from)), height: ROW - 8, rx: 2,
        class: `gantt-bar state-${state}`,
      }, s("title", {}, `${step.id}, try ${attempt.number}: ${formatDuration(to - from)}${attempt.error ? ` — ${attempt.error}` : ""}`)));
      lastEnd = to;
    }
    if (lastEnd !== null && step.duration_ms !== null && step.duration_ms !== undefined) {
      row.append(s("text", { x: x(lastEnd) + 5, y: y + ROW / 2 + 4, class: "value" }, formatDuration(step.duration_ms)));
    }
    svg.append(row);
  });
  return svg;
}
