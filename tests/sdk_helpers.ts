/**
 * Helpers for the SDK and browser tests: a recorder of a client's events
 * that awaits conditions with a timeout (never a sleep), and a free port to
 * restart a server child on.
 */
import type { ChatClient, ChatClientError, ChatMessage, ChatStatus, PresenceFrame, WelcomeFrame } from "../src/sdk";

/** Everything a client emitted, in order; `until` waits for a condition on it. */
export class Recorder {
  readonly messages: ChatMessage[] = [];
  readonly statuses: ChatStatus[] = [];
  readonly welcomes: WelcomeFrame[] = [];
  readonly errors: ChatClientError[] = [];
  readonly presence: PresenceFrame[] = [];
  #waiters: (() => void)[] = [];

  constructor(readonly client: ChatClient) {
    client.on("message", (m) => this.#push(this.messages, m));
    client.on("status", (s) => this.#push(this.statuses, s));
    client.on("welcome", (w) => this.#push(this.welcomes, w));
    client.on("error", (e) => this.#push(this.errors, e));
    client.on("presence", (p) => this.#push(this.presence, p));
  }

  #push<T>(list: T[], item: T) {
    list.push(item);
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Resolves once `cond()` holds; rejects after `ms` naming `what`. */
  async until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${what}; statuses ${this.statuses.join(",")}; ${this.messages.length} messages`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the next welcome after the ones seen so far (a (re)connect completed). */
  async nextWelcome(ms = 5000): Promise<WelcomeFrame> {
    const n = this.welcomes.length;
    await this.until(() => this.welcomes.length > n, "a welcome", ms);
    return this.welcomes[n]!;
  }

  /** Texts of the messages received so far, optionally of one kind. */
  texts(kind?: ChatMessage["kind"]): string[] {
    return this.messages.filter((m) => !kind || m.kind === kind).map((m) => m.text);
  }
}

/** Waits until the client is open (its welcome arrived). */
export async function opened(rec: Recorder, ms = 5000): Promise<void> {
  await rec.until(() => rec.client.status === "open", `${rec.client.username} open`, ms);
}

/**
 * A port that was free a moment ago, for a server that must come back on the
 * same port after a restart (port 0 would pick a new one each time).
 */
export function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}
