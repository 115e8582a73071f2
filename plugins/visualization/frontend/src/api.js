// The server's API as the dashboard uses it: the key (kept in this browser's localStorage) goes
// with every request and WebSocket, refusals become errors the panels show.

const KEY = "mnemogate.key";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const auth = {
  get key() {
    return localStorage.getItem(KEY) || "";
  },
  set key(value) {
    if (value) localStorage.setItem(KEY, value);
    else localStorage.removeItem(KEY);
  },
  required: document.querySelector('meta[name="mnemogate-keys"]')?.content === "required",
};

export async function api(path, { method = "GET", body, params } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    for (const one of [].concat(value)) if (one !== undefined && one !== null && one !== "") url.searchParams.append(name, one);
  }
  const headers = {};
  if (auth.key) headers.Authorization = `Bearer ${auth.key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data?.error?.message || response.statusText);
  return data;
}

/** Every mounted route ("GET /api/rate-limit", ...): panels of plugins that are off say so. */
export async function mountedRoutes() {
  const routes = new Set();
  let cursor = null;
  do {
    const page = await api("/api/v1/routes", { params: { limit: 500, cursor } });
    for (const route of page.items) routes.add(`${route.method} ${route.path}`);
    cursor = page.next_cursor;
  } while (cursor);
  return routes;
}

/** A WebSocket to a channel that reconnects by itself; ``onState(open)`` follows it. */
export function channel(path, onEvent, onState) {
  let socket = null;
  let delay = 500;
  let stopped = false;
  const open = () => {
    const url = new URL(path, location.origin);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (auth.key) url.searchParams.set("api_key", auth.key);
    socket = new WebSocket(url);
    socket.onopen = () => {
      delay = 500;
      onState(true);
    };
    socket.onmessage = (message) => onEvent(JSON.parse(message.data));
    socket.onclose = () => {
      onState(false);
      if (!stopped) setTimeout(open, (delay = Math.min(delay * 2, 10000)));
    };
  };
  open();
  return {
    close() {
      stopped = true;
      socket?.close();
    },
  };
}
