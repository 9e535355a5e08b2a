/**
 * The WebSocket protocol as an AsyncAPI 3.0 document, generated from the
 * TypeBox schemas of `src/protocol.ts` (no second definition): one message
 * per frame type, what the server receives and what it sends.
 */
import type { TSchema } from "@sinclair/typebox";
import { ClientFrame, LIMITS, NAME_PATTERN, ServerFrame, SUBPROTOCOL } from "../protocol";

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
  return {
    asyncapi: "3.0.0",
    info: {
      title: "wirechat WebSocket protocol",
      version,
      description:
        `Protocol v1. Connect to /ws/{username} (or /ws with a token). Query: since (resume after this message id), epoch, rooms (comma-separated). ` +
        `Tokens (jwt and accounts modes): Authorization: Bearer <token>, or the subprotocols ["${SUBPROTOCOL}", "bearer.<token>"]. ` +
        `Frames up to ${LIMITS.frameBytesMax} bytes; text up to ${LIMITS.textMax} characters. Frames marked x-volatile are never stored, acked or replayed.`,
    },
    servers: {
      local: { host: "localhost:8000", protocol: "ws", description: "A server started with its defaults" },
    },
    defaultContentType: "application/json",
    channels: {
      chat: {
        address: "/ws/{username}",
        parameters: { username: { description: `The user to connect as: ${NAME_PATTERN}` } },
        messages: channelMessages,
      },
    },
    operations,
    components: { messages },
  };
}
