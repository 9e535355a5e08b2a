import { afterAll, beforeAll, expect, test } from "bun:test";
import { createClient } from "../src/client";
import { startServer, type TestServer } from "./helpers";
import type { SingleServerFrame as ServerFrame } from "../src/protocol";

let s: TestServer;
beforeAll(() => {
  s = startServer();
});
afterAll(() => s.stop());

test("createClient: typed HTTP round trip", async () => {
  const api = createClient(s.http);
  const { data, status } = await api.health.get();
  expect(status).toBe(200);
  expect(data?.status).toBe("ok");
  const online = await api.users.online.get();
  expect(online.data?.users).toEqual([]);
  const bad = await api.history.get({ query: { limit: "500" } });
  expect(bad.status).toBe(400);
});

test("createClient: typed WebSocket round trip", async () => {
  const api = createClient(s.http);
  const ws = api.ws({ username: "alice" }).subscribe();
  const frames: ServerFrame[] = [];
  const got = new Promise<ServerFrame>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(frames)}`)), 5000);
    ws.subscribe(({ data }) => {
      // The protocol's types make a client unpack `?batch=1` arrays.
      for (const f of Array.isArray(data) ? data : [data]) {
        frames.push(f);
        if (f.type === "ack") {
          clearTimeout(t);
          resolve(f);
        }
      }
    });
  });
  ws.on("open", () => ws.send({ type: "broadcast", text: "typed", cid: "e1" }));
  const ack = await got;
  expect(ack).toMatchObject({ type: "ack", cid: "e1" });
  expect(frames[0]).toMatchObject({ type: "welcome", user: "alice" });
  ws.close();
});
