/**
 * The published package from a consumer's side: `bun run build` writes
 * dist/, a fixture project with plain tsc, the DOM lib and no Bun types
 * type-checks against it (its @ts-expect-error lines prove wrong shapes
 * fail), and Node runs the built client against a real server.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { lstatSync, mkdirSync, symlinkSync } from "node:fs";
import { startServer, type TestServer } from "./helpers";
import { jwtFor, startAuthServer } from "./sdk_helpers";

const ROOT = `${import.meta.dir}/..`;
const FIXTURE = `${import.meta.dir}/fixtures/consumer`;
const TSC = `${ROOT}/node_modules/typescript/lib/tsc.js`;
const SLOW = 90_000; // tsc takes seconds per project

interface Run {
  code: number;
  out: string;
  stdout: string;
}

/** Runs a command without blocking the event loop (the in-process server must keep answering). */
async function run(cmd: string[], cwd = ROOT): Promise<Run> {
  const p = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: stdout + stderr, stdout };
}

/** The fixture resolves `wirechat` as an installed package would: node_modules/wirechat, a symlink to this repo. */
function linkPackage() {
  const link = `${FIXTURE}/node_modules/wirechat`;
  try {
    if (lstatSync(link).isSymbolicLink()) return;
  } catch {}
  // node:fs: no web-standard API makes a folder or a symlink.
  mkdirSync(`${FIXTURE}/node_modules`, { recursive: true });
  symlinkSync(ROOT, link, "dir");
}

const SRC = `${FIXTURE}/src/consumer.ts`;
const COPY = `${FIXTURE}/src/unexpected.tmp.ts`;
const COPY_CONFIG = `${FIXTURE}/tsconfig.unexpected.tmp.json`;

let server: TestServer;
let checks: { dom: Promise<Run>; node: Promise<Run>; wrong: Promise<Run> };

beforeAll(async () => {
  const build = await run([process.execPath, "run", "build"]);
  if (build.code !== 0) throw new Error(`bun run build failed:\n${build.out}`);
  linkPackage();
  // The fixture with its expect-error markers disarmed: every line they guarded must now fail.
  await Bun.write(COPY, (await Bun.file(SRC).text()).replaceAll("// @ts-expect-error", "// (expected error)"));
  await Bun.write(COPY_CONFIG, JSON.stringify({ extends: "./tsconfig.json", include: ["src/unexpected.tmp.ts"] }));
  // The three tsc runs are independent: run them side by side.
  checks = {
    dom: run([process.execPath, TSC, "-p", `${FIXTURE}/tsconfig.json`]),
    node: run([process.execPath, TSC, "-p", `${FIXTURE}/tsconfig.node.json`]),
    wrong: run([process.execPath, TSC, "-p", COPY_CONFIG]),
  };
  server = startServer();
}, SLOW);

afterAll(async () => {
  await Promise.allSettled(Object.values(checks ?? {}));
  await Bun.file(COPY).delete().catch(() => {});
  await Bun.file(COPY_CONFIG).delete().catch(() => {});
  await server?.stop();
});

test("the emitted declarations need neither Bun nor Elysia types", async () => {
  const files = await Array.fromAsync(new Bun.Glob("**/*.d.ts").scan(`${ROOT}/dist`));
  expect(files).toContain("sdk/index.d.ts");
  expect(files).toContain("protocol.d.ts");
  for (const f of files) {
    const text = await Bun.file(`${ROOT}/dist/${f}`).text();
    expect({ f, bad: text.match(/from ["'](bun|elysia|@elysiajs\/[^"']+)["']|reference types=["']bun/g) }).toEqual({ f, bad: null });
  }
});

test("package.json exports point ./client and ./protocol at the built files, with types", async () => {
  const pkg = await Bun.file(`${ROOT}/package.json`).json();
  for (const [key, base] of [["./client", "dist/sdk/index"], ["./protocol", "dist/protocol"]]) {
    expect(pkg.exports[key!]).toEqual({ types: `./${base}.d.ts`, default: `./${base}.js` });
    expect(await Bun.file(`${ROOT}/${base}.js`).exists()).toBe(true);
  }
});

test("a DOM project with no Bun types type-checks against wirechat/client", async () => {
  const r = await checks.dom;
  expect(r.out).toBe("");
  expect(r.code).toBe(0);
}, SLOW);

test("a Node project (NodeNext resolution, ws) type-checks against wirechat/client", async () => {
  const r = await checks.node;
  expect(r.out).toBe("");
  expect(r.code).toBe(0);
}, SLOW);

test("the fixture's @ts-expect-error lines are live: without them each guarded line fails", async () => {
  const src = await Bun.file(SRC).text();
  const lines = src.split("\n").flatMap((l, i) => (l.includes("@ts-expect-error") ? [i + 2] : []));
  expect(lines.length).toBeGreaterThanOrEqual(9);
  const r = await checks.wrong;
  const failing = [...new Set([...r.out.matchAll(/unexpected\.tmp\.ts\((\d+),\d+\): error TS/g)].map((m) => Number(m[1])))];
  expect(failing.sort((a, b) => a - b)).toEqual(lines);
}, SLOW);

const expected = [
  { text: "123", type: "string" },
  { text: "true", type: "string" },
  { text: "2024-01-01T00:00:00Z", type: "string" },
];

test("Node runs the built client; text that looks like a number, boolean or date stays a string", async () => {
  const r = await run(["node", `${FIXTURE}/node_ws.mjs`, server.http], FIXTURE);
  expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: expect.stringContaining('"got"') });
  const { got, history } = JSON.parse(r.stdout);
  expect(got).toEqual(expected);
  expect(history).toEqual(["2024-01-01T00:00:00Z"]);
}, SLOW);

test("Node's client carries a token (subprotocol, then Authorization on HTTP) to a jwt-mode server", async () => {
  const jwt = startAuthServer("jwt");
  try {
    const r = await run(["node", `${FIXTURE}/node_ws.mjs`, jwt.http, await jwtFor("node-consumer")], FIXTURE);
    expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: expect.stringContaining('"got"') });
    const { got, history } = JSON.parse(r.stdout);
    expect(got).toEqual(expected);
    expect(history).toEqual(["2024-01-01T00:00:00Z"]);
  } finally {
    await jwt.stop();
  }
}, SLOW);
