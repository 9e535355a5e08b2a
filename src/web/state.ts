/**
 * What the page knows: conversations (everyone, rooms, direct) with their
 * messages in id order, their unread counts, how far the other side of a
 * direct conversation has received and read, and which one is shown. No DOM
 * here.
 */
import type { ChatMessage, ConversationKey } from "../sdk/index.js";

/** `everyone`, `room:NAME` or `dm:USER`. */
export type ConvKey = string;

export interface Conversation {
  key: ConvKey;
  kind: "everyone" | "room" | "direct";
  /** The room name or the other user; empty for everyone. */
  name: string;
  messages: ChatMessage[];
  /** Unread messages, as the SDK counts them (the server's count, then kept current). */
  unread: number;
  /** The newest unread id the SDK knows of (0: none): what showing the conversation marks read. */
  unreadId: number;
  /** Direct: the other user has received (delivered) and read my messages up to these ids. */
  delivered: number;
  read: number;
}

/** How far a direct conversation's partner received and read: `[delivered, read]`. */
export type Ticks = readonly [number, number];

export const EVERYONE: ConvKey = "everyone";
export const roomKey = (room: string): ConvKey => `room:${room}`;
export const dmKey = (user: string): ConvKey => `dm:${user}`;

/** The SDK's name of a conversation (`*`, `#room`, `@user`). */
export function sdkKey(c: Conversation): ConversationKey {
  return c.kind === "everyone" ? "*" : c.kind === "room" ? `#${c.name}` : `@${c.name}`;
}

/** The page's key of an SDK conversation name. */
export function pageKey(conv: ConversationKey): ConvKey {
  return conv === "*" ? EVERYONE : conv.startsWith("#") ? roomKey(conv.slice(1)) : dmKey(conv.slice(1));
}

/** The page's conversations and the current one. */
export class ChatState {
  readonly convs = new Map<ConvKey, Conversation>();
  current: ConvKey = EVERYONE;

  /** `ticks`: what the browser remembered of each partner's receipts. */
  constructor(
    readonly me: string,
    readonly ticks: ReadonlyMap<string, Ticks> = new Map(),
  ) {
    this.open(EVERYONE);
  }

  /** The conversation for `key`, created empty when new. */
  open(key: ConvKey): Conversation {
    let c = this.convs.get(key);
    if (!c) {
      const [kind, name] =
        key === EVERYONE ? (["everyone", ""] as const) : key.startsWith("room:") ? (["room", key.slice(5)] as const) : (["direct", key.slice(3)] as const);
      const [delivered, read] = kind === "direct" ? (this.ticks.get(name) ?? [0, 0]) : [0, 0];
      c = { key, kind, name, messages: [], unread: 0, unreadId: 0, delivered, read };
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
   * interleave); false when that id is already there.
   */
  add(m: ChatMessage): { conv: Conversation; added: boolean } {
    const conv = this.open(this.keyOf(m));
    const list = conv.messages;
    let i = list.length;
    while (i > 0 && list[i - 1]!.id > m.id) i--;
    if (i > 0 && list[i - 1]!.id === m.id) return { conv, added: false };
    // Only what the message carries: the SDK's `replayed` flag is not kept (nor stored by the tab).
    const plain: ChatMessage & { replayed?: boolean } = { ...m };
    delete plain.replayed;
    list.splice(i, 0, plain);
    return { conv, added: true };
  }

  /** What a message of mine in a direct conversation has reached: `sent`, `delivered` or `read`. */
  tick(conv: Conversation, id: number): "sent" | "delivered" | "read" {
    return id <= conv.read ? "read" : id <= conv.delivered ? "delivered" : "sent";
  }

  /** Removes a room's conversation after leaving it. */
  drop(key: ConvKey): void {
    this.convs.delete(key);
    if (this.current === key) this.current = EVERYONE;
  }
}
