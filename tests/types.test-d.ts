/**
 * Compile-time checks, run by `tsc --noEmit` in CI: each `@ts-expect-error`
 * line must fail to compile, or tsc reports the directive as unused.
 */
import type { ClientFrame, ServerFrame, MessageFrame, ErrorCode } from "../src/protocol";
import { createClient } from "../src/client";

const ok: ClientFrame[] = [
  { type: "broadcast", text: "hi" },
  { type: "direct", to: "bob", text: "hi", cid: "1" },
  { type: "join", room: "dev" },
  { type: "leave", room: "dev" },
  { type: "room", room: "dev", text: "hi" },
];
void ok;

// @ts-expect-error a direct message needs `to`
const noTo: ClientFrame = { type: "direct", text: "hi" };
// @ts-expect-error text must be a string
const numText: ClientFrame = { type: "broadcast", text: 5 };
// @ts-expect-error there is no such frame type
const shout: ClientFrame = { type: "shout", text: "hi" };
// @ts-expect-error a room frame needs `room`
const noRoom: ClientFrame = { type: "room", text: "hi" };
void [noTo, numText, shout, noRoom];

declare const anyFrame: ServerFrame;
// With `?batch=1` frames come as arrays: unpack first.
const frame = Array.isArray(anyFrame) ? anyFrame[0]! : anyFrame;
if (frame.type === "message") {
  const m: MessageFrame = frame;
  const id: number = m.id;
  // @ts-expect-error `at` is epoch milliseconds, a number
  const at: string = m.at;
  // @ts-expect-error kind is broadcast, direct or room
  if (m.kind === "group") void 0;
  void [id, at];
}
// @ts-expect-error not a protocol error code
const code: ErrorCode = "oops";
void code;

const api = createClient("http://localhost:8000");
const ws = api.ws({ username: "alice" }).subscribe();
ws.send({ type: "broadcast", text: "typed" });
// @ts-expect-error the Eden socket only takes protocol frames
ws.send({ type: "broadcast", body: "wrong field" });
ws.subscribe(({ data }) => {
  // @ts-expect-error a server frame may be a ?batch=1 array: a client that does not unpack does not compile
  void data.type;
  if (Array.isArray(data)) return;
  if (data.type === "welcome") {
    const online: string[] | undefined = data.online;
    const count: number = data.onlineCount;
    void count;
    // @ts-expect-error welcome has no text
    void data.text;
    void online;
  }
});

// The SDK's frames are the app's own: what `type App` declares for its chat
// socket is exactly the protocol's ClientFrame and ServerFrame, and every
// frame the SDK sends is one the app accepts.
import type { App } from "../src/app";
import type { OutgoingFrame } from "../src/sdk/types";
import type { ChatMessage } from "../src/sdk";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type ChatSocket = App["~Routes"]["ws"][":username"]["subscribe"];
const bodyIsProtocol: Equal<ChatSocket["body"], ClientFrame> = true;
const responseIsProtocol: Equal<ChatSocket["response"][200], ServerFrame> = true;
declare const outgoing: OutgoingFrame;
const accepted: ChatSocket["body"] = outgoing;
declare const received: ChatMessage;
const asFrame: Extract<ChatSocket["response"][200], { type: "message" }> = received;
// @ts-expect-error a frame the app does not declare is not Equal
const notEqual: Equal<ChatSocket["body"], BroadcastOnly> = true;
type BroadcastOnly = Extract<ClientFrame, { type: "broadcast" }>;
void [bodyIsProtocol, responseIsProtocol, accepted, asFrame, notEqual];
