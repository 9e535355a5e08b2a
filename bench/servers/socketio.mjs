/**
 * Baseline: the same chat job on Socket.IO 4 (run with node), WebSocket
 * transport only. Each socket joins rooms "all" and "user:<name>"; a
 * broadcast is `io.to("all").emit`, a direct message goes to the target's
 * room and the sender's. The username comes from the handshake query.
 * Env: PORT (0 = any free port). Listens on 127.0.0.1 only.
 */
import { createServer } from "node:http";
import { Server } from "socket.io";

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
let nextId = 0;

const http = createServer();
const io = new Server(http, { transports: ["websocket"], perMessageDeflate: false, serveClient: false });

io.use((socket, next) => {
  const user = socket.handshake.query.username;
  if (typeof user !== "string" || !NAME.test(user)) return next(new Error("bad username"));
  socket.data.user = user;
  next();
});

io.on("connection", (socket) => {
  const user = socket.data.user;
  socket.join(["all", `user:${user}`]);
  socket.on("broadcast", (f) => {
    if (typeof f?.text !== "string") return;
    io.to("all").emit("message", { type: "message", id: ++nextId, kind: "broadcast", from: user, text: f.text, at: Date.now() });
  });
  socket.on("direct", (f) => {
    if (typeof f?.text !== "string" || typeof f.to !== "string" || !NAME.test(f.to)) return;
    const msg = { type: "message", id: ++nextId, kind: "direct", from: user, to: f.to, text: f.text, at: Date.now() };
    // One emit to both rooms: Socket.IO delivers once per socket even if it is in both.
    io.to([`user:${f.to}`, `user:${user}`]).emit("message", msg);
  });
});

http.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`socket.io listening on http://127.0.0.1:${http.address().port}`);
});
