/**
 * The wirechat client: one WebSocket that reconnects by itself, resumes from
 * the last message id it saw, rejoins its rooms, drops duplicates by id,
 * turns every send into a Promise of its ack, and keeps its token fresh.
 * Plain WebSocket API, not Eden's (Eden's never reconnects and rewrites
 * date-like and numeric strings).
 */
import { BEARER_PREFIX, CLOSE, isValidName, LIMITS, SUBPROTOCOL } from "../protocol/limits.js";
import type { AuthFrame, ReadFrame, ReceivedFrame, ServerFrame, TypingFrame } from "../protocol.js";
import type { ChatClient, ChatClientOptions, ChatEvents, SendOptions } from "./api.js";
import { backoffDelay } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { ChatClientError } from "./errors.js";
import { createHttp } from "./http.js";
import { refreshDelay } from "./jwt.js";
import { Outbox } from "./outbox.js";
import { isFatal, TokenSource } from "./token.js";
import { UnreadTracker } from "./unread.js";
import { newCid, RecentIds, socketUrl } from "./util.js";
import type {
  ChatMessage,
  ChatStatus,
  ConversationKey,
  MessageAck,
  OutgoingFrame,
  RoomAck,
  UnackedFrame,
  WatchAck,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";

/** One frame of the server's (not a batch of them). */
type OneFrame = Exclude<ServerFrame, readonly unknown[]>;

/** WebSocket.OPEN: not read from the global, which Node 20 lacks. */
const OPEN = 1;
/** A refresh the server refused, or whose token could not be had, is tried again this often at most. */
const REFRESH_RETRY_MS = 10_000;
/** `received` goes out at most this often, unless RECEIVED_EVERY messages are waiting for it. */
const RECEIVED_MS = 1000;
const RECEIVED_EVERY = 50;
/** Reads waiting for a connection: the newest this many. */
const PENDING_READS_MAX = 100;

/**
 * Connects to a wirechat server and keeps connected until `close()`, or
 * until the server says this client may not (close 4003, or 4001 with a
 * fixed token that cannot be renewed). Throws `ChatClientError` at once for
 * an invalid username or room name, which no reconnect could fix.
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
  const tokens = new TokenSource(opts.token);
  const unread = new UnreadTracker(opts.username, (u) => events.emit("unread", u));
  const http = createHttp(
    urls.http,
    opts.fetch,
    () => tokens.forHttp(),
    (conv, readId) => unread.read(conv, readId),
  );
  const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WS) throw new TypeError("No global WebSocket here: pass one as the WebSocket option (e.g. from the ws package)");

  const events = new Emitter<ChatEvents>();
  const rooms = new Set<string>(opts.rooms);
  const outbox = new Outbox({
    ackTimeoutMs: opts.ackTimeoutMs ?? 10_000,
    rateLimitRetries: opts.rateLimitRetries ?? 5,
    onRefused: (frame) => {
      if (frame.type === "join") rooms.delete(frame.room);
    },
  });
  const seen = new RecentIds(10_000);
  let online = new Set<string>();
  let onlineCount = 0;
  const watched = new Set<string>();
  let epoch: string | undefined;
  let lastId = opts.since;
  let status: ChatStatus = "connecting";
  let ws: WebSocketLike | undefined;
  let attempt = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  let authCid: string | undefined; // the auth frame awaiting its ack
  let connectedSince: number | undefined; // the `since` the current socket asked for
  let replayLeft = 0; // replayed frames of this connection still to come
  let replayUpTo: number | undefined; // where to resume from once they have
  // `received`: the newest id this connection processed, the newest it reported, and how many since.
  let processed = 0;
  let reported = 0;
  let unreported = 0;
  let reportedAt = 0;
  let reportTimer: ReturnType<typeof setTimeout> | undefined;
  const pendingReads = new Set<number>(); // read frames for the next connection
  const typedAt = new Map<ConversationKey, number>();

  /**
   * Writes `data` while `sock` is open; false otherwise. A socket closing
   * (the server's close frame arrived, its close event not yet) must not be
   * written to: browsers log an error for it instead of throwing.
   */
  const write = (sock: WebSocketLike, data: string): boolean => {
    if (sock.readyState !== OPEN) return false;
    try {
      sock.send(data);
      return true;
    } catch {
      return false; // the socket is going away
    }
  };
  /** Writes a frame that has no ack on the current connection, once it is live; false when there is none. */
  const sendUnacked = (frame: UnackedFrame): boolean => ws !== undefined && status === "open" && write(ws, JSON.stringify(frame));

  /** Tells the server what this connection has processed: its inbox cursor and the senders' `delivered` receipts follow. */
  const report = () => {
    clearTimeout(reportTimer);
    reportTimer = undefined;
    if (processed <= reported) return;
    const frame: ReceivedFrame = { type: "received", id: processed };
    if (!sendUnacked(frame)) return;
    reported = processed;
    unreported = 0;
    reportedAt = Date.now();
  };
  const noteProcessed = (id: number) => {
    processed = Math.max(processed, id);
    if (++unreported >= RECEIVED_EVERY) return report();
    // Batched: what arrives within the same second goes in one frame.
    reportTimer ??= setTimeout(report, Math.max(0, reportedAt + RECEIVED_MS - Date.now()));
  };

  const settleReplay = () => {
    if (replayUpTo !== undefined) lastId = Math.max(lastId ?? 0, replayUpTo);
    replayUpTo = undefined;
  };
  /** The welcome's replay has all arrived: say so at once. */
  const replayDone = () => {
    settleReplay();
    report();
  };

  const setStatus = (s: ChatStatus) => {
    if (s !== status) events.emit("status", (status = s));
  };

  /** Stops for good: what is pending rejects with `err` (a close by the app passes none). */
  const shutdown = (err?: ChatClientError) => {
    if (status === "closed") return;
    clearTimeout(retry);
    clearTimeout(refreshTimer);
    report(); // what this connection processed, before it goes
    clearTimeout(reportTimer);
    const sock = ws;
    ws = undefined;
    outbox.detach();
    outbox.rejectAll((cid) => err ?? new ChatClientError("closed", "The client was closed before the ack", cid));
    setStatus("closed");
    sock?.close(1000, "client closed");
    if (err) events.emit("error", err);
  };

  const reconnectLater = () => {
    setStatus("reconnecting");
    retry = setTimeout(connect, backoffDelay(attempt++, opts.backoff));
  };

  /** Sends a fresh token on the open connection before the current one expires. */
  const scheduleRefresh = (delay = tokens.current === undefined ? undefined : refreshDelay(tokens.current, Date.now(), tokens.obtainedAt)) => {
    clearTimeout(refreshTimer);
    if (!tokens.refreshable || delay === undefined) return;
    refreshTimer = setTimeout(() => void refreshNow(), delay);
  };
  const retryRefresh = (ms = REFRESH_RETRY_MS) => {
    // Until the server closes the connection with 4001; the reconnect then gets a token of its own.
    scheduleRefresh(Math.min(ms, REFRESH_RETRY_MS));
  };
  const refreshNow = async () => {
    const sock = ws;
    if (!sock || status !== "open") return; // a connect under way gets a fresh token anyway
    let token: string | undefined;
    try {
      token = await tokens.next();
    } catch (err) {
      if (isFatal(err)) return shutdown(err);
      events.emit("error", tokenFailed(err));
      return retryRefresh();
    }
    if (ws !== sock || status !== "open" || token === undefined) return;
    const frame: AuthFrame = { type: "auth", token, cid: newCid() };
    authCid = frame.cid;
    // Not written when the socket is going away: the reconnect authenticates afresh.
    write(sock, JSON.stringify(frame));
  };

  const onFrame = (raw: string) => {
    let f: ServerFrame;
    try {
      f = JSON.parse(raw);
    } catch {
      return;
    }
    // A batch (several frames in one) is handled frame by frame, in order.
    if (Array.isArray(f)) {
      for (const one of f as readonly OneFrame[]) onOne(one);
    } else onOne(f as OneFrame);
  };

  const onOne = (f: OneFrame) => {
    switch (f.type) {
      case "welcome": {
        attempt = 0;
        // A connect without `since` replays the inbox and recent broadcasts,
        // all at or below `lastId`: resume from there only once every one of
        // them has arrived, or a drop mid-replay would skip the rest.
        replayLeft = f.replay;
        replayUpTo = connectedSince === undefined ? f.lastId : undefined;
        if (replayLeft === 0) settleReplay();
        processed = reported = unreported = 0;
        online = new Set(f.online ?? []);
        onlineCount = f.onlineCount;
        // Ids of another epoch mean nothing to this store (the server said resumed:false).
        if (epoch !== undefined && epoch !== f.epoch) {
          // Ids of another store: forget them, and resume from this store's replay, not the old lastId.
          seen.clear();
          lastId = undefined;
          replayUpTo = f.lastId;
          if (replayLeft === 0) settleReplay();
        }
        epoch = f.epoch;
        setStatus("open");
        events.emit("welcome", f);
        unread.welcome(f.unread, f.lastId);
        if (!f.resumed) events.emit("error", new ChatClientError("resume_incomplete", "Some messages sent while disconnected could not be replayed"));
        const sock = ws;
        if (!sock || status !== "open") return; // an event handler closed the client
        outbox.attach((data) => write(sock, data));
        for (const id of pendingReads) {
          const frame: ReadFrame = { type: "read", id };
          if (sendUnacked(frame)) pendingReads.delete(id);
        }
        // Presence of watched users is per connection: ask again.
        if (watched.size > 0) void submit<WatchAck>({ type: "watch", users: [...watched], cid: newCid() }).then(noteWatch, () => {});
        scheduleRefresh();
        return;
      }
      case "message": {
        const fresh = !seen.has(f.id);
        if (fresh) {
          seen.add(f.id);
          lastId = Math.max(lastId ?? 0, f.id);
        }
        const replayed = replayLeft > 0;
        const done = replayed && --replayLeft === 0;
        if (done) settleReplay();
        if (fresh) {
          const m = f as ChatMessage;
          unread.message(m);
          events.emit("message", { ...m, replayed });
        }
        // Processed once the app's handlers ran.
        if (ws && status === "open") {
          noteProcessed(f.id);
          if (done) replayDone();
        }
        return;
      }
      case "presence":
        // Room presence says who is in a room, not who is online.
        if (f.room === undefined) {
          for (const u of f.users ?? (f.user === undefined ? [] : [f.user])) {
            if (f.event === "join" ? !online.has(u) : online.has(u)) onlineCount += f.event === "join" ? 1 : -1;
            if (f.event === "join") online.add(u);
            else online.delete(u);
          }
        }
        return events.emit("presence", f);
      case "receipt":
        // This user's reads, from any device: the unread counts follow.
        if (f.event === "read" && f.by === opts.username && f.conversation !== undefined) unread.read(f.conversation, f.id);
        return events.emit("receipt", f);
      case "typing":
        if (f.from !== opts.username) events.emit("typing", f);
        return;
      case "ack":
        if (f.cid === authCid) {
          authCid = undefined;
          return scheduleRefresh(); // from the new token's expiry
        }
        outbox.ack(f);
        return;
      case "error":
        if (f.cid !== undefined && f.cid === authCid) {
          // The server kept the old token; try again before it runs out.
          authCid = undefined;
          if (f.code !== "rate_limited") events.emit("error", new ChatClientError(f.code, f.message, f.cid));
          return retryRefresh(f.retryAfterMs);
        }
        if (!outbox.error(f)) events.emit("error", new ChatClientError(f.code, f.message, f.cid, f.retryAfterMs));
        return;
    }
  };

  /** What a close code means: reconnect (with a fresh token when there can be one), or stop. */
  const onClose = (code: number, reason: string) => {
    if (code === CLOSE.forbidden) {
      return shutdown(new ChatClientError("forbidden", reason || "The server ended this session: this client may not act as this user"));
    }
    if (code === CLOSE.unauthorized && !tokens.refreshable) {
      return shutdown(new ChatClientError("unauthorized", reason || "The token expired or was revoked: a new one is needed"));
    }
    reconnectLater();
  };

  const connect = async () => {
    retry = undefined;
    replayLeft = 0;
    replayUpTo = undefined;
    authCid = undefined;
    // Before each connect: the token may have expired or been revoked since,
    // and an HTTP 401 before the upgrade looks like any failed connect.
    let token: string | undefined;
    try {
      token = await tokens.next();
    } catch (err) {
      if (status === "closed") return;
      if (isFatal(err)) return shutdown(err);
      events.emit("error", tokenFailed(err));
      return reconnectLater();
    }
    if (status === "closed") return;
    connectedSince = lastId;
    const url = urls.ws({ since: lastId, epoch, rooms: [...rooms], batch: opts.batch ?? true });
    // Offered only with a token: a browser fails a handshake whose server picks no offered subprotocol.
    const sock = token === undefined ? new WS(url) : new WS(url, [SUBPROTOCOL, BEARER_PREFIX + token]);
    ws = sock;
    sock.onmessage = (e: { data: unknown }) => {
      if (ws === sock) onFrame(String(e.data));
    };
    sock.onclose = (e: { code?: number; reason?: string }) => {
      if (ws !== sock) return;
      ws = undefined;
      clearTimeout(refreshTimer);
      clearTimeout(reportTimer);
      reportTimer = undefined;
      outbox.detach();
      if (status !== "closed") onClose(e.code ?? 1006, e.reason ?? "");
    };
    sock.onerror = () => {}; // a close event follows; it decides
  };

  const roomFrame = (type: "join" | "leave", room: string, o?: SendOptions): Promise<RoomAck> => {
    if (!isValidName(room)) return Promise.reject(new ChatClientError("invalid_room", `Invalid room name ${JSON.stringify(room)}`));
    if (type === "join" && !rooms.has(room) && rooms.size >= LIMITS.roomsMax) {
      return Promise.reject(new ChatClientError("invalid_room", `Cannot join "${room}": at most ${LIMITS.roomsMax} rooms`));
    }
    if (type === "join") rooms.add(room);
    else {
      rooms.delete(room);
      unread.forget(`#${room}`); // no longer counted by the server either
    }
    return submit<RoomAck>({ type, room, cid: o?.cid ?? newCid() });
  };

  /** A watch ack lists which watched users are online: they count as online here. */
  const noteWatch = (ack: WatchAck) => {
    for (const u of ack.online) online.add(u);
    return ack;
  };

  const submit = <A extends RoomAck>(frame: OutgoingFrame): Promise<A> =>
    status === "closed" ? Promise.reject(new ChatClientError("closed", "The client is closed", frame.cid)) : outbox.submit<A>(frame);

  void connect();
  return {
    ...http,
    username: opts.username,
    get status() {
      return status;
    },
    get lastId() {
      return lastId;
    },
    get online() {
      return [...online].sort();
    },
    get onlineCount() {
      return Math.max(onlineCount, online.size);
    },
    get epoch() {
      return epoch;
    },
    get rooms() {
      return [...rooms];
    },
    send: {
      broadcast: (text, o) => submit<MessageAck>({ type: "broadcast", text, cid: o?.cid ?? newCid() }),
      direct: (to, text, o) => submit<MessageAck>({ type: "direct", to, text, cid: o?.cid ?? newCid() }),
      room: (room, text, o) => submit<MessageAck>({ type: "room", room, text, cid: o?.cid ?? newCid() }),
    },
    join: (room, o) => roomFrame("join", room, o),
    leave: (room, o) => roomFrame("leave", room, o),
    watch(users, o) {
      const bad = users.find((u) => !isValidName(u));
      if (bad !== undefined) return Promise.reject(new ChatClientError("invalid_username", `Invalid username ${JSON.stringify(bad)}`));
      for (const u of users) watched.add(u);
      return submit<WatchAck>({ type: "watch", users: [...users], cid: o?.cid ?? newCid() }).then(noteWatch);
    },
    unwatch(users, o) {
      for (const u of users) {
        watched.delete(u);
        online.delete(u);
      }
      return submit<RoomAck>({ type: "unwatch", users: [...users], cid: o?.cid ?? newCid() });
    },
    get unread() {
      return unread.list();
    },
    readMarker: (conversation) => unread.marker(conversation),
    markRead(id) {
      if (!Number.isSafeInteger(id) || id < 1) throw new ChatClientError("invalid_frame", `markRead takes a message id, got ${JSON.stringify(id)}`);
      const conv = unread.conversationOfId(id);
      // Known conversation, already read this far: nothing to tell anyone.
      if (conv !== undefined && !unread.read(conv, id)) return;
      const frame: ReadFrame = { type: "read", id };
      if (status === "closed" || sendUnacked(frame)) return;
      pendingReads.add(id);
      if (pendingReads.size > PENDING_READS_MAX) pendingReads.delete(pendingReads.values().next().value!);
    },
    typing(to) {
      const room = typeof to === "string" ? undefined : to.room;
      const name = room ?? (to as string);
      if (!isValidName(name)) throw new ChatClientError(room === undefined ? "invalid_username" : "invalid_room", `Invalid name ${JSON.stringify(name)}`);
      // Typing in a room this client is not in would only be refused.
      if (room !== undefined && !rooms.has(room)) return false;
      const conv: ConversationKey = room === undefined ? `@${name}` : `#${room}`;
      const now = Date.now();
      if (now - (typedAt.get(conv) ?? -Infinity) < LIMITS.typingEveryMs) return false;
      const frame: TypingFrame = room === undefined ? { type: "typing", to: name } : { type: "typing", room };
      if (!sendUnacked(frame)) return false;
      typedAt.set(conv, now);
      if (typedAt.size > 1000) for (const [k, at] of typedAt) if (now - at >= LIMITS.typingEveryMs) typedAt.delete(k);
      return true;
    },
    on: (event, handler) => events.on(event, handler),
    close: () => shutdown(),
  };
}

/** A rejection of the token function, as the `error` event reports it. */
function tokenFailed(err: unknown): ChatClientError {
  if (err instanceof ChatClientError) return err;
  return new ChatClientError("token_failed", `The token function failed: ${err instanceof Error ? err.message : String(err)}`);
}
