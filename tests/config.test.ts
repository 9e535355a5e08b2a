import { describe, expect, test } from "bun:test";
import { ConfigError, DEFAULTS, loadConfig } from "../src/config";

describe("loadConfig", () => {
  test("loadConfig: empty environment gives the defaults", () => {
    expect(loadConfig({})).toEqual(DEFAULTS);
    expect(DEFAULTS.port).toBe(8000);
    expect(DEFAULTS.host).toBe("127.0.0.1");
    expect(DEFAULTS.auth.mode).toBe("open");
    expect(DEFAULTS.limits).toEqual({ msgRate: 10, msgBurst: 50, maxConnectionsPerUser: 20, maxConnectionsPerIp: 0, replayConcurrency: 2 });
  });

  test("loadConfig: reads every variable", () => {
    const c = loadConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      DB_PATH: ":memory:",
      DB_SYNC: "FULL",
      REPLAY_LIMIT: "5",
      HISTORY_MAX_MESSAGES: "100",
      HISTORY_MAX_AGE: "12h",
      GC_PACE: "0",
    });
    expect(c).toEqual({
      ...DEFAULTS,
      port: 0,
      host: "127.0.0.1",
      dbPath: ":memory:",
      dbSync: "full",
      replayLimit: 5,
      historyMaxMessages: 100,
      historyMaxAgeMs: 12 * 3600_000,
      gcPace: 0,
    });
    expect(loadConfig({ HISTORY_MAX_AGE: "90m" }).historyMaxAgeMs).toBe(90 * 60_000);
    expect(loadConfig({ HISTORY_MAX_AGE: "30d" }).historyMaxAgeMs).toBe(30 * 86_400_000);
  });

  const bad: [Record<string, string>, string][] = [
    [{ PORT: "eighty" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ PORT: "-1" }, "PORT"],
    [{ HOST: "a b" }, "HOST"],
    [{ DB_SYNC: "sometimes" }, "DB_SYNC"],
    [{ REPLAY_LIMIT: "0" }, "REPLAY_LIMIT"],
    [{ HISTORY_MAX_MESSAGES: "1.5" }, "HISTORY_MAX_MESSAGES"],
    [{ HISTORY_MAX_AGE: "forever" }, "HISTORY_MAX_AGE"],
    [{ AUTH: "magic" }, "AUTH"],
    [{ AUTH: "jwt" }, "AUTH"],
    [{ HOST: "0.0.0.0" }, "HOST"],
    [{ MSG_RATE: "fast" }, "MSG_RATE"],
    [{ MSG_BURST: "0" }, "MSG_BURST"],
    [{ MAX_CONNECTIONS_PER_USER: "-2" }, "MAX_CONNECTIONS_PER_USER"],
    [{ JWT_SECRET: "too-short" }, "JWT_SECRET"],
    [{ AUTH: "jwt", JWT_JWKS_URL: "ftp://keys" }, "JWT_JWKS_URL"],
    [{ ALLOWED_ORIGINS: "chat.example.com" }, "ALLOWED_ORIGINS"],
    [{ TRUST_PROXY: "many" }, "TRUST_PROXY"],
    [{ ADMIN_TOKEN: "short" }, "ADMIN_TOKEN"],
    [{ GC_PACE: "often" }, "GC_PACE"],
    [{ GC_PACE: "-1" }, "GC_PACE"],
  ];
  for (const [env, name] of bad) {
    test(`loadConfig: a bad ${name} (${JSON.stringify(env)}) throws one line naming it`, () => {
      let err: unknown;
      try {
        loadConfig(env);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).toStartWith(name);
      expect(message).not.toContain("\n");
    });
  }
});

test("src/index.ts: a bad value stops start-up with one line naming the variable", async () => {
  const proc = Bun.spawn([process.execPath, "run", `${import.meta.dir}/../src/index.ts`], {
    env: { ...process.env, PORT: "eighty" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [err, code] = [await new Response(proc.stderr).text(), await proc.exited];
  expect(code).toBe(2);
  expect(err.trim().split("\n")).toEqual([expect.stringContaining('PORT="eighty" is invalid')]);
});
