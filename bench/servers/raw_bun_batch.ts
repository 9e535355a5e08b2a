/**
 * Ceiling for coalesced delivery: raw_bun.ts changed only in how it sends.
 * Everything published to a topic within one turn of the event loop goes
 * out as one frame, a JSON array of the frames in publish order, encoded once
 * per topic (what wirechat's `?batch=1` does per commit batch, without a
 * store or a framework). Every client of this server gets arrays.
 * Env: PORT (0 = any free port). Listens on 127.0.0.1 only.
 */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
let nextId = 0;

interface Data {
  user: string;
}

/** Encoded frames per topic, waiting for the end of this turn. */
const pending = new Map<string, string[]>();
let scheduled = false;

function flush() {
  scheduled = false;
  for (const [topic, frames] of pending) server.publish(topic, `[${frames.join(",")}]`);
  pending.clear();
}

function queue(topic: string, frame: string) {
  const list = pending.get(topic);
  if (list) list.push(frame);
  else pending.set(topic, [frame]);
  if (!scheduled) {
    scheduled = true;
    // After the I/O callbacks of this turn: every message read in it joins the batch.
    setImmediate(flush);
  }
}

const server = Bun.serve<Data>({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch(req, srv) {
    const path = new URL(req.url).pathname;
    const user = path.startsWith("/ws/") ? path.slice(4) : "";
    if (!NAME.test(user)) return new Response("bad username", { status: 400 });
    if (srv.upgrade(req, { data: { user } })) return undefined;
    return new Response("upgrade required", { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    open(ws) {
      ws.subscribe("all");
      ws.subscribe(`user:${ws.data.user}`);
    },
    message(ws, raw) {
      if (typeof raw !== "string") return;
      let f: { type?: unknown; to?: unknown; text?: unknown };
      try {
        f = JSON.parse(raw);
      } catch {
        return;
      }
      if (typeof f.text !== "string") return;
      const from = ws.data.user;
      if (f.type === "broadcast") {
        queue("all", JSON.stringify({ type: "message", id: ++nextId, kind: "broadcast", from, text: f.text, at: Date.now() }));
      } else if (f.type === "direct" && typeof f.to === "string" && NAME.test(f.to)) {
        const frame = JSON.stringify({ type: "message", id: ++nextId, kind: "direct", from, to: f.to, text: f.text, at: Date.now() });
        queue(`user:${f.to}`, frame);
        if (f.to !== from) queue(`user:${from}`, frame);
      }
    },
  },
});

console.log(`raw-bun-batch listening on http://127.0.0.1:${server.port}`);
// A module, not a script: its names stay its own.
export {};
