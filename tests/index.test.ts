import { expect, test } from "bun:test";
import { Client } from "./helpers";
import { spawnServer } from "./spawn";
import { tempDir } from "./tmp";
import type { MessageFrame } from "../src/protocol";

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`src/index.ts: ${signal} closes every socket with 1001 and exits 0`, async () => {
    const server = await spawnServer({ DB_PATH: `${tempDir()}/signal.db` });
    const a = await new Client(`${server.ws}/ws/alice`).ready();
    const b = await new Client(`${server.ws}/ws/bob`).ready();
    server.proc.kill(signal);
    expect((await a.closedWith()).code).toBe(1001);
    expect((await b.closedWith()).code).toBe(1001);
    expect(await server.proc.exited).toBe(0);
  });
}

test("src/index.ts: history survives a restart on the same DB_PATH", async () => {
  const db = `${tempDir()}/restart/chat.db`;
  let server = await spawnServer({ DB_PATH: db });
  const a = await new Client(`${server.ws}/ws/alice`).ready();
  a.send({ type: "broadcast", text: "remember me", cid: "r" });
  const ack = await a.next((f) => f.type === "ack");
  server.proc.kill("SIGTERM");
  await server.proc.exited;
  server = await spawnServer({ DB_PATH: db });
  try {
    const b = new Client(`${server.ws}/ws/bob?since=0`);
    const m = await b.next<MessageFrame>((f) => f.type === "message");
    expect(m).toMatchObject({ text: "remember me", id: (ack as { id: number }).id });
    b.close();
  } finally {
    server.proc.kill("SIGTERM");
    await server.proc.exited;
  }
});
