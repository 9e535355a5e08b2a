/**
 * Baseline: the same chat job on Node with the `ws` package (run with node).
 * Sockets per user live in a Map of Sets; a broadcast loops over every
 * client; each message is serialised once and the string sent to each.
 * Env: PORT (0 = any free port). Listens on 127.0.0.1 only.
 */
import { WebSocketServer } from "ws";

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const byUser = new Map();
let nextId = 0;

const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(process.env.PORT ?? 0), perMessageDeflate: false });

wss.on("connection", (ws, req) => {
  const path = (req.url ?? "").split("?")[0];
  const user = path.startsWith("/ws/") ? path.slice(4) : "";
  if (!NAME.test(user)) return ws.close(1008, "bad username");
  let set = byUser.get(user);
  if (!set) byUser.set(user, (set = new Set()));
  set.add(ws);
  ws.on("close", () => {
    set.delete(ws);
    if (set.size === 0) byUser.delete(user);
  });
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    let f;
    try {
      f = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (typeof f.text !== "string") return;
    if (f.type === "broadcast") {
      const frame = JSON.stringify({ type: "message", id: ++nextId, kind: "broadcast", from: user, text: f.text, at: Date.now() });
      for (const c of wss.clients) c.send(frame);
    } else if (f.type === "direct" && typeof f.to === "string" && NAME.test(f.to)) {
      const frame = JSON.stringify({ type: "message", id: ++nextId, kind: "direct", from: user, to: f.to, text: f.text, at: Date.now() });
      for (const c of byUser.get(f.to) ?? []) c.send(frame);
      if (f.to !== user) for (const c of set) c.send(frame);
    }
  });
});

wss.on("listening", () => console.log(`node-ws listening on http://127.0.0.1:${wss.address().port}`));
