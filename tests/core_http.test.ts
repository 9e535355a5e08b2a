/** The small HTTP routes: GET /health, GET /users/online, GET /metrics. */
import { beforeEach, describe, expect, test } from "bun:test";
import { isAck, serverPerTest } from "./helpers";

const t = serverPerTest();
const { join } = t;
beforeEach(() => void t.start());

describe("GET /health", () => {
  test("answers 200 with a small JSON body", async () => {
    const r = await fetch(`${t.s.http}/health`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: "ok", connections: 0 });
  });
});

describe("GET /users/online", () => {
  test("lists online users once each", async () => {
    await join("/ws/alice");
    await join("/ws/alice");
    await join("/ws/bob");
    const r = (await (await fetch(`${t.s.http}/users/online`)).json()) as { users: string[] };
    expect(r.users.sort()).toEqual(["alice", "bob"]);
  });
});

describe("GET /metrics", () => {
  test("counts accepted messages and connections", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "broadcast", text: "x", cid: "1" });
    await a.next(isAck("1"));
    const text = await (await fetch(`${t.s.http}/metrics`)).text();
    // One broadcast accepted (a total, or per kind), one connection.
    expect(text).toMatch(/^wirechat_messages_accepted_total(\{kind="broadcast"\})? 1$/m);
    expect(text).toMatch(/^wirechat_connections 1$/m);
  });
});
