/**
 * What a request must pass before it reaches the chat: the browser origin,
 * the bearer token (jwt and accounts modes), and the connection and replay
 * limits. Every refusal is a short JSON body with a protocol error code.
 */
import type { Server } from "bun";
import { bearerToken, roomAllowed, type Identity, type TokenVerifier } from "../auth/auth";
import { ChatError } from "../errors";
import type { Hub } from "../hub/hub";
import type { Session } from "../hub/types";
import type { AuthMode, ErrorCode } from "../protocol";

export interface GateOptions {
  mode: AuthMode;
  verifier?: TokenVerifier;
  /** Browser origins allowed; undefined: the request's own host only. */
  allowedOrigins?: readonly string[] | "*";
  /** Proxy hops whose X-Forwarded-For entries are trusted. */
  trustProxy: number;
  maxConnectionsPerUser: number;
  maxConnectionsPerIp: number;
  replayConcurrency: number;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  unauthorized: 401,
  forbidden: 403,
  rate_limited: 429,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

/** The HTTP answer for a refusal: the error code's status (400 by default) and `{error, message}`. */
export function refusal(err: ChatError): Response {
  const body: { error: ErrorCode; message: string; retryAfterMs?: number } = { error: err.code, message: err.message };
  const headers: Record<string, string> = {};
  if (err.retryAfterMs !== undefined) {
    body.retryAfterMs = err.retryAfterMs;
    headers["retry-after"] = String(Math.ceil(err.retryAfterMs / 1000));
  }
  if (err.code === "unauthorized") headers["www-authenticate"] = 'Bearer realm="wirechat"';
  return Response.json(body, { status: STATUS[err.code] ?? 400, headers });
}

/** The client's address: the socket's, or with `trustProxy` hops the X-Forwarded-For entry they vouch for. */
export function clientAddress(request: Request, server: Server<unknown> | null | undefined, trustProxy: number): string {
  const peer = server?.requestIP(request)?.address ?? "unknown";
  if (trustProxy === 0) return peer;
  const chain = (request.headers.get("x-forwarded-for") ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  // Each trusted proxy appends the address it saw: the Nth from the right is the client.
  return chain[chain.length - trustProxy] ?? chain[0] ?? peer;
}

/** True when a browser `Origin` (or its absence) may connect. */
export function originAllowed(headers: Headers, allowed: GateOptions["allowedOrigins"]): boolean {
  const origin = headers.get("origin");
  if (origin === null || allowed === "*") return true;
  if (allowed !== undefined) return allowed.includes(origin);
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  return host !== "" && host === headers.get("host");
}

/** Creates the gate's checks over one hub. */
export function createGate(hub: Hub, o: GateOptions) {
  /**
   * The caller of an HTTP request: undefined in open mode; in jwt and
   * accounts modes a verified identity, or a rejection coded `unauthorized`.
   */
  const identify = async (headers: Headers): Promise<Identity | undefined> => {
    if (o.mode === "open" || !o.verifier) return undefined;
    const token = bearerToken(headers);
    if (token === undefined) throw new ChatError("unauthorized", "Missing token: send Authorization: Bearer <token>");
    return o.verifier.verify(token);
  };

  /**
   * Checks a WebSocket connect. `named` is the user in the path
   * (`/ws/:username`), undefined for `/ws`; `guest` names an open-mode `/ws`.
   */
  const admit = async (
    request: Request,
    server: Server<unknown> | null | undefined,
    named: string | undefined,
    guest: () => string,
    opts: { since?: number; epoch?: string; rooms: string[]; batch?: boolean },
  ): Promise<Session> => {
    if (hub.draining) throw new ChatError("unavailable", "The server is shutting down: connect again in a moment (another node takes you)", undefined, 1000);
    if (!originAllowed(request.headers, o.allowedOrigins)) {
      throw new ChatError("forbidden", "This origin may not connect: the server's ALLOWED_ORIGINS does not list it");
    }
    const identity = await identify(request.headers);
    const user = identity ? identity.user : (named ?? guest());
    if (identity && named !== undefined && named !== identity.user) {
      throw new ChatError("forbidden", `The token is for "${identity.user}", not "${named}": connect to /ws/${identity.user} or /ws`);
    }
    const denied = identity && opts.rooms.find((r) => !roomAllowed(identity.rooms, r));
    if (denied) throw new ChatError("forbidden", `Your token does not allow room "${denied}"`);
    if (o.maxConnectionsPerUser > 0 && hub.sockets.connectionsOf(user) >= o.maxConnectionsPerUser) {
      throw new ChatError("rate_limited", `"${user}" has ${o.maxConnectionsPerUser} connections open: close one first`, undefined, 1000);
    }
    const ip = clientAddress(request, server, o.trustProxy);
    if (o.maxConnectionsPerIp > 0 && hub.sockets.connectionsFrom(ip) >= o.maxConnectionsPerIp) {
      throw new ChatError("rate_limited", `Too many connections from this address (at most ${o.maxConnectionsPerIp})`, undefined, 1000);
    }
    if (opts.since !== undefined && o.replayConcurrency > 0 && hub.sockets.replaysOf(user) >= o.replayConcurrency) {
      throw new ChatError("rate_limited", `"${user}" already has ${o.replayConcurrency} resumes in progress: retry in a moment`, undefined, 1000);
    }
    const session: Session = { user, since: opts.since, rooms: opts.rooms, ip };
    if (opts.epoch !== undefined) session.epoch = opts.epoch;
    if (opts.batch) session.batch = true;
    if (identity) session.identity = identity;
    return session;
  };

  /** The client address of a request, as the limits count it. */
  const address = (request: Request, server: Server<unknown> | null | undefined) => clientAddress(request, server, o.trustProxy);

  return { identify, admit, address };
}
