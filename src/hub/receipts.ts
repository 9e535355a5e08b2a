/**
 * Delivery and read receipts. `received` moves the user's inbox cursor to
 * exactly what a device processed and tells the senders of the direct
 * messages it covers; `read` moves a conversation's read marker and tells
 * the other side of a direct conversation and the reader's own devices.
 * Work for one user runs in order, so two devices never race a cursor.
 */
import type { Broker } from "../broker/broker";
import type { History, StoredMessage } from "../history/history";
import { ChatError } from "../errors";
import { encode } from "../protocol";
import { topics } from "./routing";

/** Direct messages one `received` looks at for receipts (the cursor moves regardless). */
const RECEIPT_SCAN = 1000;

/** The conversation a message belongs to, as `reader` sees it: `@other`, `#room` or `*`. */
export function conversationOf(m: StoredMessage, reader: string): string {
  if (m.kind === "broadcast") return "*";
  if (m.kind === "room") return `#${m.to}`;
  return `@${m.from === reader ? m.to : m.from}`;
}

export class Receipts {
  readonly #chains = new Map<string, Promise<void>>();

  constructor(
    readonly history: History,
    readonly broker: Broker,
    readonly fail: (user: string, err: unknown) => void,
  ) {}

  /** A device of `user` processed everything up to `id`. */
  received(user: string, id: number): void {
    this.#serial(user, async () => {
      const old = await this.history.cursor(user);
      if (id <= old) return;
      await this.history.setCursor(user, id);
      const newest = new Map<string, number>();
      for (const m of await this.history.inbox(user, old, id, RECEIPT_SCAN, true)) {
        if (m.from !== user) newest.set(m.from, Math.max(newest.get(m.from) ?? 0, m.id));
      }
      for (const [sender, last] of newest) {
        this.broker.publish(topics.user(sender), encode({ type: "receipt", event: "delivered", id: last, by: user }));
      }
    });
  }

  /** `user` (in `rooms`) has seen the conversation of message `id` up to it. */
  read(user: string, rooms: ReadonlySet<string>, id: number, refuse: (err: ChatError) => void): void {
    this.#serial(user, async () => {
      const [m] = await this.history.get([id]);
      const visible = m && (m.kind === "broadcast" || (m.kind === "room" ? rooms.has(m.to!) : m.to === user || m.from === user));
      if (!visible) return refuse(new ChatError("invalid_frame", `Message ${id} is not one you can read: send the id of a message you received`));
      const conv = conversationOf(m, user);
      // Already read this far: no marker moves, no receipt goes out again.
      if (id <= ((await this.history.reads(user))[conv] ?? 0)) return;
      await this.history.setRead(user, conv, id);
      this.broker.publish(topics.user(user), encode({ type: "receipt", event: "read", id, by: user, conversation: conv }));
      // The other side of a direct conversation hears of it; a room never does.
      if (m.kind === "direct" && m.to !== m.from) {
        const other = m.from === user ? m.to! : m.from;
        this.broker.publish(topics.user(other), encode({ type: "receipt", event: "read", id, by: user, conversation: `@${user}` }));
      }
    });
  }

  #serial(user: string, work: () => Promise<void>): void {
    const next = (this.#chains.get(user) ?? Promise.resolve()).then(work).catch((err) => this.fail(user, err));
    this.#chains.set(user, next);
    void next.finally(() => {
      if (this.#chains.get(user) === next) this.#chains.delete(user);
    });
  }
}
