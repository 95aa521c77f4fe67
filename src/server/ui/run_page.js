// One run: its state and actions, the DAG, step timings, the steps with their outputs and
// datasets, the segment report with charts, and the logs.

import { api } from "./api.js";
import { drawChart, drawTable } from "./charts.js";
import { drawDag } from "./dag.js";
import { h, badge, formatTime, formatDuration, formatNumber, shortId } from "./dom.js";
import { drawGantt } from "./gantt.js";
import { errorBox, took, triggerForm } from "./pages.js";

const RESUMABLE = ["failed", "cancelled", "interrupted"];
const STREAM_LABEL = { stdout: "", stderr: "stderr", info: "segflow", warn: "warning" };

async function action(path, button, message) {
  button.disabled = true;
  message.replaceChildren();
  try {
    const answer = await api(path, { method: "POST" });
    const target = `#/runs/${answer && answer.run ? answer.run : ""}`;
    if (answer && answer.run && location.hash !== target) location.hash = target;
    else window.dispatchEvent(new Event("segflow:refresh"));
  } catch (error) {
    message.append(errorBox(error));
    button.disabled = false;
  }
}

function actions(run, pipeline) {
  const message = h("div", { class: "form-message" });
  const bar = h("div", { class: "run-actions" });
  if (run.state === "running" || run.state === "queued") {
    const cancel = h("button", { type: "button", class: "danger", "data-action": "cancel" }, "Cancel");
    cancel.addEventListener("click", () => action(`/api/runs/${run.id}/cancel`, cancel, message));
    bar.append(cancel);
  }
  if (RESUMABLE.includes(run.state)) {
    const resume = h("button", { type: "button", class: "primary", "data-action": "resume" }, "Resume");
    resume.addEventListener("click", () => action(`/api/runs/${run.id}/resume`, resume, message));
    bar.append(resume);
  }
  const holder = h("div", { class: "run-again" });
  if (pipeline && pipeline.runnable) {
    const again = h("button", { type: "button", "data-action": "trigger" }, "Run again…");
    again.addEventListener("click", () => {
      const open = holder.querySelector("form");
      if (open) open.remove();
      else holder.append(triggerForm(pipeline, run.params));
    });
    bar.append(again);
  }
  return h("div", {}, bar, holder, message);
}

function outputs(step) {
  const entries = Object.entries(step.outputs || {});
  if (entries.length === 0) return "";
  return h("dl", { class: "outputs" }, entries.flatMap(([k, v]) => [
    h("dt", {}, k),
    h("dd", {}, outputValue(v)),
  ]));
}

/** A number or short text as it is; a long list or object folded away. */
function outputValue(value) {
  if (value === null || typeof value !== "object") return formatNumber(value);
  const text = JSON.stringify(value);
  if (text.length <= 40) return text;
  const count = Array.isArray(value) ? `${value.length} items` : `${Object.keys(value).length} entries`;
  return h("details", {}, h("summary", {}, count), h("pre", {}, JSON.stringify(value, null, 2)));
}

function datasetsCell(run, step, preview) {
  return step.datasets.map((d) => h("div", {},
    h("a", {
      href: "#", class: "dataset-link", "data-dataset": `${step.id}.${d.name}`,
      onclick: (e) => { e.preventDefault(); showDataset(run, step.id, d, preview); },
    }, d.name), h("span", { class: "muted" }, ` ${formatNumber(d.rows)} rows`)));
}

async function showDataset(run, step, dataset, preview) {
  preview.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const answer = await api(`/api/runs/${run.id}/steps/${encodeURIComponent(step)}/datasets/${encodeURIComponent(dataset.name)}?limit=50`);
    const columns = answer.columns.map((c) => c.name);
    preview.replaceChildren(drawTable({
      title: `${step}.${dataset.name}: first ${answer.data.length} of ${formatNumber(answer.rows)} rows`,
      columns,
      rows: answer.data.map((row) => columns.map((c) => row[c])),
    }));
    preview.scrollIntoView({ block: "nearest" });
  } catch (error) {
    preview.replaceChildren(errorBox(error));
  }
}

function stepsTable(run) {
  const preview = h("div", { id: "dataset-preview" });
  const table = h("table", { class: "list", id: "steps" },
    h("thead", {}, h("tr", {}, ["Step", "Kind", "State", "Tries", "Took", "Outputs", "Datasets", "Reason"].map((c) => h("th", {}, c)))),
    h("tbody", {}, [...run.steps].sort((a, b) => a.position - b.position).map((step) =>
      h("tr", { id: `step-${step.id}`, "data-step": step.id, "data-state": step.state },
        h("td", {}, h("a", { href: `#/runs/${run.id}?step=${encodeURIComponent(step.id)}`, title: "this step's logs" }, step.id)),
        h("td", {}, h("code", {}, step.kind)),
        h("td", {}, badge(step.state)),
        h("td", { class: "num" }, step.attempts.length),
        h("td", { class: "num" }, formatDuration(step.duration_ms)),
        h("td", {}, outputs(step)),
        h("td", {}, datasetsCell(run, step, preview)),
        h("td", { class: "reason" }, step.reason || "")))));
  return [h("div", { class: "scroll" }, table), preview];
}

function reportSection(reports) {
  if (reports.length === 0) return null;
  return h("section", { id: "report" },
    h("h2", {}, "Report"),
    reports.map((entry) => {
      if (entry.error) return h("div", { class: "report", "data-step": entry.step }, h("h3", {}, entry.step), errorBox(new Error(entry.error)));
      const report = entry.report;
      return h("article", { class: "report", "data-step": entry.step, "data-kind": entry.kind },
        h("h3", {}, report.title, " ", h("small", { class: "muted" }, `${entry.step} · ${entry.kind}`)),
        report.summary && report.summary.length ? h("ul", { class: "summary" }, report.summary.map((line) => h("li", {}, line))) : null,
        h("div", { class: "charts" }, (report.charts || []).map(drawChart)),
        (report.tables || []).map(drawTable));
    }));
}

function logsSection(run, lines, selected) {
  const choose = h("select", {
    name: "log-step",
    onchange: (e) => {
      location.hash = e.target.value ? `#/runs/${run.id}?step=${encodeURIComponent(e.target.value)}` : `#/runs/${run.id}`;
    },
  }, h("option", { value: "" }, "every step"), run.steps.map((step) => h("option", { value: step.id, selected: step.id === selected }, step.id)));
  return h("section", { id: "logs" },
    h("h2", {}, "Logs ", choose),
    lines.length === 0 ? h("p", { class: "muted" }, "No log lines.") :
      h("pre", { class: "logs" }, lines.map((line) => h("div", { class: `log-line stream-${line.stream}` },
        h("span", { class: "at" }, formatTime(line.at).slice(11)), " ",
        h("span", { class: "step" }, `${line.step}#${line.attempt}`),
        STREAM_LABEL[line.stream] ? h("span", { class: "stream" }, ` [${STREAM_LABEL[line.stream]}]`) : null,
        " ", line.line))));
}

export async function runPage(id, query) {
  const selected = query.get("step") || "";
  const logsPath = `/api/runs/${encodeURIComponent(id)}/logs${selected ? `?step=${encodeURIComponent(selected)}` : ""}`;
  const [run, report, logs, pipelines] = await Promise.all([
    api(`/api/runs/${encodeURIComponent(id)}`),
    api(`/api/runs/${encodeURIComponent(id)}/report`),
    api(logsPath),
    api("/api/pipelines"),
  ]);
  const pipeline = pipelines.pipelines.find((p) => p.name === run.pipeline);
  const params = Object.entries(run.params || {});
  const node = h("section", { id: "run", "data-run": run.id, "data-state": run.state },
    h("h1", {}, h("a", { href: `#/runs?pipeline=${encodeURIComponent(run.pipeline)}` }, run.pipeline), " › run ",
      h("span", { title: run.id }, shortId(run.id)), " ", badge(run.state)),
    h("dl", { class: "facts" },
      h("dt", {}, "run"), h("dd", {}, h("code", {}, run.id)),
      h("dt", {}, "trigger"), h("dd", {}, run.trigger + (run.scheduled_for ? ` (for ${formatTime(run.scheduled_for)})` : "")),
      h("dt", {}, "started"), h("dd", {}, formatTime(run.started_at || run.created_at)),
      h("dt", {}, "took"), h("dd", {}, took(run)),
      params.length ? [h("dt", {}, "params"), h("dd", {}, params.map(([k, v]) => h("code", { class: "param" }, `${k}=${v}`)))] : null,
      run.resumes ? [h("dt", {}, "resumed"), h("dd", {}, `${run.resumes} time(s)`)] : null),
    run.error ? h("div", { class: "error-box" }, run.error) : null,
    actions(run, pipeline),
    h("section", { id: "graph" }, h("h2", {}, "Steps"),
      h("div", { class: "scroll" }, drawDag(run.steps, (step) => { location.hash = `#/runs/${run.id}?step=${encodeURIComponent(step)}`; }))),
    h("section", { id: "timings" }, h("h2", {}, "Timings"), drawGantt(run, run.steps)),
    reportSection(report.reports),
    h("section", { id: "step-table" }, h("h2", {}, "Step details"), stepsTable(run)),
    logsSection(run, logs.lines, selected));
  return {
    title: `${run.pipeline} ${shortId(run.id)}`,
    node,
    live: run.state === "running" || run.state === "queued",
  };
}
