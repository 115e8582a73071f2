// The mnemogate dashboard: the memory graph in 3D, learning series, gateway usage, sessions,
// the request log, compaction, masked secrets and rate limits, kept live over WebSockets.
import ForceGraph3D from "3d-force-graph";

import { api, ApiError, auth, channel, mountedRoutes } from "./api.js";
import { barChart, el, fmt, keyValues, lineChart, table, time } from "./charts.js";
import "./style.css";

const COLORS = { semantic: "#4fc3f7", episodic: "#ffb74d", procedural: "#81c784" };
const NAMES = { semantic: "entities", episodic: "episodes", procedural: "skills" };
const HOP_COLORS = ["#ffffff", "#ff5252", "#ff9100", "#ffea00", "#b2ff59", "#18ffff", "#e040fb"];
const DETAIL_PATHS = { semantic: "/api/v1/entities/", episodic: "/api/v1/episodes/", procedural: "/api/v1/skills/" };

const $ = (selector) => document.querySelector(selector);
const state = { routes: new Set(), nodes: new Map(), links: [], lit: new Map(), flashing: new Set(), sockets: [] };
let graph = null;

// -- key entry -------------------------------------------------------------------------------

function note(text, bad = false) {
  $("#key-note").textContent = text;
  $("#key-note").classList.toggle("bad", bad);
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  auth.key = $("#key-input").value.trim();
  $("#key-input").value = "";
  start();
});
$("#key-forget").addEventListener("click", () => {
  auth.key = "";
  stop();
  note(auth.required ? "this server needs an API key" : "no key: open to local clients");
});

// -- panels ----------------------------------------------------------------------------------

function show(target, content) {
  const panel = $(target);
  panel.replaceChildren(...[].concat(content));
}

function failure(target, error) {
  show(target, el("p", { class: "note bad" }, error instanceof ApiError ? `${error.status}: ${error.message}` : String(error)));
}

/** A panel fed by another plugin's route: "not enabled" when the route is not mounted. */
async function optional(target, route, render) {
  const [method, path] = route.split(" ");
  if (!state.routes.has(route)) {
    show(target, el("p", { class: "note off" }, `not enabled (${path} is not mounted)`));
    return;
  }
  try {
    show(target, render(await api(path, { method })));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) show(target, el("p", { class: "note off" }, "not enabled"));
    else failure(target, error);
  }
}

function selection() {
  const kinds = [...document.querySelectorAll('input[name="kind"]:checked')].map((box) => box.value);
  return { kinds, user_id: $("#filter-user").value.trim(), session_id: $("#filter-session").value.trim() };
}

async function loadGraph() {
  try {
    const data = await api("/api/v1/viz/graph", { params: { ...selection(), limit: 10000 } });
    state.nodes = new Map(data.nodes.map((node) => [node.id, { ...node }]));
    state.links = data.edges.map((edge) => ({ ...edge }));
    state.lit.clear();
    state.kinds = Object.keys(data.counts);
    state.truncated = data.truncated;
    drawGraph(true);
  } catch (error) {
    failure("#details", error);
  }
}

function nodeColor(node) {
  if (state.flashing.has(node.id)) return "#ffffff";
  if (state.lit.size) return state.lit.has(node.id) ? HOP_COLORS[Math.min(state.lit.get(node.id).hop, 6)] : "#2a3350";
  return COLORS[node.memory_type];
}

function drawGraph(fit = false) {
  const container = $("#graph");
  if (!graph) {
    graph = ForceGraph3D()(container)
      .backgroundColor("#0b1020")
      .width(container.clientWidth)
      .height(container.clientHeight)
      .cooldownTicks(0) // the server laid the graph out
      .nodeLabel((node) => `${NAMES[node.memory_type]}: ${node.label}`)
      .nodeVal((node) => 1 + 6 * (node.strength || 0) + 3 * (node.importance || 0))
      .nodeColor(nodeColor)
      .nodeOpacity(0.95)
      .linkColor((link) => (link.kind === "relation" ? "#c5cae9" : "#7986cb"))
      .linkOpacity(0.85)
      .linkWidth((link) => (link.kind === "relation" ? 0.6 + 3 * link.weight : 0.4))
      .linkDirectionalParticles((link) => (state.lit.size && state.lit.has(link.target?.id ?? link.target) ? 3 : 0))
      .onNodeClick(details);
    new ResizeObserver(() => graph.width(container.clientWidth).height(container.clientHeight)).observe(container);
  }
  const nodes = [...state.nodes.values()];
  const ids = new Set(nodes.map((node) => node.id));
  const links = state.links.filter((link) => ids.has(link.source?.id ?? link.source) && ids.has(link.target?.id ?? link.target));
  graph.graphData({ nodes, links });
  if (fit && nodes.length) fitCamera(nodes);
  const counts = (state.kinds || []).map((kind) => `${nodes.filter((n) => n.memory_type === kind).length} ${NAMES[kind]}`);
  $("#graph-counts").textContent = `${counts.join(" · ")} · ${links.length} edges${state.truncated ? " (newest shown)" : ""}`;
  container.dataset.nodes = String(nodes.length);
}

/** Look at the whole graph: its centre, from as far as its extent needs (the layout is the
 * server's, so the data alone says where everything is). */
function fitCamera(nodes) {
  const low = { x: Infinity, y: Infinity, z: Infinity };
  const high = { x: -Infinity, y: -Infinity, z: -Infinity };
  for (const node of nodes) {
    for (const axis of ["x", "y", "z"]) {
      low[axis] = Math.min(low[axis], node[axis]);
      high[axis] = Math.max(high[axis], node[axis]);
    }
  }
  const centre = { x: (low.x + high.x) / 2, y: (low.y + high.y) / 2, z: (low.z + high.z) / 2 };
  const extent = Math.max(high.x - low.x, high.y - low.y, high.z - low.z, 60);
  graph.cameraPosition({ x: centre.x, y: centre.y, z: high.z + extent * 1.4 }, centre, 0);
}

async function details(node) {
  const panel = $("#details");
  show("#details", el("p", { class: "note" }, "loading…"));
  try {
    const item = await api(DETAIL_PATHS[node.memory_type] + node.id);
    const facts = {
      type: NAMES[node.memory_type],
      ...item,
      strength: node.strength,
      access_count: node.access_count,
    };
    const parts = [el("h3", { style: `color:${COLORS[node.memory_type]}` }, node.label), keyValues(facts)];
    if (node.memory_type === "semantic") {
      parts.splice(1, 0, el("button", { type: "button", onclick: () => trace(node) }, "Trace spreading activation"));
    }
    panel.replaceChildren(...parts);
  } catch (error) {
    failure("#details", error);
  }
  graph.cameraPosition({ x: node.x * 1.6 + 40, y: node.y * 1.6 + 40, z: node.z * 1.6 + 40 }, node, 800);
}

async function trace(node) {
  try {
    const result = await api("/api/v1/viz/activation-trace", { method: "POST", body: { seeds: [node.id] } });
    state.lit = new Map(result.nodes.map((lit) => [lit.id, lit]));
    drawGraph();
    const rows = result.nodes.map((lit) => ({ ...lit }));
    show("#details", [
      el("h3", {}, `Activation from ${node.label}: ${result.nodes.length} lit in ${result.hops} hops`),
      table(rows, [
        ["hop", (r) => r.hop],
        ["entity", (r) => r.label],
        ["activation", (r) => r.activation],
      ]),
      el("button", { type: "button", onclick: () => (state.lit.clear(), drawGraph()) }, "Clear"),
    ]);
  } catch (error) {
    failure("#details", error);
  }
}

async function loadLearning() {
  try {
    const series = await api("/api/v1/viz/series", { params: { bucket: "hour", ...selection() } });
    const labels = series.times.map(time);
    const kinds = Object.keys(series.memory.total);
    const lines = kinds.map((kind) => ({ name: NAMES[kind], color: COLORS[kind], values: series.memory.total[kind] }));
    const recalls = kinds.map((kind) => ({ name: NAMES[kind], color: COLORS[kind], values: series.recalls.last_recalled[kind] }));
    const edges = series.strength.retrieval.edges;
    const bins = edges.slice(0, -1).map((edge, i) => `${edge}–${edges[i + 1]}`);
    const strength = kinds.map((kind) => ({ name: NAMES[kind], color: COLORS[kind], values: series.strength.retrieval.counts[kind] }));
    const weights = series.hebbian.weights;
    show("#learning", [
      lineChart("Memories in store", labels, lines),
      barChart("Last recalled", labels, recalls),
      barChart("Retrieval strength (ACT-R, now)", bins, strength, { edgeLabels: ["0", "1"] }),
      barChart(
        `Relation weights · ${series.hebbian.relations} relations, ${series.hebbian.activations_total} strengthenings`,
        weights.edges.slice(0, -1).map((edge, i) => `${edge}–${weights.edges[i + 1]}`),
        [{ name: "relations", color: "#9fa8da", values: weights.counts.relations }],
        { edgeLabels: ["0", "1"] },
      ),
      consolidation(series.consolidation, series.memory.archived),
    ]);
  } catch (error) {
    failure("#learning", error);
  }
}

function consolidation(runs, archived) {
  const kept = Object.entries(archived).map(([kind, count]) => `${count} ${NAMES[kind]}`).join(", ");
  if (!runs.available) return el("p", { class: "note off" }, `consolidation: not enabled · archived by decay: ${kept}`);
  const last = runs.last_result || {};
  return el(
    "div",
    {},
    el("h3", {}, `Consolidation: ${runs.runs} runs${runs.last_run_at ? `, last ${time(runs.last_run_at)}` : ""}`),
    keyValues({
      "episodes read": last.episodes,
      topics: last.topics?.length,
      "entities created": last.entities_created?.length,
      "relations created": last.relations_created,
      "skills created": last.skills_created?.length,
      "archived by decay": kept,
    }),
  );
}

async function loadGateway() {
  if (!state.routes.has("GET /api/v1/viz/usage") || !state.routes.has("GET /api/sessions")) {
    for (const target of ["#usage", "#sessions", "#requests"]) show(target, el("p", { class: "note off" }, "not enabled"));
    return;
  }
  try {
    const usage = await api("/api/v1/viz/usage", { params: { bucket: "hour" } });
    const labels = usage.times.map(time);
    show("#usage", [
      barChart("Tokens per hour", labels, [
        { name: "in", color: "#4fc3f7", values: usage.tokens_in },
        { name: "out", color: "#ffb74d", values: usage.tokens_out },
      ]),
      lineChart("Cost per hour (USD)", labels, [{ name: "cost", color: "#81c784", values: usage.cost_usd }]),
      table(usage.models, [
        ["model", (m) => m.model],
        ["requests", (m) => m.requests],
        ["tokens in", (m) => m.tokens_in],
        ["tokens out", (m) => m.tokens_out],
        ["cost USD", (m) => m.cost_usd],
      ], "no requests in the last 48 hours"),
    ]);
    show("#requests", table(usage.recent, [
      ["time", (r) => time(r.created_at)],
      ["model", (r) => (r.provider ? `${r.provider}/${r.model}` : r.model)],
      ["status", (r) => r.status],
      ["tokens in", (r) => r.tokens_in],
      ["tokens out", (r) => r.tokens_out],
      ["cost USD", (r) => r.cost_usd],
      ["latency ms", (r) => r.latency_ms],
      ["session", (r) => (r.session_id || "").slice(0, 8)],
    ], "no requests yet"));
  } catch (error) {
    failure("#usage", error);
  }
  try {
    const sessions = await api("/api/sessions", { params: { limit: 20 } });
    show("#sessions", table(sessions.items, [
      ["session", (s) => s.name || s.id.slice(0, 8)],
      ["active", (s) => s.active],
      ["requests", (s) => s.requests],
      ["tokens", (s) => s.tokens_in + s.tokens_out],
      ["cost USD", (s) => s.cost_usd],
      ["last used", (s) => time(s.last_used_at)],
    ], "no sessions yet"));
  } catch (error) {
    failure("#sessions", error);
  }
}

function loadOthers() {
  optional("#compaction", "GET /api/compaction/stats", keyValues);
  optional("#sanitizer", "GET /api/sanitizer/stats", keyValues);
  optional("#ratelimit", "GET /api/rate-limit", keyValues);
}

// -- live ------------------------------------------------------------------------------------

function feed(text) {
  const list = $("#feed");
  list.prepend(el("li", {}, el("time", {}, new Date().toISOString().slice(11, 19)), " ", text));
  while (list.children.length > 30) list.lastChild.remove();
}

function near(ids) {
  for (const id of ids) {
    const other = state.nodes.get(id);
    if (other) return other;
  }
  return { x: 0, y: 0, z: 0 };
}

function graphChanged(change) {
  const { action, memory_type: kind, ids } = change;
  if (action === "deleted") {
    for (const id of ids) state.nodes.delete(id);
    state.links = state.links.filter((link) => !ids.includes(link.id));
  }
  for (const node of change.nodes) {
    const links = state.links.filter((l) => l.source === node.id || l.target === node.id);
    const anchor = near(links.map((l) => (l.source === node.id ? l.target : l.source)));
    const old = state.nodes.get(node.id);
    state.nodes.set(node.id, {
      strength: 0,
      access_count: 0,
      ...old,
      ...node,
      x: old?.x ?? anchor.x + (Math.random() - 0.5) * 60,
      y: old?.y ?? anchor.y + (Math.random() - 0.5) * 60,
      z: old?.z ?? anchor.z + (Math.random() - 0.5) * 60,
    });
  }
  for (const edge of change.edges) state.links.push({ ...edge, activations: 0 });
  for (const [id, weight] of Object.entries(change.weights || {})) {
    const link = state.links.find((l) => l.id === id);
    if (link) link.weight = weight;
  }
  if (action === "recalled") {
    ids.forEach((id) => state.flashing.add(id));
    setTimeout(() => (ids.forEach((id) => state.flashing.delete(id)), graph?.nodeColor(nodeColor)), 1500);
    graph?.nodeColor(nodeColor);
  } else {
    drawGraph();
  }
  const labels = change.nodes.map((n) => n.label).join(", ");
  const what = change.edges.length ? "relation" : change.weights ? "Hebbian strengthening" : NAMES[kind] || kind;
  feed(`${action} ${what}${labels ? `: ${labels}` : ` (${ids.length})`}`);
}

let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    loadGateway();
    loadLearning();
    loadOthers();
  }, 800);
}

function connect() {
  const open = new Map();
  const status = () => {
    const up = [...open.values()].filter(Boolean).length;
    $("#live").textContent = up === open.size ? "live" : `${up}/${open.size} live`;
    $("#live").className = `badge ${up === open.size ? "on" : "off"}`;
  };
  const watch = (path, onEvent) => {
    open.set(path, false);
    state.sockets.push(channel(path, onEvent, (up) => (open.set(path, up), status())));
  };
  watch("/ws/viz", (event) => {
    if (event.type === "graph.changed") {
      graphChanged(event.data);
      refreshSoon();
    }
  });
  if (state.routes.has("GET /ws/learning")) {
    watch("/ws/learning", (event) => {
      if (event.type === "subscribed") return;
      feed(event.type.replaceAll(".", " ") + (event.data?.step ? `: ${event.data.step}` : ""));
      if (event.type.endsWith("finished")) refreshSoon();
    });
  }
  if (state.routes.has("GET /ws/events")) {
    watch("/ws/events", (event) => {
      if (event.type === "subscribed") return;
      feed(`${event.type.replaceAll(".", " ")}${event.data?.model ? `: ${event.data.model}` : ""}`);
      refreshSoon();
    });
  }
  status();
}

function stop() {
  state.sockets.forEach((socket) => socket.close());
  state.sockets = [];
  $("#live").textContent = "offline";
  $("#live").className = "badge off";
}

async function start() {
  stop();
  if (auth.required && !auth.key) {
    note("this server needs an API key", true);
    $("#key-input").focus();
    return;
  }
  try {
    state.routes = await mountedRoutes();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      note(`key refused: ${error.message}`, true);
      return;
    }
    note(String(error.message || error), true);
    return;
  }
  note(auth.key ? "using your key" : "no key: open to local clients");
  connect();
  await Promise.all([loadGraph(), loadLearning(), loadGateway(), loadOthers()]);
  document.body.dataset.ready = "true";
}

$("#graph-reload").addEventListener("click", () => (loadGraph(), loadLearning()));
start();
