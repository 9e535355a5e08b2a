/** History over HTTP: GET /history and GET /rooms/:room/history. */
import { describe, expect, test } from "bun:test";
import { isAck, serverPerTest } from "./helpers";
import type { HistoryBody } from "../src/protocol";

const t = serverPerTest();
const { join } = t;

describe("GET /history and GET /rooms/:room/history", () => {
  test("page broadcasts newest first, and one room's messages; bad queries get 400", async () => {
    const s = t.start();
    const a = await join("/ws/alice?rooms=dev");
    for (let i = 0; i < 5; i++) a.send({ type: "broadcast", text: `h${i}`, cid: `h${i}` });
    a.send({ type: "room", room: "dev", text: "in dev", cid: "r" });
    a.send({ type: "direct", to: "bob", text: "secret", cid: "d" });
    await a.next(isAck("d"));
    const all = (await (await fetch(`${s.http}/history`)).json()) as HistoryBody;
    expect(all.messages.map((m) => m.text)).toEqual(["h4", "h3", "h2", "h1", "h0"]);
    const page = (await (await fetch(`${s.http}/history?before=${all.messages[1]!.id}&limit=2`)).json()) as HistoryBody;
    expect(page.messages.map((m) => m.text)).toEqual(["h2", "h1"]);
    const room = (await (await fetch(`${s.http}/rooms/dev/history`)).json()) as HistoryBody;
    expect(room.messages).toEqual([expect.objectContaining({ kind: "room", to: "dev", text: "in dev" })]);
    for (const q of ["limit=0", "limit=201", "before=x"]) expect((await fetch(`${s.http}/history?${q}`)).status).toBe(400);
    expect((await fetch(`${s.http}/rooms/bad%20room/history`)).status).toBe(400);
  });
});
