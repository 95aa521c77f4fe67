// The web UI's entry: hash routes (#/, #/runs, #/runs/ID), the refresh of live pages, and the
// token form when the server asks for one.

import { api, ApiError, setToken } from "./api.js";
import { h, clear } from "./dom.js";
import { pipelinesPage, runsPage, errorBox } from "./pages.js";
import { runPage } from "./run_page.js";

const REFRESH_MS = 2000;
const view = document.getElementById("view");
let timer = null;
let generation = 0;

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search] = hash.split("?");
  const query = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { nav: "pipelines", load: () => pipelinesPage() };
  if (parts[0] === "runs" && parts.length === 1) return { nav: "runs", load: () => runsPage(query) };
  if (parts[0] === "runs" && parts.length === 2) return { nav: "runs", load: () => runPage(parts[1], query) };
  return { nav: "", load: async () => ({ title: "Not found", node: h("p", {}, "There is no such page. ", h("a", { href: "#/" }, "Pipelines")) }) };
}

function tokenForm(error) {
  const input = h("input", { type: "password", name: "token", autocomplete: "off", placeholder: "API token", required: true });
  const form = h("form", { class: "token-form" },
    h("h1", {}, "This server needs a token"),
    h("p", {}, error.message),
    h("p", { class: "muted" }, "It is the token segflow serve was started with (SEGFLOW_API_TOKEN or --token-file). It is kept in this browser tab only."),
    input, " ", h("button", { type: "submit", class: "primary" }, "Use token"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    render();
  });
  return form;
}

/** A user typing in a form or having opened one: do not redraw under them. */
function busy() {
  return view.querySelector("form") !== null;
}

async function render() {
  clearTimeout(timer);
  const mine = ++generation;
  const { nav, load } = route();
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.nav === nav);
  }
  let page;
  try {
    page = await load();
  } catch (error) {
    if (mine !== generation) return;
    const node = error instanceof ApiError && error.status === 401 ? tokenForm(error) : errorBox(error);
    clear(view).append(node);
    view.dataset.ready = "error";
    return;
  }
  if (mine !== generation) return; // a newer navigation won
  document.title = `${page.title} · segflow`;
  clear(view).append(page.node);
  view.dataset.ready = "true";
  if (page.live) schedule();
}

function schedule() {
  timer = setTimeout(() => (busy() ? schedule() : render()), REFRESH_MS);
}

window.addEventListener("hashchange", render);
window.addEventListener("segflow:refresh", render);
render();

