/**
 * Baseline: the same chat job on a bare `Bun.serve` with its native pub/sub
 * (topics "all" and "user:<name>"), no framework, no store. It is the bar
 * wirechat is held to: what Bun itself can do for this protocol.
 * Env: PORT (0 = any free port). Listens on 127.0.0.1 only.
 */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
let nextId = 0;

interface Data {
  user: string;
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
        // Bun's publish skips the sending socket; server.publish reaches all.
        server.publish("all", JSON.stringify({ type: "message", id: ++nextId, kind: "broadcast", from, text: f.text, at: Date.now() }));
      } else if (f.type === "direct" && typeof f.to === "string" && NAME.test(f.to)) {
        const frame = JSON.stringify({ type: "message", id: ++nextId, kind: "direct", from, to: f.to, text: f.text, at: Date.now() });
        server.publish(`user:${f.to}`, frame);
        if (f.to !== from) server.publish(`user:${from}`, frame);
      }
    },
  },
});

console.log(`raw-bun listening on http://127.0.0.1:${server.port}`);
