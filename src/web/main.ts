/**
 * The web chat page's script, bundled by `Bun.build` (see page.ts): a
 * username form, then the chat screen driven by the SDK.
 */
import { isValidName } from "../protocol.js";
import { createChatClient, type ChatClientError, type ChatMessage } from "../sdk/index.js";
import { byId, h, replace } from "./dom.js";
import { ChatState, EVERYONE, roomKey, type ConvKey } from "./state.js";
import { ChatView } from "./view.js";

// Per tab (sessionStorage), so two tabs can be two users.
const USER_KEY = "wirechat.user";
const ROOMS_KEY = "wirechat.rooms";
/** Ack timeouts retried with the same cid before the page tells the user. */
const RETRIES = 3;

const describe = (err: unknown) => {
  const e = err as Partial<ChatClientError>;
  if (e.code === "timeout") return "The server did not confirm the message in time; it was not lost if it shows up, otherwise send it again.";
  return e.message ?? String(err);
};

function savedRooms(): string[] {
  try {
    const rooms: unknown = JSON.parse(sessionStorage.getItem(ROOMS_KEY) ?? "[]");
    return Array.isArray(rooms) ? rooms.filter((r): r is string => typeof r === "string" && isValidName(r)) : [];
  } catch {
    return [];
  }
}

/** The username form. */
function login(root: HTMLElement): void {
  replace(root, h("form", { id: "login", class: "login" },
    h("h1", {}, "wirechat"),
    h("label", { for: "username" }, "Choose a username"),
    h("input", { id: "username", name: "username", autocomplete: "username", maxlength: "64", required: true, autofocus: true }),
    h("button", { type: "submit" }, "Start chatting"),
    h("p", { id: "login-error", class: "notice", role: "alert" })));
  byId("login").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = byId<HTMLInputElement>("username").value.trim();
    if (!isValidName(name)) {
      byId("login-error").textContent = "Use 1 to 64 letters, digits, _, - or .";
      return;
    }
    sessionStorage.setItem(USER_KEY, name);
    chat(root, name);
  });
}

/** The chat screen of `me`. */
function chat(root: HTMLElement, me: string): void {
  const rooms = savedRooms();
  const client = createChatClient({ url: location.origin, username: me, rooms });
  const state = new ChatState(me);
  for (const r of rooms) state.open(roomKey(r));
  const persistRooms = () => sessionStorage.setItem(ROOMS_KEY, JSON.stringify(client.rooms));

  const select = (key: ConvKey) => {
    state.current = key;
    state.open(key).unread = 0;
    view.conversations();
    view.messages();
    view.notice("");
  };

  const add = (m: ChatMessage, unread = true) => {
    const { conv, added } = state.add(m, unread);
    if (!added) return;
    if (conv.key === state.current) view.insert(m);
    view.conversations();
  };

  /** History on load: the latest page of everyone's messages and of each room. */
  const loadHistory = (key: ConvKey) => {
    const conv = state.open(key);
    const page = conv.kind === "room" ? client.roomHistory(conv.name, { limit: 50 }) : client.history({ limit: 50 });
    page.then((ms) => ms.forEach((m) => add(m, false)), (err) => view.notice(`Could not load history: ${describe(err)}`));
  };

  const view = new ChatView(root, state, {
    select,
    send(text) {
      const c = state.open(state.current);
      // One cid for every try: the server stores and delivers a retried message once.
      const opts = { cid: crypto.randomUUID() };
      const once = () => c.kind === "everyone" ? client.send.broadcast(text, opts)
        : c.kind === "room" ? client.send.room(c.name, text, opts)
        : client.send.direct(c.name, text, opts);
      const attempt = (tries: number): Promise<unknown> =>
        once().catch((err: Partial<ChatClientError>) => (err.code === "timeout" && tries < RETRIES ? attempt(tries + 1) : Promise.reject(err)));
      attempt(0).catch((err) => view.notice(describe(err)));
    },
    join(room) {
      if (!isValidName(room)) return view.notice("Room names use 1 to 64 letters, digits, _, - or .");
      client.join(room).then(() => loadHistory(roomKey(room)), (err) => view.notice(describe(err)));
      persistRooms();
      select(roomKey(room));
    },
    leave(room) {
      client.leave(room).catch((err) => view.notice(describe(err)));
      persistRooms();
      state.drop(roomKey(room));
      select(state.current);
    },
  });

  let first = true;
  client.on("message", add);
  client.on("status", (s) => view.status(s));
  client.on("presence", () => view.online(client.online));
  client.on("welcome", () => {
    view.online(client.online);
    if (!first) return;
    first = false;
    for (const key of state.convs.keys()) loadHistory(key);
  });
  client.on("error", (err) => {
    view.notice(err.code === "resume_incomplete" ? "Some messages from while you were away could not be loaded." : describe(err));
  });
  view.status(client.status);
  select(EVERYONE);
}

const root = byId("app");
const saved = sessionStorage.getItem(USER_KEY);
if (saved && isValidName(saved)) chat(root, saved);
else login(root);
