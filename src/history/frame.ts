/**
 * A stored message as clients see it. The message log keeps this same JSON
 * as its line (plus the sender's cid), so each message is stringified once:
 * the frame sent live is the line written.
 */
import { encode, type MessageFrame } from "../protocol";
import type { StoredMessage } from "./history";

/** Turns a stored message into the frame clients see. */
export const toFrame = (m: StoredMessage): MessageFrame => ({
  type: "message",
  id: m.id,
  kind: m.kind,
  from: m.from,
  to: m.to,
  text: m.text,
  at: m.at,
});

/** The message frame's JSON, as every subscriber receives it. */
export const frameOf = (m: StoredMessage): string => encode(toFrame(m));
