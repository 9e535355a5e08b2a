/**
 * Helpers for the SDK and browser tests: a recorder of a client's events
 * that awaits conditions with a timeout (never a sleep), a free port to
 * restart a server child on, and in-process servers with identity.
 */
import { SignJWT } from "jose";
import type { AppDeps, AuthDeps } from "../src/app";
import { CLOCK_TOLERANCE_S } from "../src/auth/auth";
import { Accounts, ACCOUNTS_ISSUER } from "../src/auth/accounts";
import { createJwtVerifier } from "../src/auth/auth_jwt";
import { createSqliteAuthStore } from "../src/auth/store_sqlite";
import type { Logger } from "../src/log";
import type {
  ChatClient,
  ChatClientError,
  ChatMessage,
  ChatStatus,
  IncomingMessage,
  PresenceFrame,
  ReceiptFrame,
  TypingEvent,
  UnreadCount,
  WelcomeFrame,
} from "../src/sdk";
import { Signal, startServer, waitUntil, type TestServer } from "./helpers";

/** Everything a client emitted, in order; `until` waits for a condition on it. */
export class Recorder {
  readonly messages: IncomingMessage[] = [];
  readonly statuses: ChatStatus[] = [];
  readonly welcomes: WelcomeFrame[] = [];
  readonly errors: ChatClientError[] = [];
  readonly presence: PresenceFrame[] = [];
  readonly receipts: ReceiptFrame[] = [];
  readonly typing: TypingEvent[] = [];
  readonly unread: UnreadCount[] = [];
  readonly #changed = new Signal();

  constructor(readonly client: ChatClient) {
    client.on("message", (m) => this.#push(this.messages, m));
    client.on("status", (s) => this.#push(this.statuses, s));
    client.on("welcome", (w) => this.#push(this.welcomes, w));
    client.on("error", (e) => this.#push(this.errors, e));
    client.on("presence", (p) => this.#push(this.presence, p));
    client.on("receipt", (r) => this.#push(this.receipts, r));
    client.on("typing", (t) => this.#push(this.typing, t));
    client.on("unread", (u) => this.#push(this.unread, u));
  }

  /** The client's unread count of one conversation now (0 when it lists none). */
  unreadOf(conversation: string): number {
    return this.client.unread.find((u) => u.conversation === conversation)?.count ?? 0;
  }

  #push<T>(list: T[], item: T) {
    list.push(item);
    this.#changed.notify();
  }

  /** Resolves once `cond()` holds; rejects after `ms` naming `what`. */
  async until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    await waitUntil(cond, () => `${what}; statuses ${this.statuses.join(",")}; ${this.messages.length} messages`, { ms, signal: this.#changed });
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

/** The HS256 secret of the jwt-mode test servers (32+ characters, as the server requires). */
export const JWT_TEST_SECRET = "sdk-test-secret-0123456789abcdef-0123";
export const ADMIN_TEST_TOKEN = "sdk-admin-token-0123456789";

/**
 * An in-process server in jwt or accounts mode, built the way src/index.ts
 * builds it (a SQLite auth store, jose verification, the admin API), on
 * port 0; `deps` adds or overrides app options (limits, token lifetime).
 */
export function startAuthServer(mode: "jwt" | "accounts", deps: Partial<AppDeps> & { tokenTtlMs?: number } = {}): TestServer & { accounts?: Accounts } {
  const store = createSqliteAuthStore(":memory:");
  const auth: AuthDeps = { mode, revocations: store.revocations };
  if (mode === "jwt") {
    auth.verifier = createJwtVerifier({ mode, secrets: [JWT_TEST_SECRET], revocations: store.revocations });
  } else {
    const key = crypto.getRandomValues(new Uint8Array(32));
    auth.accounts = new Accounts({ store: store.accounts, revocations: store.revocations, key, tokenTtlMs: deps.tokenTtlMs ?? 3_600_000 });
    auth.verifier = createJwtVerifier({ mode, secrets: [key], issuer: ACCOUNTS_ISSUER, revocations: store.revocations });
  }
  const quiet: Logger = { info() {}, warn() {}, error() {} };
  const server = startServer({ auth, adminToken: ADMIN_TEST_TOKEN, log: quiet, ...deps });
  return {
    ...server,
    accounts: auth.accounts,
    async stop() {
      await server.stop();
      store.close();
    },
  };
}

/**
 * A jwt-mode token for `sub`, signed with the test secret. `validForS`: how
 * long the server will accept it from now; `lifetimeS`: exp - iat, what the
 * client schedules its refresh from. The server accepts a token until
 * exp + 30 s (its clock tolerance), so a short-lived token that the server
 * closes on within seconds has its exp (and iat) in the past.
 */
export function jwtFor(sub: string, o: { validForS?: number; lifetimeS?: number; iat?: number } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + (o.validForS ?? 3600) - CLOCK_TOLERANCE_S;
  const iat = o.iat ?? exp - (o.lifetimeS ?? 3600);
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(JWT_TEST_SECRET));
}
