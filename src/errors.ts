import type { ErrorCode } from "./protocol";

/**
 * The one error class of wirechat: `code` is a literal from the protocol's
 * error-code union, `message` one sentence that says what happened and what
 * to do. Thrown on the server, turned into an error frame for the client.
 */
export class ChatError extends Error {
  override readonly name = "ChatError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The client's id of the frame this error answers, when it carried one. */
    readonly cid?: string,
    /** With `rate_limited` or `unavailable`: how long to wait before trying again. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}
