// Small SVG charts and tables: enough for counts over time and distributions, no library.

const SVG = "http://www.w3.org/2000/svg";
const W = 360;
const H = 140;
const PAD = { left: 38, right: 8, top: 8, bottom: 20 };

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

export function fmt(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return value.toLocaleString("en");
    return Math.abs(value) < 0.01 && value !== 0 ? value.toExponential(2) : value.toFixed(3).replace(/\.?0+$/, "");
  }
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

export function time(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().slice(0, 16).replace("T", " ");
}

function frame(title, max, labels) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title });
  const innerH = H - PAD.top - PAD.bottom;
  for (const share of [0, 0.5, 1]) {
    const y = PAD.top + innerH * (1 - share);
    root.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: PAD.left - 4, y: y + 4, class: "axis", "text-anchor": "end" }, fmt(+(max * share).toPrecision(3))));
  }
  if (labels.length) {
    root.append(svg("text", { x: PAD.left, y: H - 4, class: "axis" }, labels[0]));
    root.append(svg("text", { x: W - PAD.right, y: H - 4, class: "axis", "text-anchor": "end" }, labels[labels.length - 1]));
  }
  return root;
}

function legend(series) {
  return el("div", { class: "legend" }, series.map((s) => el("span", { style: `--c:${s.color}` }, s.name)));
}

/** Lines over time: ``series`` is [{name, color, values}] over ``labels``. */
export function lineChart(title, labels, series) {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const root = frame(title, max, labels);
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const step = labels.length > 1 ? innerW / (labels.length - 1) : 0;
  for (const s of series) {
    const points = s.values.map((v, i) => `${PAD.left + i * step},${PAD.top + innerH * (1 - v / max)}`).join(" ");
    root.append(svg("polyline", { points, fill: "none", stroke: s.color, "stroke-width": 2 }));
  }
  return el("figure", {}, el("figcaption", {}, title), root, legend(series));
}

/** Bars, grouped: ``series`` is [{name, color, values}] over ``labels``. */
export function barChart(title, labels, series, { edgeLabels } = {}) {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const root = frame(title, max, edgeLabels || labels);
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const slot = innerW / Math.max(labels.length, 1);
  const width = Math.max((slot * 0.8) / series.length, 1);
  series.forEach((s, k) =>
    s.values.forEach((v, i) => {
      const height = (innerH * v) / max;
      const bar = svg("rect", {
        x: PAD.left + i * slot + slot * 0.1 + k * width,
        y: PAD.top + innerH - height,
        width,
        height,
        fill: s.color,
      });
      bar.append(svg("title", {}, `${labels[i]}: ${fmt(v)} ${s.name}`));
      root.append(bar);
    }),
  );
  return el("figure", {}, el("figcaption", {}, title), root, legend(series));
}

/** A table of rows (objects) with the given columns [[heading, row => value]]. */
export function table(rows, columns, empty = "nothing yet") {
  if (!rows.length) return el("p", { class: "note" }, empty);
  return el(
    "table",
    {},
    el("thead", {}, el("tr", {}, columns.map(([heading]) => el("th", {}, heading)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, columns.map(([, value]) => el("td", {}, fmt(value(row))))))),
  );
}

/** Any JSON object as nested key/value lists (for stats whose shape belongs to another plugin). */
export function keyValues(value, depth = 0) {
  if (value === null || typeof value !== "object") return el("span", {}, fmt(value));
  if (Array.isArray(value)) {
    if (!value.length) return el("span", { class: "note" }, "none");
    if (depth > 1 || value.some((v) => v === null || typeof v !== "object")) return el("span", {}, value.map(fmt).join(", "));
    const columns = [...new Set(value.flatMap((v) => Object.keys(v)))].slice(0, 8);
    return table(value.slice(0, 20), columns.map((c) => [c, (row) => (typeof row[c] === "object" && row[c] !== null ? JSON.stringify(row[c]) : row[c])]));
  }
  const entries = Object.entries(value);
  if (!entries.length) return el("span", { class: "note" }, "none");
  return el("dl", { class: "kv" }, entries.flatMap(([k, v]) => [el("dt", {}, k.replaceAll("_", " ")), el("dd", {}, keyValues(v, depth + 1))]));
}
