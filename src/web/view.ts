/**
 * The chat screen: builds its elements once, then re-renders parts of it
 * from `ChatState`. All text goes through text nodes (see dom.ts).
 */
import type { AuthMode, ChatMessage, ChatStatus } from "../sdk/index.js";
import { byId, h, replace } from "./dom.js";
import { dmKey, type ChatState, type ConvKey, type Conversation } from "./state.js";

const STATUS_TEXT: Record<ChatStatus, string> = {
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Disconnected",
};

/** What the screen asks the app to do. */
export interface ViewActions {
  select(key: ConvKey): void;
  send(text: string): void;
  join(room: string): void;
  leave(room: string): void;
  /** Opens a direct conversation with `user`, online or not. */
  message(user: string): void;
  logout(): void;
}

const title = (c: Conversation) => (c.kind === "everyone" ? "Everyone" : c.kind === "room" ? `# ${c.name}` : `@ ${c.name}`);
const time = (at: number) => new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** The chat screen of user `me`. */
export class ChatView {
  constructor(readonly root: HTMLElement, readonly state: ChatState, mode: AuthMode, readonly actions: ViewActions) {
    replace(root,
      h("header", { class: "bar" },
        h("button", { id: "menu", type: "button", "aria-label": "Conversations", "aria-controls": "side" }, "☰"),
        h("h1", {}, "wirechat"),
        h("span", { class: "me" }, "as ", h("strong", { id: "me" }, state.me)),
        h("span", { id: "status", class: "status", "data-status": "connecting", role: "status" }, STATUS_TEXT.connecting),
        // In open mode nobody logs in: one changes name.
        h("button", { id: "logout", type: "button" }, mode === "open" ? "Change user" : "Log out")),
      h("div", { class: "layout" },
        h("aside", { id: "side", class: "side" },
          h("h2", {}, "Conversations"), h("ul", { id: "convs", class: "convs" }),
          h("form", { id: "join-form", class: "inline" },
            h("input", { id: "room-name", name: "room", placeholder: "room name", pattern: "[A-Za-z0-9_.\\-]{1,64}", required: true, "aria-label": "Room to join" }),
            h("button", { type: "submit" }, "Join")),
          h("form", { id: "dm-form", class: "inline" },
            h("input", { id: "dm-name", name: "user", placeholder: "username", pattern: "[A-Za-z0-9_.\\-]{1,64}", required: true, "aria-label": "User to message" }),
            h("button", { type: "submit" }, "Message")),
          h("h2", {}, "Online"), h("ul", { id: "online", class: "online" })),
        h("section", { class: "pane" },
          h("header", { class: "pane-head" }, h("h2", { id: "conv-title" }), h("button", { id: "leave", type: "button", hidden: true }, "Leave room")),
          h("ol", { id: "messages", class: "messages", "aria-live": "polite" }),
          h("p", { id: "notice", class: "notice", role: "alert" }),
          h("form", { id: "composer", class: "inline composer" },
            h("input", { id: "text", name: "text", maxlength: "4000", autocomplete: "off", placeholder: "Write a message", required: true, "aria-label": "Message" }),
            h("button", { type: "submit" }, "Send")))));
    const text = byId<HTMLInputElement>("text");
    byId("composer").addEventListener("submit", (e) => {
      e.preventDefault();
      if (text.value.trim() === "") return;
      actions.send(text.value);
      text.value = "";
    });
    const room = byId<HTMLInputElement>("room-name");
    byId("join-form").addEventListener("submit", (e) => {
      e.preventDefault();
      actions.join(room.value);
      room.value = "";
    });
    const dm = byId<HTMLInputElement>("dm-name");
    byId("dm-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.root.classList.remove("side-open");
      actions.message(dm.value.trim());
      dm.value = "";
    });
    byId("logout").addEventListener("click", () => actions.logout());
    byId("leave").addEventListener("click", () => {
      const c = state.convs.get(state.current);
      if (c?.kind === "room") actions.leave(c.name);
    });
    byId("menu").addEventListener("click", () => root.classList.toggle("side-open"));
  }

  /** Shows the connection state. */
  status(s: ChatStatus): void {
    const el = byId("status");
    el.dataset.status = s;
    el.textContent = STATUS_TEXT[s];
  }

  /** Shows a short note (an error, a gap in history), or clears it. */
  notice(text: string): void {
    byId("notice").textContent = text;
  }

  /** The conversation list with unread counts. */
  conversations(): void {
    const { state } = this;
    replace(byId("convs"), ...[...state.convs.values()].map((c) =>
      h("li", { "data-key": c.key, class: c.key === state.current ? "current" : undefined },
        h("button", { type: "button" }, title(c), c.unread > 0 && h("span", { class: "badge" }, String(c.unread))))));
    for (const b of Array.from(byId("convs").querySelectorAll("li"))) {
      b.querySelector("button")!.addEventListener("click", () => {
        this.root.classList.remove("side-open");
        this.actions.select(b.dataset.key!);
      });
    }
  }

  /** The online list; a click opens a direct conversation. */
  online(users: readonly string[]): void {
    replace(byId("online"), ...users.map((u) =>
      h("li", { "data-user": u },
        u === this.state.me ? h("span", {}, `${u} (you)`) : h("button", { type: "button", title: `Message ${u}` }, u))));
    for (const li of Array.from(byId("online").querySelectorAll("li"))) {
      li.querySelector("button")?.addEventListener("click", () => {
        this.root.classList.remove("side-open");
        this.actions.select(dmKey(li.dataset.user!));
      });
    }
  }

  /** The current conversation in full. */
  messages(): void {
    const conv = this.state.open(this.state.current);
    byId("conv-title").textContent = title(conv);
    byId("leave").hidden = conv.kind !== "room";
    const list = byId("messages");
    replace(list, ...conv.messages.map((m) => this.#item(m)));
    list.scrollTop = list.scrollHeight;
  }

  /** Adds one message of the current conversation where its id puts it. */
  insert(m: ChatMessage): void {
    const list = byId("messages");
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const after = Array.from(list.children).find((li) => Number((li as HTMLElement).dataset.id) > m.id);
    list.insertBefore(this.#item(m), after ?? null);
    if (stick) list.scrollTop = list.scrollHeight;
  }

  #item(m: ChatMessage): HTMLLIElement {
    return h("li", { "data-id": String(m.id), class: m.from === this.state.me ? "mine" : undefined },
      h("div", { class: "meta" }, h("span", { class: "from" }, m.from), h("time", { datetime: new Date(m.at).toISOString() }, time(m.at))),
      h("p", { class: "text" }, m.text));
  }
}
