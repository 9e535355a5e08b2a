/**
 * Where the client's bearer token comes from: a fixed string, or a function
 * the client calls before each connect and before the token expires.
 */
import { ChatClientError } from "./errors.js";
import { expiresAt } from "./jwt.js";

/** A token, or a function that resolves with a fresh one. */
export type TokenOption = string | (() => Promise<string>);

/** How much life an HTTP call wants left in the current token before it asks for a new one. */
const HTTP_MARGIN_MS = 5_000;

/**
 * True for a failure no retry can fix: the token function (or the server,
 * through it) said this user may not have a token.
 */
export const isFatal = (err: unknown): err is ChatClientError => err instanceof ChatClientError && (err.code === "unauthorized" || err.code === "forbidden");

/** The client's token: the current one, and how to get the next. */
export class TokenSource {
  #current: string | undefined;
  /** When the current token was obtained: its age when it carries no `iat`. */
  #obtainedAt = 0;
  /** One call of the function at a time: a connect and an HTTP call share its answer. */
  #inflight: Promise<string> | undefined;

  constructor(readonly option: TokenOption | undefined) {
    if (typeof option === "string") this.#set(option);
  }

  /** True when a new token can be had (the option is a function). */
  get refreshable(): boolean {
    return typeof this.option === "function";
  }

  /** The newest token obtained, if any. */
  get current(): string | undefined {
    return this.#current;
  }

  get obtainedAt(): number {
    return this.#obtainedAt;
  }

  /**
   * A fresh token from the function (a fixed string is returned as it is;
   * undefined without a token). Rejects with what the function rejected
   * with, or with a ChatClientError `token_failed` for a non-string answer.
   */
  next(): Promise<string | undefined> {
    const fn = this.option;
    if (typeof fn !== "function") return Promise.resolve(fn);
    this.#inflight ??= (async () => {
      try {
        const token = await fn();
        if (typeof token !== "string" || token === "") throw new ChatClientError("token_failed", "The token function resolved with no token");
        this.#set(token);
        return token;
      } finally {
        this.#inflight = undefined;
      }
    })();
    return this.#inflight;
  }

  /** The token for an HTTP call: the current one while it has life left, else a fresh one. */
  async forHttp(): Promise<string | undefined> {
    const cur = this.#current;
    if (cur !== undefined) {
      const exp = expiresAt(cur);
      if (!this.refreshable || exp === undefined || exp - Date.now() > HTTP_MARGIN_MS) return cur;
    }
    return this.next();
  }

  #set(token: string) {
    this.#current = token;
    this.#obtainedAt = Date.now();
  }
}
