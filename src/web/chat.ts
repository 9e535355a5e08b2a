/**
 * The chat screen of a logged-in session, driven by the SDK: history on
 * load, conversations (everyone, rooms, direct) that survive a reload, and
 * the way back to the login form when the session ends.
 */
import { isValidName } from "../protocol/limits.js";
import { createChatClient, newCid, refresh, type ChatClientError, type ChatMessage, type TokenOption } from "../sdk/index.js";
import { ChatState, dmKey, EVERYONE, roomKey, type ConvKey } from "./state.js";
import { addPartner, loadPartners, loadRecent, loadRooms, saveRecent, saveRooms, saveSession, type Session } from "./storage.js";
import { ChatView } from "./view.js";

/** Ack timeouts retried with the same cid before the page tells the user. */
const RETRIES = 3;
/** One page of each conversation on load. */
const PAGE = 50;

const describe = (err: unknown) => {
  const e = err as Partial<ChatClientError>;
  if (e.code === "timeout") return "The server did not confirm the message in time; it was not lost if it shows up, otherwise send it again.";
  if (e.code === "rate_limited") return "You are sending too fast: wait a moment, then send it again.";
  return e.message ?? String(err);
};

/** Why the session ended, for the login form. */
const ended = (s: Session, err: ChatClientError) =>
  err.code === "forbidden" ? "The server ended this session: log in again."
    : s.mode === "jwt" ? "Your token expired or was revoked: paste a new one."
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
  const state = new ChatState(me);
  for (const r of rooms) state.open(roomKey(r));
  for (const p of loadPartners(me)) state.open(dmKey(p));
  // Open mode: the server serves no direct-message history, so the tab keeps the last ones itself.
  const recent = s.mode === "open" ? loadRecent(me) : undefined;
  let active = true;
  let welcomed = false;
  /** Conversations whose latest page was asked for: each once (until a room is left). */
  const loaded = new Set<ConvKey>();

  const end = (notice?: string) => {
    if (!active) return;
    active = false;
    client.close();
    logout(notice);
  };

  const select = (key: ConvKey) => {
    state.current = key;
    const conv = state.open(key);
    conv.unread = 0;
    if (conv.kind === "direct") {
      addPartner(me, conv.name);
      // A conversation new to this tab may have history (from another device); rooms load once joined.
      if (welcomed) loadHistory(key);
    }
    view.conversations();
    view.messages();
    view.notice("");
  };

  const add = (m: ChatMessage, unread = true) => {
    const { conv, added } = state.add(m, unread);
    if (!added) return;
    if (conv.kind === "direct") {
      addPartner(me, conv.name);
      if (welcomed) loadHistory(conv.key);
      if (recent) {
        recent.set(conv.name, conv.messages);
        saveRecent(me, recent);
      }
    }
    if (conv.key === state.current) view.insert(m);
    view.conversations();
  };

  /** History on load: the latest page of everyone's messages, of each room and of each direct conversation. */
  const loadHistory = (key: ConvKey) => {
    if (loaded.has(key)) return;
    loaded.add(key);
    const conv = state.open(key);
    if (conv.kind === "direct" && recent) return; // restored from the tab's own copy instead
    const page = conv.kind === "room" ? client.roomHistory(conv.name, { limit: PAGE })
      : conv.kind === "direct" ? client.userHistory(conv.name, { limit: PAGE })
        : client.history({ limit: PAGE });
    page.then((ms) => active && ms.forEach((m) => add(m, false)), (err) => active && view.notice(`Could not load history: ${describe(err)}`));
  };

  const view = new ChatView(root, state, s.mode, {
    select,
    send(text) {
      const c = state.open(state.current);
      // One cid for every try: the server stores and delivers a retried message once.
      const opts = { cid: newCid() };
      const once = () => c.kind === "everyone" ? client.send.broadcast(text, opts)
        : c.kind === "room" ? client.send.room(c.name, text, opts)
        : client.send.direct(c.name, text, opts);
      const attempt = (tries: number): Promise<unknown> =>
        once().catch((err: Partial<ChatClientError>) => (err.code === "timeout" && tries < RETRIES ? attempt(tries + 1) : Promise.reject(err)));
      attempt(0).catch((err) => active && view.notice(describe(err)));
    },
    join(room) {
      if (!isValidName(room)) return view.notice("Room names use 1 to 64 letters, digits, _, - or .");
      client.join(room).then(() => loadHistory(roomKey(room)), (err) => active && view.notice(describe(err)));
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

  for (const list of recent?.values() ?? []) for (const m of list) add(m, false);
  client.on("message", (m) => active && add(m));
  client.on("status", (st) => active && view.status(st));
  client.on("presence", () => active && view.online(client.online));
  client.on("welcome", () => {
    if (!active) return;
    view.online(client.online);
    if (welcomed) return;
    welcomed = true;
    for (const key of [...state.convs.keys()]) loadHistory(key);
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
