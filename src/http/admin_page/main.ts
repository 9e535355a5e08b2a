/**
 * The admin page's script. Served transpiled, not bundled: it imports types
 * only. The token stays in this tab (sessionStorage) and goes out only as
 * `Authorization: Bearer` to the admin JSON routes; the page polls
 * `/admin/stats` and shows rates as differences between two polls.
 */
import type { AdminStatsBody } from "../admin";

type Stats = typeof AdminStatsBody.static;

const KEY = "wirechat-admin.token";
/** What the counters of `/admin/stats` are called on the page (as on /metrics). */
const LABELS: Record<string, string> = {
  accepted: "messages accepted",
  broadcast: "… broadcast",
  direct: "… direct",
  room: "… room",
  duplicates: "duplicates (retries)",
  acks: "acks",
  storeFailures: "store failures",
  framesIn: "frames in",
  framesOut: "frames out",
  bytesOut: "bytes out",
  badFrames: "bad frames",
  rateLimited: "rate limited",
  resumedFalse: "resumed: false",
  backpressureCloses: "backpressure closes",
  opened: "connections opened",
  closed: "connections closed",
};
const POLL_MS = 2000;

const el = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const loginForm = el<HTMLFormElement>("login");
const tokenInput = el<HTMLInputElement>("token");
const board = el("board");
const stateBadge = el("state");
const filter = el<HTMLInputElement>("filter");
const numbers = new Intl.NumberFormat();

let token = stored();
let previous: Stats | undefined;
let timer: ReturnType<typeof setTimeout> | undefined;
/** Numbers the polls: an answer that a newer poll overtook (the filter changed meanwhile) is dropped. */
let polls = 0;
/** What each section shows now: it is redrawn only when this changes (keeps focus and selection). */
const shown = new Map<string, string>();

function stored(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function api<T>(path: string, method: "GET" | "POST" = "GET"): Promise<T> {
  const res = await fetch(path, { method, headers: { authorization: `Bearer ${token}` }, cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, typeof body.message === "string" ? body.message : `HTTP ${res.status}`);
  return body as T;
}

function setState(state: "locked" | "live" | "failing", text: string) {
  stateBadge.dataset.state = state;
  stateBadge.textContent = text;
}

function lock(message = "") {
  token = null;
  previous = undefined;
  shown.clear();
  clearTimeout(timer);
  try {
    sessionStorage.removeItem(KEY);
  } catch {}
  board.hidden = true;
  loginForm.hidden = false;
  el("forget").hidden = true;
  el("login-error").textContent = message;
  setState("locked", "locked");
}

/** One poll; the next is scheduled when it is done, so two never overlap. */
async function refresh() {
  clearTimeout(timer);
  if (token === null) return;
  const poll = ++polls;
  try {
    const q = filter.value.trim();
    const stats = await api<Stats>(`/admin/stats${q ? `?user=${encodeURIComponent(q)}` : ""}`);
    if (poll !== polls || token === null) return;
    render(stats);
    previous = stats;
    setState("live", "live");
  } catch (err) {
    if (poll !== polls || token === null) return;
    if (err instanceof ApiError && (err.status === 401 || err.status === 404))
      return lock(err.status === 401 ? "Wrong token." : "The admin API is off on this server.");
    setState("failing", `cannot reach the server: ${(err as Error).message}`);
  }
  timer = setTimeout(refresh, POLL_MS);
}

/** A row of cells; a string is a text cell, a number a right-aligned count. */
function row(cells: (string | number | Node)[], attrs: Record<string, string> = {}): HTMLTableRowElement {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs)) tr.setAttribute(k, v);
  for (const c of cells) {
    const td = tr.insertCell();
    if (typeof c === "number") {
      td.className = "n";
      td.textContent = numbers.format(c);
    } else td.append(c);
  }
  return tr;
}

/** Replaces a section's content when what it shows changed. */
function redraw(id: string, key: unknown, make: () => Node[]) {
  const k = JSON.stringify(key);
  if (shown.get(id) === k) return;
  shown.set(id, k);
  const target = el(id);
  (target.tagName === "TABLE" ? (target as HTMLTableElement).tBodies[0]! : target).replaceChildren(...make());
}

const ago = (ms: number) =>
  ms < 60_000 ? `${Math.round(ms / 1000)} s` : ms < 3_600_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`;

function button(action: "disconnect" | "revoke", user: string, label: string): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.action = action;
  b.dataset.user = user;
  b.textContent = label;
  if (action === "revoke") b.className = "danger";
  return b;
}

function render(s: Stats) {
  const dt = previous ? (s.at - previous.at) / 1000 : 0;
  redraw("node", [s.connections, s.usersOnline, Math.round(s.uptimeMs / 60_000), Math.round(s.memoryBytes / 2 ** 20)], () =>
    [
      ["connections", numbers.format(s.connections)],
      ["users online here", numbers.format(s.usersOnline.node)],
      ["users online, every node", numbers.format(s.usersOnline.cluster)],
      ["up for", ago(s.uptimeMs)],
      ["memory (RSS)", `${numbers.format(Math.round(s.memoryBytes / 2 ** 20))} MiB`],
    ].flatMap(([term, value]) => {
      const dtEl = document.createElement("dt");
      const ddEl = document.createElement("dd");
      dtEl.textContent = term!;
      ddEl.textContent = value!;
      return [dtEl, ddEl];
    }),
  );
  const counters: [string, number, number | undefined][] = [
    ...Object.entries(s.totals).map(([k, v]): [string, number, number | undefined] => [LABELS[k] ?? k, v, previous?.totals[k]]),
    ...Object.entries(s.refused).map(([k, v]): [string, number, number | undefined] => [
      `connects refused: ${k}`,
      v,
      previous ? (previous.refused[k] ?? 0) : undefined,
    ]),
  ];
  const rates = counters.map(([name, v, before]) => [name, v, before === undefined || dt <= 0 ? "–" : (Math.max(0, v - before) / dt).toFixed(1)] as const);
  redraw("rates", rates, () => rates.map(([name, v, rate]) => row([name, v, rate])));
  const now = s.at;
  redraw("connections", [s.list, Math.floor(now / 10_000)], () => {
    if (s.list.length === 0) return [row([filter.value ? "no connection of such a user" : "no connections"])];
    return s.list.map((c) => {
      const actions = document.createElement("span");
      actions.append(button("disconnect", c.user, "Disconnect"), " ", button("revoke", c.user, "Revoke tokens"));
      const tr = row([c.user, `${new Date(c.since).toLocaleTimeString()} (${ago(now - c.since)})`, c.rooms.join(", ")], { "data-user": c.user });
      const td = tr.insertCell();
      td.className = "actions";
      td.append(actions);
      return tr;
    });
  });
  // Cluster mode: each node as it last reported itself (this one first).
  redraw(
    "nodes",
    s.nodes.map((n) => [n.node, n.connections, n.users, n.accepted]),
    () => s.nodes.map((n) => row([n.self ? `${n.node} (this node)` : n.node, n.connections, n.users, n.accepted], { "data-node": n.node })),
  );
  redraw("rooms", s.rooms, () => (s.rooms.length ? s.rooms.map((r) => row([r.room, r.members, r.sockets])) : [row(["no rooms"])]));
  redraw("errors", s.errors, () =>
    (s.errors.length ? [...s.errors].reverse() : [{ time: "", msg: "none" }]).map((e) => {
      const li = document.createElement("li");
      const when = document.createElement("span");
      when.className = "muted";
      when.textContent = e.time ? `${e.time} ` : "";
      li.append(when, e.msg, e.fields ? ` ${JSON.stringify(e.fields)}` : "");
      return li;
    }),
  );
}

loginForm.addEventListener("submit", (e) => {
  e.preventDefault();
  token = tokenInput.value.trim();
  tokenInput.value = "";
  try {
    sessionStorage.setItem(KEY, token);
  } catch {}
  show();
});

el("forget").addEventListener("click", () => lock());
filter.addEventListener("input", () => void refresh());

el("connections").addEventListener("click", async (e) => {
  const b = (e.target as Element).closest<HTMLButtonElement>("button[data-action]");
  if (!b) return;
  const { action, user } = b.dataset as { action: "disconnect" | "revoke"; user: string };
  if (action === "revoke" && !confirm(`Revoke every token of ${user}? They must log in again.`)) return;
  const notice = el("notice");
  b.disabled = true;
  try {
    const r = await api<{ user: string; closed: number }>(`/admin/users/${encodeURIComponent(user)}/${action}`, "POST");
    notice.className = "";
    notice.textContent = `${action === "revoke" ? "Revoked the tokens of" : "Disconnected"} ${r.user}: ${r.closed} connection${r.closed === 1 ? "" : "s"} closed.`;
  } catch (err) {
    notice.className = "bad";
    notice.textContent = `Could not ${action} ${user}: ${(err as Error).message}`;
  } finally {
    b.disabled = false;
  }
  await refresh();
});

function show() {
  loginForm.hidden = true;
  board.hidden = false;
  el("forget").hidden = false;
  el("login-error").textContent = "";
  void refresh();
}

if (token) show();
