/**
 * What the page knows: conversations (everyone, rooms, direct) with their
 * messages in id order, and which one is shown. No DOM here.
 */
import type { ChatMessage } from "../sdk/index.js";

/** `everyone`, `room:NAME` or `dm:USER`. */
export type ConvKey = string;

export interface Conversation {
  key: ConvKey;
  kind: "everyone" | "room" | "direct";
  /** The room name or the other user; empty for everyone. */
  name: string;
  messages: ChatMessage[];
  unread: number;
}

export const EVERYONE: ConvKey = "everyone";
export const roomKey = (room: string): ConvKey => `room:${room}`;
export const dmKey = (user: string): ConvKey => `dm:${user}`;

/** The page's conversations and the current one. */
export class ChatState {
  readonly convs = new Map<ConvKey, Conversation>();
  current: ConvKey = EVERYONE;

  constructor(readonly me: string) {
    this.open(EVERYONE);
  }

  /** The conversation for `key`, created empty when new. */
  open(key: ConvKey): Conversation {
    let c = this.convs.get(key);
    if (!c) {
      const [kind, name] = key === EVERYONE ? (["everyone", ""] as const) : key.startsWith("room:") ? (["room", key.slice(5)] as const) : (["direct", key.slice(3)] as const);
      c = { key, kind, name, messages: [], unread: 0 };
      this.convs.set(key, c);
    }
    return c;
  }

  /** Where a message belongs. */
  keyOf(m: ChatMessage): ConvKey {
    if (m.kind === "broadcast") return EVERYONE;
    if (m.kind === "room") return roomKey(m.to);
    return dmKey(m.from === this.me ? m.to : m.from);
  }

  /**
   * Adds a message in id order (live messages, replays and history pages may
   * interleave); false when that id is already there. History pages pass
   * `unread: false`: old messages are not news.
   */
  add(m: ChatMessage, unread = true): { conv: Conversation; added: boolean } {
    const conv = this.open(this.keyOf(m));
    const list = conv.messages;
    let i = list.length;
    while (i > 0 && list[i - 1]!.id > m.id) i--;
    if (i > 0 && list[i - 1]!.id === m.id) return { conv, added: false };
    list.splice(i, 0, m);
    if (unread && conv.key !== this.current && m.from !== this.me) conv.unread++;
    return { conv, added: true };
  }

  /** Removes a room's conversation after leaving it. */
  drop(key: ConvKey): void {
    this.convs.delete(key);
    if (this.current === key) this.current = EVERYONE;
  }
}
