/**
 * The published packages from a consumer's side, on a copy of the package's
 * files in a temp folder (so that nothing here touches the work tree's
 * dist/, and two runs at once do not meet). `npm pack` on the copy, which
 * has no build output, as a clean clone has none, runs the build
 * (`prepack`). The client package, packed, installs offline into an empty
 * npm project, where plain tsc with the DOM lib type-checks against it and
 * Node imports it and talks to a real server. A copy of the fixture project
 * resolves `wirechat` as an installed package would (a symlink to the
 * package copy), type-checks `wirechat/client` (its @ts-expect-error lines
 * prove wrong shapes fail) and runs it on Node; the root export tells Node
 * in one line that the server is Bun-only.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { cpSync, mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { startServer, type TestServer } from "./helpers";
import { jwtFor, startAuthServer } from "./sdk_helpers";
import { tempDir } from "./tmp";
import { BUN_ONLY, outside } from "../scripts/packaging";

const REPO = `${import.meta.dir}/..`;
const TSC = `${REPO}/node_modules/typescript/lib/tsc.js`;
const SLOW = 300_000; // the build and five tsc runs take a minute of CPU, more on a busy machine

interface Run {
  code: number;
  out: string;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (the in-process server must keep answering). */
async function run(cmd: string[], cwd: string): Promise<Run> {
  const p = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: stdout + stderr, stdout, stderr };
}

/** npm's --json answer, after whatever a lifecycle script (prepack) printed before it. */
function packJson(stdout: string): { name: string; filename: string; files: { path: string }[] } {
  const at = stdout.search(/^\[/m);
  if (at < 0) throw new Error(`no JSON in npm's answer:\n${stdout.slice(0, 2000)}`);
  return JSON.parse(stdout.slice(at))[0];
}

/** Node 20 has a WebSocket only behind a flag; Node 22 has it global. */
async function nodeWebSocketFlag(): Promise<string[]> {
  const r = await run(["node", "-p", "typeof WebSocket"], REPO);
  return r.stdout.trim() === "function" ? [] : ["--experimental-websocket"];
}

// node:fs below: no web-standard API copies a folder or makes a symlink.
/** The package's own files, as a clean clone has them (no dist/), with the repo's installed dependencies. */
function copyPackage(to: string) {
  for (const f of [
    "package.json",
    "LICENSE",
    "README.md",
    "scripts",
    "src",
    "packages/client/package.json",
    "packages/client/README.md",
    "packages/client/LICENSE",
  ]) {
    cpSync(`${REPO}/${f}`, `${to}/${f}`, { recursive: true });
  }
  symlinkSync(`${REPO}/node_modules`, `${to}/node_modules`, "dir");
}

/** The fixture project with `wirechat` installed (a symlink to the package copy), and ws and the @types it uses. */
function copyFixture(to: string, pkg: string) {
  cpSync(`${REPO}/tests/fixtures/consumer`, to, { recursive: true, filter: (f) => !f.includes("/node_modules") });
  mkdirSync(`${to}/node_modules`);
  symlinkSync(pkg, `${to}/node_modules/wirechat`, "dir");
  for (const dep of ["ws", "@types"]) symlinkSync(`${REPO}/node_modules/${dep}`, `${to}/node_modules/${dep}`, "dir");
}

const npm = (args: string[], cwd: string, cache: string) => run(["npm", ...args, "--cache", cache, "--no-audit", "--no-fund", "--no-update-notifier"], cwd);

let PKG: string;
let CLIENT: string;
let FIXTURE: string;
let server: TestServer;
let rootPack: Run;
let checks: { dom: Promise<Run>; node: Promise<Run>; wrong: Promise<Run> };
/** The empty project the packed client package was installed into. */
let project: { dir: string; install: Run; tsc: Promise<[Run, Run]> };

beforeAll(async () => {
  const tmp = tempDir();
  const cache = `${tmp}/npm-cache`;
  PKG = `${tmp}/wirechat`;
  CLIENT = `${PKG}/packages/client`;
  FIXTURE = `${tmp}/fixture`;
  copyPackage(PKG);
  // No dist/ anywhere: `npm pack` must build it (prepack).
  rootPack = await npm(["pack", "--dry-run", "--json"], PKG, cache);
  if (rootPack.code !== 0) throw new Error(`npm pack (with its prepack build) failed:\n${rootPack.out}`);

  copyFixture(FIXTURE, PKG);
  // The fixture with its expect-error markers disarmed: every line they guarded must now fail.
  await Bun.write(
    `${FIXTURE}/src/unexpected.ts`,
    (await Bun.file(`${FIXTURE}/src/consumer.ts`).text()).replaceAll("// @ts-expect-error", "// (expected error)"),
  );
  await Bun.write(`${FIXTURE}/tsconfig.unexpected.json`, JSON.stringify({ extends: "./tsconfig.json", include: ["src/unexpected.ts"] }));
  // The three tsc runs are independent: run them side by side.
  checks = {
    dom: run([process.execPath, TSC, "-p", `${FIXTURE}/tsconfig.json`], FIXTURE),
    node: run([process.execPath, TSC, "-p", `${FIXTURE}/tsconfig.node.json`], FIXTURE),
    wrong: run([process.execPath, TSC, "-p", `${FIXTURE}/tsconfig.unexpected.json`], FIXTURE),
  };

  // The client package, packed (already built: no scripts), into an empty project, offline.
  const pack = await npm(["pack", "--json", "--ignore-scripts", "--pack-destination", tmp], CLIENT, cache);
  if (pack.code !== 0) throw new Error(`npm pack of packages/client failed:\n${pack.out}`);
  const tarball = `${tmp}/${packJson(pack.stdout).filename}`;
  const dir = `${tmp}/empty-project`;
  mkdirSync(dir);
  await Bun.write(`${dir}/package.json`, JSON.stringify({ name: "empty-project", version: "1.0.0", private: true, type: "module" }, null, 2));
  const install = await npm(["install", "--offline", "--ignore-scripts", tarball], dir, cache);
  for (const f of ["consumer.ts", "tsconfig.json", "tsconfig.node.json", "run.mjs"]) await Bun.write(`${dir}/${f}`, Bun.file(`${FIXTURE}/packed/${f}`));
  project = {
    dir,
    install,
    tsc: Promise.all([run(["node", TSC, "-p", "tsconfig.json"], dir), run(["node", TSC, "-p", "tsconfig.node.json"], dir)]),
  };
  server = startServer();
}, SLOW);

afterAll(async () => {
  await Promise.allSettled([...Object.values(checks ?? {}), project?.tsc]);
  await server?.stop();
});

test("npm pack runs the build (prepack) and ships dist/, the client package's dist/ and the LICENSE, no tests", async () => {
  const files = packJson(rootPack.stdout).files.map((f) => f.path);
  for (const f of [
    "LICENSE",
    "README.md",
    "package.json",
    "dist/protocol.js",
    "dist/protocol.d.ts",
    "dist/bun_only.js",
    "src/app.ts",
    "packages/client/dist/sdk/index.js",
    "packages/client/dist/sdk/index.d.ts",
    "packages/client/dist/protocol.d.ts",
  ]) {
    expect(files).toContain(f);
  }
  expect(files.filter((f) => /^(tests|bench|scripts|data|\.ci)\//.test(f))).toEqual([]);
  expect((await Bun.file(`${PKG}/package.json`).json()).scripts.prepack).toBe("bun run build");
});

test("the LICENSE is MIT, 2026, wirechat contributors, in both packages", async () => {
  const text = await Bun.file(`${PKG}/LICENSE`).text();
  expect(text).toStartWith("MIT License\n\nCopyright (c) 2026 wirechat contributors\n");
  expect(await Bun.file(`${CLIENT}/LICENSE`).text()).toBe(text);
  for (const dir of [PKG, CLIENT]) expect((await Bun.file(`${dir}/package.json`).json()).license).toBe("MIT");
});

test("the client package has no dependency of any kind, and its files name no module outside themselves", async () => {
  const pkg = await Bun.file(`${CLIENT}/package.json`).json();
  const root = await Bun.file(`${PKG}/package.json`).json();
  expect(pkg).toMatchObject({ name: "@wirechat/client", version: root.version, type: "module", files: ["dist"] });
  for (const k of ["dependencies", "peerDependencies", "optionalDependencies", "bundleDependencies", "bundledDependencies"]) expect(pkg[k]).toBeUndefined();
  const files = await Array.fromAsync(new Bun.Glob("**/*.{js,d.ts}").scan(`${CLIENT}/dist`));
  expect(files).toContain("sdk/index.js");
  expect(files).toContain("protocol.d.ts");
  for (const f of files) expect({ f, outside: outside(await Bun.file(`${CLIENT}/dist/${f}`).text()) }).toEqual({ f, outside: [] });
});

test("the root package's declarations need neither Bun nor Elysia types", async () => {
  const files = await Array.fromAsync(new Bun.Glob("**/*.d.ts").scan(`${PKG}/dist`));
  expect(files).toContain("protocol.d.ts");
  for (const f of files) {
    expect({ f, outside: outside(await Bun.file(`${PKG}/dist/${f}`).text()) }).toEqual({
      f,
      outside: ["@sinclair/typebox"].filter(() => f === "protocol.d.ts"),
    });
  }
});

test("package.json exports: . is Bun-only, ./client is the client package's build, ./protocol the schemas, each with types", async () => {
  const pkg = await Bun.file(`${PKG}/package.json`).json();
  expect(pkg.exports["."]).toEqual({ types: "./src/app.ts", bun: "./src/app.ts", default: "./dist/bun_only.js" });
  expect(pkg.exports["./client"]).toEqual({ types: "./packages/client/dist/sdk/index.d.ts", default: "./packages/client/dist/sdk/index.js" });
  expect(pkg.exports["./protocol"]).toEqual({ types: "./dist/protocol.d.ts", default: "./dist/protocol.js" });
  const client = await Bun.file(`${CLIENT}/package.json`).json();
  expect(client.exports["."]).toEqual({ types: "./dist/sdk/index.d.ts", default: "./dist/sdk/index.js" });
  expect(client.exports["./protocol"]).toEqual({ types: "./dist/protocol.d.ts", default: "./dist/protocol.js" });
  for (const [dir, exports] of [
    [PKG, pkg.exports],
    [CLIENT, client.exports],
  ] as const) {
    for (const target of Object.values(exports as Record<string, string | Record<string, string>>).flatMap((e) =>
      typeof e === "string" ? [e] : Object.values(e),
    )) {
      expect({ target, exists: await Bun.file(`${dir}/${target}`).exists() }).toEqual({ target, exists: true });
    }
  }
});

test(
  "the packed client package installs offline into an empty npm project and brings nothing else",
  async () => {
    expect({ code: project.install.code, out: project.install.code === 0 ? "" : project.install.out }).toEqual({ code: 0, out: "" });
    expect(readdirSync(`${project.dir}/node_modules`).filter((d) => d !== ".package-lock.json")).toEqual(["@wirechat"]);
    const lock = await Bun.file(`${project.dir}/package-lock.json`).json();
    expect(Object.keys(lock.packages).filter((k) => k !== "")).toEqual(["node_modules/@wirechat/client"]);
  },
  SLOW,
);

test(
  "plain tsc with the DOM lib type-checks a file of the empty project (bundler and NodeNext resolution)",
  async () => {
    const [bundler, nodeNext] = await project.tsc;
    expect({ code: bundler.code, out: bundler.out }).toEqual({ code: 0, out: "" });
    expect({ code: nodeNext.code, out: nodeNext.out }).toEqual({ code: 0, out: "" });
  },
  SLOW,
);

test(
  "Node imports the client package (ESM) in the empty project and sends through it with its own WebSocket",
  async () => {
    const r = await run(["node", ...(await nodeWebSocketFlag()), "run.mjs", server.http], project.dir);
    expect({ code: r.code, err: r.stderr.replace(/^.*ExperimentalWarning.*\n(.*--trace-warnings.*\n)?/m, "") }).toEqual({ code: 0, err: "" });
    expect(JSON.parse(r.stdout)).toEqual({
      createChatClient: "function",
      ChatClientError: "function",
      textMax: 4000,
      subprotocol: "wirechat.v1",
      ackId: expect.any(Number),
    });
  },
  SLOW,
);

test("Node 20 without a WebSocket gets an error that says to pass one (the ws package)", async () => {
  const flag = await nodeWebSocketFlag();
  if (flag.length === 0) return; // this Node has a global WebSocket: nothing to pass
  const r = await run(
    [
      "node",
      "--input-type=module",
      "-e",
      'import { createChatClient } from "@wirechat/client"; createChatClient({ url: "http://127.0.0.1:1", username: "a" });',
    ],
    project.dir,
  );
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/No global WebSocket.*WebSocket option.*\bws\b/);
});

test(
  "Node importing the root package gets one line: the server runs on Bun",
  async () => {
    const r = await run(["node", "--input-type=module", "-e", 'await import("wirechat")'], FIXTURE);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`Error: ${BUN_ONLY}\n`);
    const bun = await run([process.execPath, "-e", 'const m = await import("wirechat"); console.log(typeof m.createApp)'], FIXTURE);
    expect({ code: bun.code, out: bun.stdout.trim() }).toEqual({ code: 0, out: "function" });
  },
  SLOW,
);

test(
  "a DOM project with no Bun types type-checks against wirechat/client",
  async () => {
    const r = await checks.dom;
    expect(r.out).toBe("");
    expect(r.code).toBe(0);
  },
  SLOW,
);

test(
  "a Node project (NodeNext resolution, ws) type-checks against wirechat/client",
  async () => {
    const r = await checks.node;
    expect(r.out).toBe("");
    expect(r.code).toBe(0);
  },
  SLOW,
);

test(
  "the fixture's @ts-expect-error lines are live: without them each guarded line fails",
  async () => {
    const src = await Bun.file(`${FIXTURE}/src/consumer.ts`).text();
    const lines = src.split("\n").flatMap((l, i) => (l.includes("@ts-expect-error") ? [i + 2] : []));
    expect(lines.length).toBeGreaterThanOrEqual(9);
    const r = await checks.wrong;
    const failing = [...new Set([...r.out.matchAll(/unexpected\.ts\((\d+),\d+\): error TS/g)].map((m) => Number(m[1])))];
    expect(failing.sort((a, b) => a - b)).toEqual(lines);
  },
  SLOW,
);

const expected = [
  { text: "123", type: "string" },
  { text: "true", type: "string" },
  { text: "2024-01-01T00:00:00Z", type: "string" },
];

test(
  "Node runs the built client; text that looks like a number, boolean or date stays a string",
  async () => {
    const r = await run(["node", `${FIXTURE}/node_ws.mjs`, server.http], FIXTURE);
    expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: expect.stringContaining('"got"') });
    const { got, history } = JSON.parse(r.stdout);
    expect(got).toEqual(expected);
    expect(history).toEqual(["2024-01-01T00:00:00Z"]);
  },
  SLOW,
);

test(
  "Node's client carries a token (subprotocol, then Authorization on HTTP) to a jwt-mode server",
  async () => {
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
  },
  SLOW,
);
