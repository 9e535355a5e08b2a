/**
 * Incoming frames: parsed and checked once, with TypeBox's compiled checkers,
 * and turned into a ClientFrame or a ChatError with one short sentence.
 */
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { ChatError } from "./errors";
import {
  AuthFrame,
  BroadcastFrame,
  DirectFrame,
  ReadFrame,
  ReceivedFrame,
  TypingFrame,
  UnwatchFrame,
  WatchFrame,
  JoinFrame,
  LeaveFrame,
  RoomFrame,
  TutorialFrame,
  LIMITS,
  isValidName,
  type ClientFrame,
} from "./protocol";

const checkers = {
  broadcast: TypeCompiler.Compile(BroadcastFrame),
  direct: TypeCompiler.Compile(DirectFrame),
  join: TypeCompiler.Compile(JoinFrame),
  leave: TypeCompiler.Compile(LeaveFrame),
  room: TypeCompiler.Compile(RoomFrame),
  auth: TypeCompiler.Compile(AuthFrame),
  watch: TypeCompiler.Compile(WatchFrame),
  unwatch: TypeCompiler.Compile(UnwatchFrame),
  received: TypeCompiler.Compile(ReceivedFrame),
  read: TypeCompiler.Compile(ReadFrame),
  typing: TypeCompiler.Compile(TypingFrame),
} as const;
const checkTutorial = TypeCompiler.Compile(TutorialFrame);

type FrameType = keyof typeof checkers;
const isFrameType = (v: unknown): v is FrameType => typeof v === "string" && Object.hasOwn(checkers, v);
const NAME_RULE = "use 1 to 64 letters, digits, _, - or .";
const show = (v: string) => JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);

/**
 * Decodes one text frame. A frame whose first non-space character is `{` must
 * be a JSON object; any other text is a broadcast of exactly that text, as the
 * tutorial's first client sends plain text.
 */
export function decodeFrame(raw: string): ClientFrame {
  const start = firstNonSpace(raw);
  if (start !== 123 /* { */) return plainText(raw);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ChatError("bad_json", "Frame is not valid JSON: send one JSON object per text frame");
  }
  // `{` can only parse to an object, but a trailing payload like `{} []` already failed above.
  const obj = value as Record<string, unknown>;
  const type = obj.type;
  if (isFrameType(type)) {
    if (checkers[type].Check(obj)) {
      const text = (obj as { text?: string }).text;
      if (typeof text === "string" && !text.isWellFormed()) throw illFormed((obj as { cid?: string }).cid);
      return obj as ClientFrame;
    }
    throw explain(type, obj);
  }
  if (type === undefined && "message" in obj) return tutorial(obj);
  const cid = typeof obj.cid === "string" ? obj.cid : undefined;
  if (type === undefined) {
    throw new ChatError("invalid_frame", 'Frame has no "type": use broadcast, direct, join, leave, room, auth, watch, unwatch, received, read or typing', cid);
  }
  throw new ChatError(
    "invalid_frame",
    `Unknown frame type ${typeof type === "string" ? show(type) : typeof type}: use broadcast, direct, join, leave, room, auth, watch, unwatch, received, read or typing`,
    cid,
  );
}

function firstNonSpace(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return c;
  }
  return -1;
}

/**
 * Text with a lone UTF-16 surrogate cannot be stored as UTF-8 unchanged:
 * refused, so what is delivered live is exactly what is stored and replayed.
 */
const illFormed = (cid?: string) =>
  new ChatError("invalid_frame", "Text has a lone UTF-16 surrogate (broken \\uD800-\\uDFFF escape): send well-formed Unicode text", cid);

function plainText(raw: string): ClientFrame {
  if (raw.length === 0) throw new ChatError("invalid_frame", `Empty frame: send 1 to ${LIMITS.textMax} characters of text`);
  if (!raw.isWellFormed()) throw illFormed();
  if (raw.length > LIMITS.textMax) {
    throw new ChatError("invalid_frame", `Text is ${raw.length} characters: send at most ${LIMITS.textMax}`);
  }
  return { type: "broadcast", text: raw };
}

function tutorial(obj: Record<string, unknown>): ClientFrame {
  if (!checkTutorial.Check(obj)) {
    const to = obj.to_user;
    if (typeof obj.message !== "string" || obj.message.length === 0 || obj.message.length > LIMITS.textMax) {
      throw new ChatError("invalid_frame", `"message" must be a string of 1 to ${LIMITS.textMax} characters`);
    }
    if (typeof to === "string") throw badUser(to);
    throw new ChatError("invalid_frame", '"to_user" must be a username, empty or null');
  }
  const f = obj as TutorialFrame;
  if (!f.message.isWellFormed()) throw illFormed();
  if (f.to_user === undefined || f.to_user === null || f.to_user === "") return { type: "broadcast", text: f.message };
  if (!isValidName(f.to_user)) throw badUser(f.to_user);
  return { type: "direct", to: f.to_user, text: f.message };
}

const badUser = (to: string, cid?: string) => new ChatError("invalid_username", `Cannot send to ${show(to)}: invalid username, ${NAME_RULE}`, cid);

/** Cold path: says which field of a known frame type is wrong. */
function explain(type: FrameType, obj: Record<string, unknown>): ChatError {
  const cid = typeof obj.cid === "string" ? obj.cid : undefined;
  const bad = (msg: string) => new ChatError("invalid_frame", `Invalid ${type} frame: ${msg}`, cid);
  if ("cid" in obj && (cid === undefined || cid.length === 0 || cid.length > LIMITS.cidMax)) {
    return bad(`"cid" must be a string of 1 to ${LIMITS.cidMax} characters`);
  }
  if (type === "direct") {
    if (typeof obj.to !== "string") return bad('"to" must be a username');
    if (!isValidName(obj.to)) return badUser(obj.to, cid);
  }
  if (type === "join" || type === "leave" || type === "room") {
    if (typeof obj.room !== "string") return bad('"room" must be a room name');
    if (!isValidName(obj.room)) {
      return new ChatError("invalid_room", `Invalid room name ${show(obj.room)}: ${NAME_RULE}`, cid);
    }
  }
  if (type === "broadcast" || type === "direct" || type === "room") {
    const text = obj.text;
    if (typeof text !== "string") return bad(`"text" must be a string of 1 to ${LIMITS.textMax} characters`);
    return bad(`"text" is ${text.length} characters: send 1 to ${LIMITS.textMax}`);
  }
  if (type === "auth") return bad(`"token" must be a string of 1 to ${LIMITS.tokenMax} characters`);
  if (type === "watch" || type === "unwatch") return bad(`"users" must be a list of at most ${LIMITS.watchMax} usernames`);
  if (type === "received" || type === "read") return bad('"id" must be a message id (a whole number from 1)');
  if (type === "typing") return bad('send "to" (a username) or "room" (a room name), not both');
  return bad("fields do not match the protocol");
}
