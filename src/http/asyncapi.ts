/**
 * The WebSocket protocol as an AsyncAPI 3.0 document, generated from the
 * TypeBox schemas of `src/protocol.ts` (no second definition): one message
 * per frame type, what the server receives and what it sends, and the two
 * compatibility forms it also accepts (the tutorial's frame, plain text).
 */
import type { TSchema } from "@sinclair/typebox";
import { ClientFrame, HttpError, LIMITS, NAME_PATTERN, ServerFrame, SUBPROTOCOL, Text, TutorialFrame } from "../protocol";
import { socket } from "./sockets";

type Json = Record<string, unknown>;

/** A schema as plain JSON Schema: TypeBox's symbols dropped, `volatile` as the extension `x-volatile`. */
function jsonSchema(s: TSchema): Json {
  return JSON.parse(JSON.stringify(s), (_key, value) => {
    if (value && typeof value === "object" && !Array.isArray(value) && "volatile" in value) {
      const { volatile, ...rest } = value as Json;
      return { ...rest, "x-volatile": volatile };
    }
    return value;
  });
}

/** The union's members grouped by their `type` literal. */
function byType(union: TSchema): Map<string, TSchema[]> {
  const out = new Map<string, TSchema[]>();
  const visit = (s: TSchema) => {
    // A member may itself be a union (typing: to a user, or in a room).
    if ("anyOf" in s) return (s.anyOf as TSchema[]).forEach(visit);
    // The `?batch=1` array of frames.
    if ((s as { type?: string }).type === "array") return void out.set("batch", [s]);
    const t = (s as unknown as { properties: { type: { const: string } } }).properties.type.const;
    out.set(t, [...(out.get(t) ?? []), s]);
  };
  visit(union);
  return out;
}

const title = (t: string) => t.charAt(0).toUpperCase() + t.slice(1);

/** The AsyncAPI document; `version` is the server's package version. */
export function asyncApiDocument(version: string): Json {
  const messages: Json = {};
  const channelMessages: Json = {};
  const operations: Json = {};
  const add = (direction: "receive" | "send", union: TSchema) => {
    const refs: Json[] = [];
    for (const [type, members] of byType(union)) {
      const id = `${direction === "receive" ? "client" : "server"}${title(type)}`;
      const payload = members.length === 1 ? jsonSchema(members[0]!) : { anyOf: members.map(jsonSchema) };
      messages[id] = {
        name: type,
        title: `${title(type)} (${direction === "receive" ? "client to server" : "server to client"})`,
        contentType: "application/json",
        payload,
      };
      channelMessages[id] = { $ref: `#/components/messages/${id}` };
      refs.push({ $ref: `#/channels/chat/messages/${id}` });
    }
    operations[direction === "receive" ? "clientFrames" : "serverFrames"] = {
      action: direction,
      channel: { $ref: "#/channels/chat" },
      summary: direction === "receive" ? "Frames a client sends (JSON text frames)" : "Frames the server sends (JSON text frames)",
      messages: refs,
    };
  };
  add("receive", ClientFrame);
  add("send", ServerFrame);
  addLegacy(messages, channelMessages, operations);
  return {
    asyncapi: "3.0.0",
    info: {
      title: "wirechat WebSocket protocol",
      version,
      description:
        `Protocol v1. Connect to /ws/{username} (or /ws with a token). Query: since (resume after this message id), epoch, rooms (comma-separated). ` +
        `Tokens (jwt and accounts modes): Authorization: Bearer <token>, or the subprotocols ["${SUBPROTOCOL}", "bearer.<token>"]. ` +
        `Frames up to ${LIMITS.frameBytesMax} bytes; text up to ${LIMITS.textMax} characters. Frames marked x-volatile are never stored, acked or replayed. ` +
        `The operation legacyClientFrames lists the compatibility forms a client may also send (the tutorial's frame, plain text).`,
    },
    servers: {
      local: { host: "localhost:8000", protocol: "ws", description: "A server started with its defaults" },
    },
    defaultContentType: "application/json",
    channels: {
      chat: {
        address: "/ws/{username}",
        description:
          "A connect is checked before the upgrade (origin, token, name, query, limits). A refused one is not upgraded: it gets a plain HTTP answer " +
          "with the JSON body {error, message} (components.schemas.HttpError; retryAfterMs and Retry-After when waiting helps): " +
          "400 invalid username, room or query, or a bearer subprotocol offered without the wirechat one; 401 no valid token; 403 origin not allowed, or the token is for another user or room; " +
          "429 too many connections or resumes; 503 shutting down, or the token's signing keys cannot be fetched.",
        parameters: { username: { description: `The user to connect as: ${NAME_PATTERN}` } },
        messages: channelMessages,
        bindings: { ws: { method: "GET", query: jsonSchema(socket.query), bindingVersion: "0.1.0" } },
      },
    },
    operations,
    components: { messages, schemas: { HttpError: jsonSchema(HttpError) } },
  };
}

/** Whitespace then `{`: such a frame is read as JSON; anything else is plain text. */
const NOT_JSON = "^(?![ \\t\\n\\r]*\\{)";

/**
 * The v1 compatibility forms `src/decode.ts` accepts besides the typed
 * frames: the classic tutorial's `{"message","to_user"}` object and a plain
 * text frame. They carry no `cid`, so they are never acked.
 */
function addLegacy(messages: Json, channelMessages: Json, operations: Json): void {
  messages.clientTutorial = {
    name: "tutorial",
    title: "Tutorial frame (client to server, v1 compatibility)",
    summary: "The classic tutorial's frame, accepted for compatibility",
    description:
      'With a username in `to_user`, a direct message to that user; without `to_user`, or with it empty or null, a broadcast. It has no `cid`, so it is never acked: new clients send `{"type":"direct"}` or `{"type":"broadcast"}`.',
    contentType: "application/json",
    payload: jsonSchema(TutorialFrame),
  };
  messages.clientPlainText = {
    name: "plainText",
    title: "Plain text (client to server, v1 compatibility)",
    summary: "A text frame that is not JSON: a broadcast of exactly that text",
    description:
      "A text frame whose first non-space character is not `{` is a broadcast of the whole frame, as the tutorial's first client sends. It has no `cid`, so it is never acked.",
    contentType: "text/plain",
    payload: { ...jsonSchema(Text), pattern: NOT_JSON },
  };
  const ids = ["clientTutorial", "clientPlainText"];
  for (const id of ids) channelMessages[id] = { $ref: `#/components/messages/${id}` };
  operations.legacyClientFrames = {
    action: "receive",
    channel: { $ref: "#/channels/chat" },
    summary: "Compatibility forms of protocol v1 (the tutorial's clients) a client may also send",
    messages: ids.map((id) => ({ $ref: `#/channels/chat/messages/${id}` })),
  };
}
