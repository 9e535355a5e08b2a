/**
 * Baseline: the same chat job on a bare `Bun.serve` with its native pub/sub
 * (topics "all" and "user:<name>"), no framework, no store. It is the bar
 * wirechat is held to: what Bun itself can do for this protocol.
 *
 * With BATCH=1 it changes only how it sends: everything published to a topic
 * within one turn of the event loop goes out as one frame, a JSON array of
 * the frames in publish order, joined once per topic (what wirechat's
 * `?batch=1` does per commit batch, without a store or a framework): the
 * ceiling of coalescing. Every client then gets arrays.
 * Env: PORT (0 = any free port), BATCH. Listens on 127.0.0.1 only.
 */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
let nextId = 0;

interface Data {
  user: string;
}

/** Encoded frames per topic, waiting for the end of this turn (BATCH=1). */
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

// ws.publish would skip the sending socket; server.publish reaches all.
const send: (topic: string, frame: string) => void = process.env.BATCH === "1" ? queue : (topic, frame) => server.publish(topic, frame);

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
        send("all", JSON.stringify({ type: "message", id: ++nextId, kind: "broadcast", from, text: f.text, at: Date.now() }));
      } else if (f.type === "direct" && typeof f.to === "string" && NAME.test(f.to)) {
        const frame = JSON.stringify({ type: "message", id: ++nextId, kind: "direct", from, to: f.to, text: f.text, at: Date.now() });
        send(`user:${f.to}`, frame);
        if (f.to !== from) send(`user:${from}`, frame);
      }
    },
  },
});

console.log(`raw-bun${process.env.BATCH === "1" ? "-batch" : ""} listening on http://127.0.0.1:${server.port}`);
