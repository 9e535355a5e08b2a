/**
 * The chat screen: builds its elements once, then re-renders parts of it
 * from `ChatState`. All text goes through text nodes (see dom.ts).
 */
import { LIMITS, NAME_PATTERN } from "../protocol/limits.js";
import type { AuthMode, ChatMessage, ChatStatus } from "../sdk/index.js";
import { byId, h, replace } from "./dom.js";
import { dmKey, type ChatState, type ConvKey, type Conversation } from "./state.js";

const STATUS_TEXT: Record<ChatStatus, string> = {
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Disconnected",
};

/** The name rule as an input's `pattern`: anchored already, and in the `v` mode browsers use a class's `-` must be escaped. */
const NAME_INPUT = NAME_PATTERN.slice(1, -1).replace("-]", "\\-]");

/** The character counter shows from this many characters on. */
const COUNTER_FROM = LIMITS.textMax - 500;

const TICKS = {
  sent: ["✓", "Sent"],
  delivered: ["✓✓", "Delivered"],
  read: ["✓✓", "Read"],
} as const;

/** What the screen asks the app to do. */
export interface ViewActions {
  select(key: ConvKey): void;
  /** Sends `text` to the current conversation; resolves false when it was refused or failed (the app said why). */
  send(text: string): Promise<boolean>;
  /** The user is typing in the current conversation. */
  typing(): void;
  join(room: string): void;
  leave(room: string): void;
  /** Opens a direct conversation with `user`, online or not. */
  message(user: string): void;
  logout(): void;
}

const title = (c: Conversation) => (c.kind === "everyone" ? "Everyone" : c.kind === "room" ? `# ${c.name}` : `@ ${c.name}`);
const time = (at: number) => new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const count = (n: number) => n.toLocaleString("en-US");

/** The chat screen of user `me`. */
export class ChatView {
  constructor(
    readonly root: HTMLElement,
    readonly state: ChatState,
    mode: AuthMode,
    readonly actions: ViewActions,
  ) {
    replace(
      root,
      h(
        "header",
        { class: "bar" },
        h(
          "button",
          { id: "menu", type: "button", "aria-label": "Conversations", "aria-controls": "side" },
          "☰",
          h("span", { id: "menu-badge", class: "badge", hidden: true }),
        ),
        h("h1", {}, "wirechat"),
        h("span", { class: "me", title: `Signed in as ${state.me}` }, h("span", { class: "as" }, "as "), h("strong", { id: "me" }, state.me)),
        h(
          "span",
          { id: "status", class: "status", "data-status": "connecting", role: "status", title: STATUS_TEXT.connecting },
          h("span", { class: "status-text" }, STATUS_TEXT.connecting),
        ),
        // In open mode nobody logs in: one changes name.
        h("button", { id: "logout", type: "button" }, mode === "open" ? "Change user" : "Log out"),
      ),
      h(
        "div",
        { class: "layout" },
        h(
          "aside",
          { id: "side", class: "side" },
          h("h2", {}, "Conversations"),
          h("ul", { id: "convs", class: "convs" }),
          h("h2", {}, "New message"),
          h(
            "form",
            { id: "dm-form", class: "inline" },
            h("input", {
              id: "dm-name",
              name: "user",
              placeholder: "to username",
              pattern: NAME_INPUT,
              required: true,
              "aria-label": "New message to (username)",
            }),
            h("button", { type: "submit" }, "Write"),
          ),
          h("h2", {}, "Rooms"),
          h(
            "form",
            { id: "join-form", class: "inline" },
            h("input", {
              id: "room-name",
              name: "room",
              placeholder: "room name",
              pattern: NAME_INPUT,
              required: true,
              "aria-label": "Room to join",
            }),
            h("button", { type: "submit" }, "Join"),
          ),
          h("h2", {}, "Online"),
          h("ul", { id: "online", class: "online" }),
        ),
        h(
          "section",
          { class: "pane" },
          h("header", { class: "pane-head" }, h("h2", { id: "conv-title" }), h("button", { id: "leave", type: "button", hidden: true }, "Leave room")),
          h("ol", { id: "messages", class: "messages", "aria-live": "polite" }),
          h("p", { id: "typing", class: "typing", "aria-live": "polite" }),
          h("p", { id: "notice", class: "notice", role: "alert" }),
          h(
            "form",
            { id: "composer", class: "inline composer" },
            h("input", {
              id: "text",
              name: "text",
              autocomplete: "off",
              placeholder: "Write a message",
              required: true,
              "aria-label": "Message",
              "aria-describedby": "counter",
            }),
            h("span", { id: "counter", class: "counter", hidden: true }),
            h("button", { type: "submit" }, "Send"),
          ),
        ),
      ),
    );
    const text = byId<HTMLInputElement>("text");
    text.addEventListener("input", () => {
      this.#count();
      if (text.value !== "") actions.typing();
    });
    byId("composer").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = text.value;
      if (value.trim() === "") return;
      if (value.length > LIMITS.textMax) {
        return this.notice(
          `That is ${count(value.length - LIMITS.textMax)} characters over the ${count(LIMITS.textMax)} limit: shorten it, or send it in parts.`,
        );
      }
      const key = state.current;
      text.value = "";
      this.#count();
      // Refused or failed: the text comes back for another try, unless something new was typed meanwhile.
      void actions.send(value).then((ok) => {
        if (!ok && text.value === "" && state.current === key) {
          text.value = value;
          this.#count();
        }
      });
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

  /** Shows the composer's length near and over the limit. */
  #count(): void {
    const n = byId<HTMLInputElement>("text").value.length;
    const el = byId("counter");
    el.hidden = n < COUNTER_FROM;
    el.classList.toggle("over", n > LIMITS.textMax);
    el.textContent = `${count(n)} / ${count(LIMITS.textMax)}`;
  }

  /** Shows the connection state. */
  status(s: ChatStatus): void {
    const el = byId("status");
    el.dataset.status = s;
    el.title = STATUS_TEXT[s];
    el.querySelector(".status-text")!.textContent = STATUS_TEXT[s];
  }

  /** Shows a short note (an error, a gap in history), or clears it. */
  notice(text: string): void {
    byId("notice").textContent = text;
  }

  /** Who is typing in the current conversation. */
  typing(users: readonly string[]): void {
    byId("typing").textContent =
      users.length === 0 ? "" : users.length === 1 ? `${users[0]} is typing…` : `${users.slice(0, -1).join(", ")} and ${users.at(-1)} are typing…`;
  }

  /** The conversation list with unread counts (none on the one shown: it is being read). */
  conversations(): void {
    const { state } = this;
    replace(
      byId("convs"),
      ...[...state.convs.values()].map((c) => {
        const badge = c.unread > 0 && c.key !== state.current;
        return h(
          "li",
          { "data-key": c.key, class: c.key === state.current ? "current" : undefined },
          h(
            "button",
            { type: "button", "aria-label": badge ? `${title(c)}, ${c.unread} unread` : undefined },
            title(c),
            badge && h("span", { class: "badge" }, c.unread >= 999 ? "999+" : String(c.unread)),
          ),
        );
      }),
    );
    // On a phone the list is folded away: the menu button says there is news.
    const news = [...state.convs.values()].reduce((n, c) => n + (c.key === state.current ? 0 : c.unread), 0);
    const menu = byId("menu-badge");
    menu.hidden = news === 0;
    menu.textContent = news >= 999 ? "999+" : String(news);
    for (const b of Array.from(byId("convs").querySelectorAll("li"))) {
      b.querySelector("button")!.addEventListener("click", () => {
        this.root.classList.remove("side-open");
        this.actions.select(b.dataset.key!);
      });
    }
  }

  /** The online list; a click opens a direct conversation. */
  online(users: readonly string[]): void {
    replace(
      byId("online"),
      ...users.map((u) =>
        h("li", { "data-user": u }, u === this.state.me ? h("span", {}, `${u} (you)`) : h("button", { type: "button", title: `Message ${u}` }, u)),
      ),
    );
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
    replace(list, ...conv.messages.map((m) => this.#item(conv, m)));
    list.scrollTop = list.scrollHeight;
  }

  /** Adds one message of the current conversation where its id puts it. */
  insert(m: ChatMessage): void {
    const list = byId("messages");
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const after = Array.from(list.children).find((li) => Number((li as HTMLElement).dataset.id) > m.id);
    list.insertBefore(this.#item(this.state.open(this.state.current), m), after ?? null);
    if (stick) list.scrollTop = list.scrollHeight;
  }

  /** Brings the delivered and read marks of the current (direct) conversation up to date. */
  ticks(): void {
    const conv = this.state.open(this.state.current);
    for (const el of Array.from(byId("messages").querySelectorAll<HTMLElement>(".tick"))) {
      this.#tick(el, this.state.tick(conv, Number(el.dataset.for)));
    }
  }

  #tick(el: HTMLElement, tick: keyof typeof TICKS) {
    if (el.dataset.tick === tick) return;
    el.dataset.tick = tick;
    el.textContent = TICKS[tick][0];
    el.title = TICKS[tick][1];
    el.setAttribute("aria-label", TICKS[tick][1]);
  }

  #item(conv: Conversation, m: ChatMessage): HTMLLIElement {
    const mine = m.from === this.state.me;
    let tick: HTMLElement | undefined;
    if (mine && conv.kind === "direct") {
      tick = h("span", { class: "tick", "data-for": String(m.id) });
      this.#tick(tick, this.state.tick(conv, m.id));
    }
    return h(
      "li",
      { "data-id": String(m.id), class: mine ? "mine" : undefined },
      h("div", { class: "meta" }, h("span", { class: "from" }, m.from), h("time", { datetime: new Date(m.at).toISOString() }, time(m.at)), tick),
      h("p", { class: "text" }, m.text),
    );
  }
}
