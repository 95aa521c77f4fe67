// The pipelines page, the runs list, and the form that starts a run.

import { api } from "./api.js";
import { h, badge, formatTime, formatDuration, relative, shortId } from "./dom.js";

function took(run) {
  if (!run.started_at) return "–";
  const end = run.ended_at ? new Date(run.ended_at) : new Date();
  return formatDuration(end - new Date(run.started_at)) + (run.ended_at ? "" : " …");
}

export function runLink(run) {
  return h("a", { href: `#/runs/${run.id}`, class: "run-id", title: run.id }, shortId(run.id));
}

function errorBox(error) {
  return h("div", { class: "error-box", role: "alert" },
    h("strong", {}, error.message),
    error.hint ? h("div", { class: "hint" }, error.hint) : null);
}

/** A form for a pipeline's params that starts a run and opens its page. */
export function triggerForm(pipeline, values = {}) {
  const form = h("form", { class: "trigger-form", "data-pipeline": pipeline.name });
  const inputs = [];
  for (const [name, spec] of Object.entries(pipeline.params || {})) {
    const given = values[name];
    const input = h("input", {
      name,
      type: spec.type === "integer" || spec.type === "number" ? "number" : spec.type === "date" ? "date" : "text",
      step: spec.type === "number" ? "any" : spec.type === "integer" ? "1" : undefined,
      min: spec.min, max: spec.max,
      placeholder: spec.default === undefined ? "" : `default: ${spec.default}`,
      value: given === undefined || given === null ? undefined : String(given),
    });
    if (spec.type === "boolean") {
      input.setAttribute("type", "text");
      input.setAttribute("placeholder", `true or false${spec.default === undefined ? "" : ` (default ${spec.default})`}`);
    }
    if (spec.type === "enum" && spec.values) {
      input.setAttribute("list", `values-${pipeline.name}-${name}`);
      form.append(h("datalist", { id: `values-${pipeline.name}-${name}` }, spec.values.map((v) => h("option", { value: v }))));
    }
    inputs.push(input);
    form.append(h("label", {}, h("span", { class: "param-name" }, name, h("small", {}, ` ${spec.type}`)),
      input, spec.description ? h("small", { class: "muted" }, spec.description) : null));
  }
  if (inputs.length === 0) form.append(h("p", { class: "muted" }, "This pipeline has no params."));
  const message = h("div", { class: "form-message" });
  const submit = h("button", { type: "submit", class: "primary", "data-action": "start-run" }, "Start run");
  form.append(h("div", { class: "form-actions" }, submit), message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = {};
    for (const input of inputs) {
      if (input.value.trim() !== "") params[input.name] = input.value.trim();
    }
    submit.disabled = true;
    message.replaceChildren();
    try {
      const started = await api(`/api/pipelines/${encodeURIComponent(pipeline.name)}/runs`, { method: "POST", body: { params } });
      location.hash = `#/runs/${started.run}`;
    } catch (error) {
      message.append(errorBox(error));
      submit.disabled = false;
    }
  });
  return form;
}

function toggleForm(cell, pipeline) {
  const open = cell.querySelector("form");
  if (open) open.remove();
  else cell.append(triggerForm(pipeline));
}

export async function pipelinesPage() {
  const { pipelines } = await api("/api/pipelines");
  const rows = pipelines.map((p) => {
    const schedule = p.schedule;
    const actions = h("td", { class: "actions" });
    const runButton = h("button", { type: "button", "data-action": "trigger", disabled: !p.runnable, onclick: () => toggleForm(actions, p) }, "Run…");
    actions.append(runButton);
    return [
      h("tr", { class: "pipeline", "data-pipeline": p.name },
        h("td", {}, h("a", { href: `#/runs?pipeline=${encodeURIComponent(p.name)}`, class: "pipeline-name" }, p.name),
          p.description ? h("div", { class: "muted" }, p.description) : null),
        h("td", {}, schedule ? [h("code", {}, schedule.cron), h("div", { class: "muted" }, schedule.timezone)] : h("span", { class: "muted" }, "on demand")),
        h("td", { class: "next-fire" }, schedule && schedule.next_fire
          ? [schedule.next_fire_local || formatTime(schedule.next_fire), h("div", { class: "muted" }, relative(schedule.next_fire))]
          : "–"),
        h("td", {}, schedule && schedule.last_fire ? formatTime(schedule.last_fire) : "–"),
        h("td", {}, p.last_run ? [badge(p.last_run.state), " ", runLink(p.last_run)] : h("span", { class: "muted" }, "no runs yet")),
        h("td", { class: "num" }, p.steps.length),
        actions),
      p.error ? h("tr", { class: "load-error" }, h("td", { colspan: 7 },
        h("strong", {}, p.runnable ? "The file on disk does not load; the last good version stays in use:" : "The file does not load:"),
        h("pre", {}, p.error))) : null,
    ];
  });
  return {
    title: "Pipelines",
    node: h("section", {},
      h("h1", {}, "Pipelines"),
      pipelines.length === 0 ? h("p", { class: "muted" }, "No pipeline files in the served folder.") :
        h("table", { class: "list", id: "pipelines" },
          h("thead", {}, h("tr", {}, ["Pipeline", "Schedule", "Next run", "Last fire", "Last run", "Steps", ""].map((c) => h("th", {}, c)))),
          h("tbody", {}, rows))),
    live: false,
  };
}

const STATES = ["queued", "running", "succeeded", "failed", "cancelled", "interrupted"];

export async function runsPage(query) {
  const pipeline = query.get("pipeline") || "";
  const state = query.get("state") || "";
  const params = new URLSearchParams({ limit: "100" });
  if (pipeline) params.set("pipeline", pipeline);
  if (state) params.set("state", state);
  const [{ runs }, { pipelines }] = await Promise.all([api(`/api/runs?${params}`), api("/api/pipelines")]);
  const filter = (name, options, value) => h("select", {
    name,
    onchange: (e) => {
      const next = new URLSearchParams(query);
      if (e.target.value) next.set(name, e.target.value);
      else next.delete(name);
      location.hash = `#/runs?${next}`;
    },
  }, h("option", { value: "" }, `every ${name}`), options.map((o) => h("option", { value: o, selected: o === value }, o)));
  return {
    title: "Runs",
    node: h("section", {},
      h("h1", {}, "Runs"),
      h("div", { class: "filters" },
        filter("pipeline", pipelines.map((p) => p.name), pipeline),
        filter("state", STATES, state)),
      runs.length === 0 ? h("p", { class: "muted" }, "No runs yet.") :
        h("table", { class: "list", id: "runs" },
          h("thead", {}, h("tr", {}, ["Run", "Pipeline", "State", "Trigger", "Started", "Took"].map((c) => h("th", {}, c)))),
          h("tbody", {}, runs.map((run) => h("tr", { class: "run", "data-run": run.id, "data-state": run.state },
            h("td", {}, runLink(run)),
            h("td", {}, run.pipeline),
            h("td", {}, badge(run.state)),
            h("td", {}, run.trigger),
            h("td", {}, formatTime(run.started_at || run.created_at)),
            h("td", { class: "num" }, took(run))))))),
    live: runs.some((run) => run.state === "running" || run.state === "queued"),
  };
}

export { errorBox, took };
