/**
 * The wirechat client: one WebSocket that reconnects by itself, resumes from
 * the last message id it saw, rejoins its rooms, drops duplicates by id, and
 * turns every send into a Promise of its ack. Plain WebSocket API, not Eden's
 * (Eden's never reconnects and rewrites date-like and numeric strings).
 */
import { isValidName, LIMITS, type ServerFrame } from "../protocol.js";
import type { ChatClient, ChatClientOptions, ChatEvents, SendOptions } from "./api.js";
import { backoffDelay } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { ChatClientError } from "./errors.js";
import { createHttp } from "./http.js";
import { newCid, RecentIds, socketUrl } from "./util.js";
import type { AckFrame, ChatMessage, ChatStatus, MessageAck, OutgoingFrame, RoomAck, WebSocketConstructor, WebSocketLike } from "./types.js";

interface Pending {
  frame: OutgoingFrame;
  resolve(ack: AckFrame): void;
  reject(err: ChatClientError): void;
  promise: Promise<AckFrame>;
  /** The ack deadline of the frame's last write. */
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * Connects to a wirechat server and keeps connected until `close()`.
 * Throws `ChatClientError` at once for an invalid username or room name,
 * which no reconnect could fix.
 */
export function createChatClient(opts: ChatClientOptions): ChatClient {
  if (!isValidName(opts.username)) {
    throw new ChatClientError("invalid_username", `Invalid username ${JSON.stringify(opts.username)}: use 1 to 64 letters, digits, _, - or .`);
  }
  const bad = opts.rooms?.find((r) => !isValidName(r));
  if (bad !== undefined) throw new ChatClientError("invalid_room", `Invalid room name ${JSON.stringify(bad)}`);
  // The server refuses more before the upgrade, which no reconnect could get past.
  if (new Set(opts.rooms).size > LIMITS.roomsMax) throw new ChatClientError("invalid_room", `Too many rooms: at most ${LIMITS.roomsMax}`);
  const urls = socketUrl(opts.url, opts.username);
  const http = createHttp(urls.http, opts.fetch);
  const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WS) throw new TypeError("No global WebSocket here: pass one as the WebSocket option (e.g. from the ws package)");
  const ackTimeoutMs = opts.ackTimeoutMs ?? 10_000;

  const events = new Emitter<ChatEvents>();
  const pending = new Map<string, Pending>(); // insertion order = the order the app sent in
  const seen = new RecentIds(10_000);
  const rooms = new Set<string>(opts.rooms);
  let online = new Set<string>();
  let lastId = opts.since;
  let status: ChatStatus = "connecting";
  let ws: WebSocketLike | undefined;
  let welcomed = false;
  let attempt = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let connectedSince: number | undefined; // the `since` the current socket asked for
  let replayLeft = 0; // replayed frames of this connection still to come
  let replayUpTo: number | undefined; // where to resume from once they have

  const settleReplay = () => {
    if (replayUpTo !== undefined) lastId = Math.max(lastId ?? 0, replayUpTo);
    replayUpTo = undefined;
  };

  const setStatus = (s: ChatStatus) => {
    if (s !== status) events.emit("status", (status = s));
  };

  const write = (p: Pending) => {
    try {
      ws!.send(JSON.stringify(p.frame));
    } catch {
      // The socket is going away; its close event puts the frame back in line.
      return;
    }
    clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      pending.delete(p.frame.cid);
      p.reject(new ChatClientError("timeout", `No ack within ${ackTimeoutMs} ms`, p.frame.cid));
    }, ackTimeoutMs);
  };

  const submit = <A extends AckFrame>(frame: OutgoingFrame): Promise<A> => {
    if (status === "closed") return Promise.reject(new ChatClientError("closed", "The client is closed", frame.cid));
    // A second send with a cid still pending is the same send: share its answer.
    const same = pending.get(frame.cid);
    if (same) return same.promise as Promise<A>;
    const p = { frame } as Pending;
    p.promise = new Promise<AckFrame>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    pending.set(frame.cid, p);
    // Before the welcome the frame waits; the welcome writes the queue in order.
    if (welcomed) write(p);
    return p.promise as Promise<A>;
  };

  const onFrame = (raw: string) => {
    let f: ServerFrame;
    try {
      f = JSON.parse(raw);
    } catch {
      return;
    }
    switch (f.type) {
      case "welcome": {
        welcomed = true;
        attempt = 0;
        // A connect without `since` replays the inbox and recent broadcasts,
        // all at or below `lastId`: resume from there only once every one of
        // them has arrived, or a drop mid-replay would skip the rest.
        replayLeft = f.replay;
        replayUpTo = connectedSince === undefined ? f.lastId : undefined;
        if (replayLeft === 0) settleReplay();
        online = new Set(f.online);
        setStatus("open");
        events.emit("welcome", f);
        if (!f.resumed) events.emit("error", new ChatClientError("resume_incomplete", "Some messages sent while disconnected could not be replayed"));
        for (const p of pending.values()) write(p);
        return;
      }
      case "message": {
        const fresh = !seen.has(f.id);
        if (fresh) {
          seen.add(f.id);
          lastId = Math.max(lastId ?? 0, f.id);
        }
        if (replayLeft > 0 && --replayLeft === 0) settleReplay();
        if (fresh) events.emit("message", f as ChatMessage);
        return;
      }
      case "presence":
        if (f.event === "join") online.add(f.user);
        else online.delete(f.user);
        return events.emit("presence", f);
      case "ack": {
        const p = pending.get(f.cid);
        if (!p) return; // timed out earlier, or a retry's second answer
        pending.delete(f.cid);
        clearTimeout(p.timer);
        return p.resolve(f);
      }
      case "error": {
        const err = new ChatClientError(f.code, f.message, f.cid);
        const p = f.cid === undefined ? undefined : pending.get(f.cid);
        if (!p) return events.emit("error", err);
        pending.delete(f.cid!);
        clearTimeout(p.timer);
        if (p.frame.type === "join") rooms.delete(p.frame.room);
        return p.reject(err);
      }
    }
  };

  const connect = () => {
    retry = undefined;
    welcomed = false;
    replayLeft = 0;
    replayUpTo = undefined;
    connectedSince = lastId;
    const sock = new WS(urls.ws({ since: lastId, rooms: [...rooms], token: opts.token }));
    ws = sock;
    sock.onmessage = (e: { data: unknown }) => {
      if (ws === sock) onFrame(String(e.data));
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = undefined;
      welcomed = false;
      // What was on the wire is written again, with the same cid, after the
      // next welcome: the server answers a repeat with the first ack.
      for (const p of pending.values()) clearTimeout(p.timer);
      if (status === "closed") return;
      setStatus("reconnecting");
      retry = setTimeout(connect, backoffDelay(attempt++, opts.backoff));
    };
    sock.onerror = () => {}; // a close event follows; it decides
  };

  const roomFrame = (type: "join" | "leave", room: string, o?: SendOptions): Promise<RoomAck> => {
    if (!isValidName(room)) return Promise.reject(new ChatClientError("invalid_room", `Invalid room name ${JSON.stringify(room)}`));
    if (type === "join" && !rooms.has(room) && rooms.size >= LIMITS.roomsMax) {
      return Promise.reject(new ChatClientError("invalid_room", `Cannot join "${room}": at most ${LIMITS.roomsMax} rooms`));
    }
    if (type === "join") rooms.add(room);
    else rooms.delete(room);
    return submit<RoomAck>({ type, room, cid: o?.cid ?? newCid() });
  };

  connect();
  return {
    ...http,
    username: opts.username,
    get status() { return status; },
    get lastId() { return lastId; },
    get online() { return [...online].sort(); },
    get rooms() { return [...rooms]; },
    send: {
      broadcast: (text, o) => submit<MessageAck>({ type: "broadcast", text, cid: o?.cid ?? newCid() }),
      direct: (to, text, o) => submit<MessageAck>({ type: "direct", to, text, cid: o?.cid ?? newCid() }),
      room: (room, text, o) => submit<MessageAck>({ type: "room", room, text, cid: o?.cid ?? newCid() }),
    },
    join: (room, o) => roomFrame("join", room, o),
    leave: (room, o) => roomFrame("leave", room, o),
    on: (event, handler) => events.on(event, handler),
    close() {
      if (status === "closed") return;
      setStatus("closed");
      clearTimeout(retry);
      ws?.close(1000, "client closed");
      ws = undefined;
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(new ChatClientError("closed", "The client was closed before the ack", p.frame.cid));
      }
      pending.clear();
    },
  };
}
