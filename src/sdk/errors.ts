import type { ChatErrorCode } from "./types.js";

/**
 * The one error class of the SDK. `code` is either the protocol's error code
 * from the server's error frame (e.g. `not_member`) or an SDK code
 * (`timeout`, `closed`, `resume_incomplete`, `token_failed`, `http`).
 */
export class ChatClientError extends Error {
  override readonly name = "ChatClientError";
  constructor(
    readonly code: ChatErrorCode,
    message: string,
    /**
     * The cid of the frame this error is about. After a `timeout` the server
     * may still have stored it: send again with `{ cid }` to retry without
     * risking a duplicate.
     */
    readonly cid?: string,
    /** With `rate_limited`: how long the server asked to wait before trying again. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}
