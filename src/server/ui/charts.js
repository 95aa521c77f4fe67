// Report charts as SVG: bars (segment sizes, share changes), intervals (lift with its
// confidence interval) and matrices (migration between runs). Reports have one generic shape
// (src/report.rs), so any step's report draws without knowing the step kind.

import { h, s, formatNumber } from "./dom.js";

const LABEL_WIDTH = 170;
const PLOT_WIDTH = 380;
const VALUE_WIDTH = 150;
const ROW = 24;

export function drawChart(chart) {
  const draw = { bar: barChart, interval: intervalChart, matrix: matrixChart }[chart.type];
  const figure = h("figure", { class: "chart-box" }, h("figcaption", {}, chart.title));
  figure.append(draw ? draw(chart) : h("p", { class: "muted" }, `(a ${chart.type} chart cannot be drawn here)`));
  return figure;
}

function truncate(text, length) {
  text = String(text);
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

/** A value for the chart's unit: lifts are shown as percentages. */
function formatFor(unit) {
  if (unit && unit.includes("relative")) {
    return (v) => `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)}%`;
  }
  return (v) => formatNumber(v);
}

function scale(domainLow, domainHigh, rangeLow, rangeHigh) {
  const span = domainHigh - domainLow || 1;
  return (v) => rangeLow + ((v - domainLow) / span) * (rangeHigh - rangeLow);
}

function barChart(chart) {
  const values = chart.values;
  const low = Math.min(0, ...values);
  const high = Math.max(0, ...values);
  const x = scale(low, high, LABEL_WIDTH, LABEL_WIDTH + PLOT_WIDTH);
  const format = formatFor(chart.unit);
  const height = values.length * ROW + 8;
  const svg = s("svg", {
    class: "chart chart-bar",
    viewBox: `0 0 ${LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH} ${height}`,
    role: "img",
    "aria-label": chart.title,
  });
  chart.labels.forEach((label, i) => {
    const y = 4 + i * ROW;
    const v = values[i];
    const x0 = x(Math.min(0, v));
    const width = Math.max(1, Math.abs(x(v) - x(0)));
    svg.append(
      s("text", { x: LABEL_WIDTH - 8, y: y + ROW / 2 + 4, class: "label", "text-anchor": "end" }, truncate(label, 24)),
      s("rect", { x: x0, y: y + 3, width, height: ROW - 6, rx: 2, class: v < 0 ? "bar negative" : "bar" },
        s("title", {}, `${label}: ${format(v)}${chart.unit ? ` ${chart.unit}` : ""}`)),
      s("text", { x: x(Math.max(0, v)) + 6, y: y + ROW / 2 + 4, class: "value" }, format(v)),
    );
  });
  if (low < 0) {
    svg.append(s("line", { x1: x(0), x2: x(0), y1: 0, y2: height, class: "zero" }));
  }
  return svg;
}

function intervalChart(chart) {
  const rows = chart.rows;
  const low = Math.min(0, ...rows.map((r) => r.low));
  const high = Math.max(0, ...rows.map((r) => r.high));
  const pad = (high - low) * 0.05 || 0.01;
  const x = scale(low - pad, high + pad, LABEL_WIDTH, LABEL_WIDTH + PLOT_WIDTH);
  const format = formatFor(chart.unit);
  const height = rows.length * ROW + 26;
  const svg = s("svg", {
    class: "chart chart-interval",
    viewBox: `0 0 ${LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH + 90} ${height}`,
    role: "img",
    "aria-label": chart.title,
  });
  svg.append(
    s("line", { x1: x(0), x2: x(0), y1: 0, y2: height - 20, class: "zero" }),
    s("text", { x: x(0), y: height - 6, class: "axis", "text-anchor": "middle" }, "no effect"),
  );
  rows.forEach((row, i) => {
    const y = 4 + i * ROW + ROW / 2;
    const side = row.low > 0 ? "positive" : row.high < 0 ? "negative" : "unclear";
    svg.append(
      s("text", { x: LABEL_WIDTH - 8, y: y + 4, class: "label", "text-anchor": "end" }, truncate(row.label, 24)),
      s("g", { class: `interval ${side}` },
        s("title", {}, `${row.label}: ${format(row.estimate)} (${format(row.low)} to ${format(row.high)})`),
        s("line", { x1: x(row.low), x2: x(row.high), y1: y, y2: y, class: "whisker" }),
        s("line", { x1: x(row.low), x2: x(row.low), y1: y - 5, y2: y + 5, class: "whisker" }),
        s("line", { x1: x(row.high), x2: x(row.high), y1: y - 5, y2: y + 5, class: "whisker" }),
        s("circle", { cx: x(row.estimate), cy: y, r: 4.5, class: "estimate" })),
      s("text", { x: LABEL_WIDTH + PLOT_WIDTH + 10, y: y + 4, class: "value" },
        `${format(row.estimate)} [${format(row.low)}, ${format(row.high)}]`),
    );
  });
  return svg;
}

function matrixChart(chart) {
  const cell = { w: 64, h: 26 };
  const left = LABEL_WIDTH;
  const top = 92;
  const max = Math.max(1, ...chart.values.flat());
  const width = left + chart.columns.length * cell.w + 10;
  const height = top + chart.rows.length * cell.h + 22;
  const svg = s("svg", {
    class: "chart chart-matrix",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": chart.title,
  });
  svg.setAttribute("width", String(width));
  chart.columns.forEach((column, j) => {
    const cx = left + j * cell.w + cell.w / 2;
    svg.append(s("text", { x: cx, y: top - 8, class: "label column", transform: `rotate(-35 ${cx} ${top - 8})` }, truncate(column, 16)));
  });
  chart.rows.forEach((row, i) => {
    const y = top + i * cell.h;
    svg.append(s("text", { x: left - 8, y: y + cell.h / 2 + 4, class: "label", "text-anchor": "end" }, truncate(row, 24)));
    chart.columns.forEach((column, j) => {
      const value = chart.values[i]?.[j] ?? 0;
      // Intensity by share of the largest cell; the diagonal (stayed) reads as the strongest.
      const level = value === 0 ? 0 : Math.min(5, 1 + Math.floor((value / max) * 5));
      svg.append(
        s("rect", { x: left + j * cell.w, y, width: cell.w - 2, height: cell.h - 2, class: `cell level-${level}` },
          s("title", {}, `${row} → ${column}: ${formatNumber(value)}`)),
        s("text", { x: left + j * cell.w + cell.w / 2 - 1, y: y + cell.h / 2 + 4, "text-anchor": "middle", class: level >= 4 ? "count light" : "count" },
          value === 0 ? "" : formatNumber(value)),
      );
    });
  });
  svg.append(s("text", { x: left, y: height - 4, class: "axis" }, "rows: segment in the previous run · columns: segment in this run"));
  return svg;
}

export function drawTable(table) {
  return h("figure", { class: "table-box" },
    h("figcaption", {}, table.title),
    h("div", { class: "scroll" },
      h("table", { class: "data" },
        h("thead", {}, h("tr", {}, table.columns.map((c) => h("th", {}, c)))),
        h("tbody", {}, table.rows.map((row) =>
          h("tr", {}, row.map((cell) => h("td", { class: typeof cell === "number" ? "num" : "" }, formatNumber(cell)))))))));
}
