/**
 * The Origin check before the upgrade (cross-site WebSocket hijacking): by
 * default only an Origin whose host is the request's Host, or none; with
 * ALLOWED_ORIGINS the listed origins, or any with `*`.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { probe, upgrade } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";

setDefaultTimeout(20_000);

let plain: ServerProcess; // ALLOWED_ORIGINS unset
let listed: ServerProcess; // two origins
let any: ServerProcess; // *
const alive = (s: ServerProcess) => probe(`${s.ws}/ws/probe-${crypto.randomUUID().slice(0, 8)}`);

beforeAll(async () => {
  [plain, listed, any] = await Promise.all([
    spawnServer({ DB_PATH: `${tempDir()}/origin-default.db` }),
    spawnServer({ ALLOWED_ORIGINS: "https://chat.example.com,https://other.example.org", DB_PATH: `${tempDir()}/origin-list.db` }),
    spawnServer({ ALLOWED_ORIGINS: "*", DB_PATH: `${tempDir()}/origin-any.db` }),
  ]);
});
afterAll(async () => {
  await Promise.all([plain?.stop(), listed?.stop(), any?.stop()]);
});

async function allowed(s: ServerProcess, headers: Record<string, string>, path = "/ws/alice") {
  const r = await upgrade(`${s.ws}${path}`, headers);
  expect(r.status).toBe(101);
  expect(JSON.parse(r.frame!)).toMatchObject({ type: "welcome" });
}
async function forbidden(s: ServerProcess, headers: Record<string, string>, path = "/ws/alice") {
  const r = await upgrade(`${s.ws}${path}`, headers);
  expect(r.status).toBe(403);
  expect(JSON.parse(r.body)).toMatchObject({ error: "forbidden" });
}

describe("Origin, ALLOWED_ORIGINS unset", () => {
  test("an Origin whose host equals the Host header is accepted", async () => {
    await allowed(plain, { Origin: `http://127.0.0.1:${plain.port}` });
    await allowed(plain, { Origin: `http://127.0.0.1:${plain.port}` }, "/ws");
    await alive(plain);
  });

  test("no Origin (a non-browser client) is accepted", async () => {
    await allowed(plain, {});
    await alive(plain);
  });

  test("a foreign Origin → 403 forbidden", async () => {
    for (const origin of [
      "https://evil.example",
      "null",
      `http://127.0.0.1:${plain.port}.evil.example`,
      `http://evil.example/127.0.0.1:${plain.port}`,
      `http://127.0.0.1:${plain.port + 1 === 65536 ? 1 : plain.port + 1}`,
      `http://localhost:${plain.port}`,
      "not a url",
    ]) {
      await forbidden(plain, { Origin: origin });
      await forbidden(plain, { Origin: origin }, "/ws");
    }
    await alive(plain);
  });
});

describe("Origin, ALLOWED_ORIGINS=a list", () => {
  test("a listed origin is accepted", async () => {
    await allowed(listed, { Origin: "https://chat.example.com" });
    await allowed(listed, { Origin: "https://other.example.org" });
    await alive(listed);
  });

  test("an origin not on the list → 403 forbidden", async () => {
    for (const origin of ["https://evil.example", "http://chat.example.com", "https://chat.example.com.evil.example", "https://sub.chat.example.com", "null"]) {
      await forbidden(listed, { Origin: origin });
    }
    await alive(listed);
  });

  test("no Origin (a non-browser client) is still accepted", async () => {
    await allowed(listed, {});
    await alive(listed);
  });
});

describe("Origin, ALLOWED_ORIGINS=*", () => {
  test("any origin is accepted", async () => {
    for (const origin of ["https://evil.example", "null", "https://chat.example.com"]) await allowed(any, { Origin: origin });
    await allowed(any, {});
    await alive(any);
  });
});
