import { afterAll, beforeAll, expect, test } from "bun:test";
import { startServer, type TestServer } from "./helpers";

let s: TestServer;
beforeAll(() => {
  s = startServer();
});
afterAll(() => s.stop());

test("interop: Node's ws client runs the tutorial flow", async () => {
  const proc = Bun.spawn(["node", `${import.meta.dir}/fixtures/interop_ws.mjs`, s.ws], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill(), 15_000);
  const [out, err, code] = [await new Response(proc.stdout).text(), await new Response(proc.stderr).text(), await proc.exited];
  clearTimeout(timer);
  expect(err).toBe("");
  expect(code).toBe(0);
  const frames = JSON.parse(out) as { data: string; isBinary: boolean }[];
  expect(frames.every((f) => !f.isBinary)).toBe(true);
  const parsed = frames.map((f) => JSON.parse(f.data));
  expect(parsed[0]).toMatchObject({ type: "welcome", user: "bob" });
  expect(parsed.find((f) => f.type === "message")).toMatchObject({ kind: "direct", from: "alice", to: "bob", text: "hi" });
}, 20_000);
