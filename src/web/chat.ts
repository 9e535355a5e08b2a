/**
 * The chat screen of a logged-in session, driven by the SDK: history on
 * load, conversations (everyone, rooms, direct) that survive a reload with
 * their unread counts, delivered and read marks on my direct messages, who
 * is typing, and the way back to the login form when the session ends.
 */
import { isValidName, LIMITS } from "../protocol/limits.js";
import { createChatClient, newCid, refresh, type ChatClientError, type ChatMessage, type TokenOption } from "../sdk/index.js";
import { ChatState, dmKey, EVERYONE, pageKey, roomKey, sdkKey, type ConvKey } from "./state.js";
import { addPartner, loadPartners, loadRecent, loadRooms, loadTicks, saveRecent, saveRooms, saveSession, saveTicks, type Session } from "./storage.js";
import { ChatView } from "./view.js";

/** Ack timeouts retried with the same cid before the page tells the user. */
const RETRIES = 3;
/** One page of each conversation on load. */
const PAGE = 50;
/** "bob is typing…" stays this long after bob's last typing frame (they come every 2 s while typing). */
const TYPING_SHOWN_MS = 3500;
/** Reads of the conversation shown are sent together, this long after the first new message. */
const READ_DELAY_MS = 250;

const describe = (err: unknown) => {
  const e = err as Partial<ChatClientError>;
  if (e.code === "timeout") return "The server did not confirm the message in time; it was not lost if it shows up, otherwise send it again.";
  if (e.code === "rate_limited") return "You are sending too fast: wait a moment, then send it again.";
  return e.message ?? String(err);
};

/** Why the session ended, for the login form. */
const ended = (s: Session, err: ChatClientError) =>
  err.code === "forbidden"
    ? "The server ended this session: log in again."
    : s.mode === "jwt"
      ? "Your token expired or was revoked: paste a new one."
      : "Your session expired: log in again.";

/**
 * The SDK's token for `s`: none in open mode; the pasted token in jwt mode
 * (it cannot be renewed); in accounts mode a function that trades the
 * current token for a new one (`/auth/refresh`) before each reconnect and
 * before it expires, except for the first connect right after a login.
 */
function tokenOf(s: Session, justLoggedIn: boolean): TokenOption | undefined {
  if (s.mode !== "accounts") return s.token;
  let fresh = justLoggedIn;
  return async () => {
    if (fresh) {
      fresh = false;
      return s.token!;
    }
    // A 401 here (expired, revoked) rejects with `unauthorized`: the client stops and the page logs out.
    const next = await refresh(location.origin, s.token!);
    s.token = next.token;
    saveSession(s);
    return next.token;
  };
}

/** Shows the chat of session `s`; `logout` is called (once) when it ends, with the reason when it was not asked for. */
export function chat(root: HTMLElement, s: Session, justLoggedIn: boolean, logout: (notice?: string) => void): void {
  const me = s.user;
  const rooms = loadRooms();
  const client = createChatClient({ url: location.origin, username: me, rooms, token: tokenOf(s, justLoggedIn) });
  const state = new ChatState(me, loadTicks(me));
  for (const r of rooms) state.open(roomKey(r));
  // Open mode: the server serves no direct-message history, so the tab keeps the last ones itself.
  const recent = s.mode === "open" ? loadRecent(me) : undefined;
  let active = true;
  let welcomed = false;
  /** Conversations whose latest page was asked for: each once (until a room is left). */
  const loaded = new Set<ConvKey>();
  /** Ids of messages the server gave this page (not the tab's own copies): the ones it may mark read. */
  const confirmed = new Set<number>();
  /** Who is typing where, until when. */
  const typers = new Map<ConvKey, Map<string, number>>();
  let typingTimer: ReturnType<typeof setTimeout> | undefined;
  let readTimer: ReturnType<typeof setTimeout> | undefined;
  /** Users whose presence is watched: the partners of direct conversations. */
  const watched = new Set<string>();

  const end = (notice?: string) => {
    if (!active) return;
    active = false;
    clearTimeout(typingTimer);
    clearTimeout(readTimer);
    document.removeEventListener("visibilitychange", onVisible);
    client.close();
    logout(notice);
  };

  /** Follows a partner's presence (so the online list shows them whoever else is online). */
  const watch = (user: string) => {
    if (watched.has(user) || watched.size >= LIMITS.watchMax) return;
    watched.add(user);
    client.watch([user]).then(
      () => active && view.online(client.online),
      () => {},
    );
  };

  /** A direct conversation the page shows: remembered in this browser, its partner watched, its history loaded. */
  const directOpened = (name: string, key: ConvKey) => {
    addPartner(me, name);
    watch(name);
    if (welcomed) loadHistory(key);
  };

  /** Marks the conversation shown read up to its newest message, soon (a burst of messages makes one read). */
  const markShown = () => {
    if (readTimer !== undefined || !active) return;
    readTimer = setTimeout(() => {
      readTimer = undefined;
      if (!active || document.visibilityState === "hidden") return;
      const conv = state.open(state.current);
      let newest = conv.unreadId;
      for (let i = conv.messages.length - 1; i >= 0; i--) {
        const id = conv.messages[i]!.id;
        if (id <= newest) break;
        if (confirmed.has(id)) {
          newest = id;
          break;
        }
      }
      if (newest > client.readMarker(sdkKey(conv))) client.markRead(newest);
    }, READ_DELAY_MS);
  };
  const onVisible = () => {
    if (document.visibilityState === "visible") markShown();
  };
  document.addEventListener("visibilitychange", onVisible);

  /** Shows who is typing in the current conversation, and forgets those who stopped. */
  const showTyping = () => {
    clearTimeout(typingTimer);
    typingTimer = undefined;
    const now = Date.now();
    let next = Infinity;
    for (const [key, users] of typers) {
      for (const [u, until] of users) {
        if (until <= now) users.delete(u);
        else next = Math.min(next, until);
      }
      if (users.size === 0) typers.delete(key);
    }
    view.typing([...(typers.get(state.current)?.keys() ?? [])]);
    if (next !== Infinity) typingTimer = setTimeout(showTyping, next - now);
  };

  const select = (key: ConvKey) => {
    state.current = key;
    const conv = state.open(key);
    if (conv.kind === "direct") directOpened(conv.name, key);
    view.conversations();
    view.messages();
    showTyping();
    markShown();
  };

  const add = (m: ChatMessage, fromServer = true) => {
    if (fromServer) confirmed.add(m.id);
    const { conv, added } = state.add(m);
    if (!added) return;
    if (conv.kind === "direct") {
      directOpened(conv.name, conv.key);
      if (recent) {
        recent.set(conv.name, conv.messages);
        saveRecent(me, recent);
      }
    }
    // A message from someone ends their "typing…".
    if (typers.get(conv.key)?.delete(m.from)) showTyping();
    if (conv.key === state.current) {
      view.insert(m);
      if (fromServer) markShown();
    }
    view.conversations();
  };

  /** History on load: the latest page of everyone's messages, of each room and of each direct conversation. */
  const loadHistory = (key: ConvKey) => {
    if (loaded.has(key)) return;
    loaded.add(key);
    const conv = state.open(key);
    if (conv.kind === "direct" && recent) return; // restored from the tab's own copy instead
    const page =
      conv.kind === "room"
        ? client.roomHistory(conv.name, { limit: PAGE })
        : conv.kind === "direct"
          ? client.userHistory(conv.name, { limit: PAGE })
          : client.history({ limit: PAGE });
    page.then(
      (ms) => {
        if (active) for (const m of ms) add(m);
      },
      (err) => active && view.notice(`Could not load history: ${describe(err)}`),
    );
  };

  const view = new ChatView(root, state, s.mode, {
    select,
    send(text) {
      const c = state.open(state.current);
      // One cid for every try: the server stores and delivers a retried message once.
      const opts = { cid: newCid() };
      const once = () =>
        c.kind === "everyone"
          ? client.send.broadcast(text, opts)
          : c.kind === "room"
            ? client.send.room(c.name, text, opts)
            : client.send.direct(c.name, text, opts);
      const attempt = (tries: number): Promise<unknown> =>
        once().catch((err: Partial<ChatClientError>) => (err.code === "timeout" && tries < RETRIES ? attempt(tries + 1) : Promise.reject(err)));
      return attempt(0).then(
        () => {
          if (active) view.notice("");
          return true;
        },
        (err) => {
          if (active) view.notice(describe(err));
          return false;
        },
      );
    },
    typing() {
      const c = state.open(state.current);
      if (c.kind === "direct") client.typing(c.name);
      else if (c.kind === "room" && client.rooms.includes(c.name)) client.typing({ room: c.name });
    },
    join(room) {
      if (!isValidName(room)) return view.notice("Room names use 1 to 64 letters, digits, _, - or .");
      client.join(room).then(
        () => loadHistory(roomKey(room)),
        (err) => active && view.notice(describe(err)),
      );
      saveRooms(client.rooms);
      select(roomKey(room));
    },
    leave(room) {
      client.leave(room).catch((err) => active && view.notice(describe(err)));
      saveRooms(client.rooms);
      state.drop(roomKey(room));
      loaded.delete(roomKey(room));
      select(state.current);
    },
    message(user) {
      if (!isValidName(user)) return view.notice("Usernames use 1 to 64 letters, digits, _, - or .");
      if (user === me) return view.notice("That is you: pick someone else.");
      select(dmKey(user));
    },
    logout: () => end(),
  });

  for (const p of loadPartners(me)) directOpened(p, state.open(dmKey(p)).key);
  for (const list of recent?.values() ?? []) for (const m of list) add(m, false);
  client.on("message", (m) => active && add(m));
  client.on("status", (st) => {
    if (!active) return;
    view.status(st);
    if (st === "open") view.notice(""); // what went wrong before the reconnect is over
  });
  client.on("presence", () => active && view.online(client.online));
  client.on("welcome", () => {
    if (!active) return;
    view.online(client.online);
    if (welcomed) return;
    welcomed = true;
    for (const key of [...state.convs.keys()]) loadHistory(key);
  });
  client.on("unread", (u) => {
    if (!active) return;
    const key = pageKey(u.conversation);
    const known = state.convs.get(key);
    // A count for a room this page left, or nothing to show for a conversation it does not know.
    if (!known && (u.count === 0 || key.startsWith("room:"))) return;
    const conv = known ?? state.open(key);
    conv.unread = u.count;
    conv.unreadId = u.count > 0 ? u.lastId : 0;
    // A direct conversation with news comes back even where this browser never saw it.
    if (!known && conv.kind === "direct") directOpened(conv.name, key);
    if (key === state.current && u.count > 0) markShown();
    view.conversations();
  });
  client.on("receipt", (r) => {
    // My own reads (any device) come as `unread` events; these are the other side's.
    if (!active || r.by === me) return;
    const key = dmKey(r.by);
    const known = state.convs.has(key);
    const conv = state.open(key);
    conv.delivered = Math.max(conv.delivered, r.id);
    if (r.event === "read") conv.read = Math.max(conv.read, r.id);
    saveTicks(me, r.by, [conv.delivered, conv.read]);
    if (key === state.current) view.ticks();
    if (!known) {
      // Receipts for my messages to someone this page does not list yet (sent from another device).
      directOpened(conv.name, key);
      view.conversations();
    }
  });
  client.on("typing", (t) => {
    if (!active) return;
    const key = "room" in t ? roomKey(t.room) : dmKey(t.from);
    let users = typers.get(key);
    if (!users) typers.set(key, (users = new Map()));
    users.set(t.from, Date.now() + TYPING_SHOWN_MS);
    showTyping();
  });
  client.on("error", (err) => {
    if (!active) return;
    // The client stopped: this token or user may not go on.
    if (client.status === "closed" && (err.code === "unauthorized" || err.code === "forbidden")) return end(ended(s, err));
    if (err.code === "token_failed") return; // retried with backoff; the status shows it
    view.notice(err.code === "resume_incomplete" ? "Some messages from while you were away could not be loaded." : describe(err));
  });
  view.status(client.status);
  select(EVERYONE);
}
