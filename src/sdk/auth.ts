/**
 * Accounts-mode helpers: which identity mode a server runs in, register,
 * log in and refresh. Each throws a ChatClientError with the server's code
 * (`conflict`, `unauthorized`, `rate_limited` with `retryAfterMs`, ...).
 */
import type { AuthMode, AuthModeBody, Credentials, RegisteredBody, TokenBody } from "../protocol.js";
import { globalFetch, requestJson, type FetchLike } from "./http.js";
import { httpBase } from "./util.js";

/** Options of the helpers. */
export interface AuthRequestOptions {
  /** A fetch function (default: the global `fetch`). */
  fetch?: FetchLike;
}

const post = <T>(url: string, path: string, init: { body?: unknown; token?: string }, opts: AuthRequestOptions) => {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  return requestJson<T>(opts.fetch ?? globalFetch, httpBase(url) + path, {
    method: "POST",
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
};

/** The server's identity mode (`GET /auth/mode`): `open`, `jwt` or `accounts`. */
export async function authMode(url: string, opts: AuthRequestOptions = {}): Promise<AuthMode> {
  return (await requestJson<AuthModeBody>(opts.fetch ?? globalFetch, `${httpBase(url)}/auth/mode`)).mode;
}

/**
 * Creates an account (accounts mode); resolves with its username. Rejects
 * with `conflict` when the name is taken, `invalid_username`, or
 * `invalid_frame` for a password outside 8 to 128 characters.
 */
export async function register(url: string, username: string, password: string, opts: AuthRequestOptions = {}): Promise<string> {
  const body: Credentials = { username, password };
  return (await post<RegisteredBody>(url, "/auth/register", { body }, opts)).username;
}

/**
 * Logs in (accounts mode): a token for the `token` option and when it
 * expires (epoch ms). Rejects with `unauthorized` for a wrong username or
 * password, `rate_limited` after too many failures.
 */
export function login(url: string, username: string, password: string, opts: AuthRequestOptions = {}): Promise<TokenBody> {
  const body: Credentials = { username, password };
  return post<TokenBody>(url, "/auth/login", { body }, opts);
}

/** Trades a valid token for a new one (accounts mode); rejects with `unauthorized` once it has expired or was revoked. */
export function refresh(url: string, token: string, opts: AuthRequestOptions = {}): Promise<TokenBody> {
  return post<TokenBody>(url, "/auth/refresh", { token }, opts);
}
