import { afterEach, expect, test } from "bun:test";
import { websocket as elysiaDispatch } from "elysia/ws";
import { assertElysiaDispatch } from "../../src/hub/dispatch";
import { connect, isAck, startServer, type TestServer } from "../helpers";

let s: TestServer | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

test("assertElysiaDispatch: passes on the pinned Elysia", () => {
  expect(() => assertElysiaDispatch()).not.toThrow();
});

test("assertElysiaDispatch: fails loudly when the dispatcher stops forwarding to ws.data", () => {
  const d = elysiaDispatch as unknown as { message: (...a: unknown[]) => void };
  const original = d.message;
  d.message = () => {};
  try {
    expect(() => assertElysiaDispatch()).toThrow("wirechat's socket shortcut");
  } finally {
    d.message = original;
  }
});

test("Hub.open: frames reach the hub's Connection through Elysia's own dispatcher", async () => {
  s = startServer();
  const a = await connect(`${s.ws}/ws/alice`);
  // Only the hub answers a join with an ack: the frame took the shortcut into the Connection.
  a.send({ type: "join", room: "dev", cid: "j" });
  expect(await a.next(isAck("j"))).toEqual({ type: "ack", cid: "j" });
  a.close();
});
