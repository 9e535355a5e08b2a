/**
 * `bun run build` (and `prepack`): writes what the packages publish.
 *
 * - `packages/client/dist/`: the client package, `@wirechat/client` (and the
 *   root package's `wirechat/client`): the SDK bundled by Bun (ESM, no Bun
 *   APIs, no dependency: browsers, Deno, Bun and Node run it), its
 *   declarations, and `./protocol`: the protocol's limits and its types
 *   written out without TypeBox (scripts/protocol_types.ts), checked equal to
 *   the schemas' own.
 * - `dist/`: the root package's `wirechat/protocol` (the TypeBox schemas) and
 *   `bun_only.js`, what the root export `.` gives a runtime that is not Bun.
 *
 * Declarations come from the compiler with the DOM lib and no Bun types,
 * which proves the public types need none.
 */
import { mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import ts from "typescript";
import { BUN_ONLY, outside } from "./packaging";
import { checkProtocolTypes, protocolTypes } from "./protocol_types";

const root = join(import.meta.dir, "..");
const src = join(root, "src");
/** Where the outputs end up. */
const finalDist = join(root, "dist");
const finalClientDist = join(root, "packages/client/dist");
// Everything is written to a staging folder beside each (same file system,
// same depth: the source maps' relative paths stay right) and moved into
// place at the end, so that a build running at the same time (two test runs)
// never sees the other's half-written or removed output.
const dist = mkdtempSync(join(root, ".dist-"));
const clientDist = mkdtempSync(join(root, "packages/client/.dist-"));
const cleanUp = () => {
  rmSync(dist, { recursive: true, force: true });
  rmSync(clientDist, { recursive: true, force: true });
};
// Also when something throws: no staging folder is left behind (after the moves there is none to remove).
process.on("exit", cleanUp);

// node:fs because no web-standard API removes or moves a folder.
const fail = (why: string): never => {
  console.error(`build: ${why}`);
  process.exit(1);
};

async function bundle(opts: { entrypoints: string[]; outdir: string; external?: string[] }) {
  const out = await Bun.build({
    ...opts,
    root: src,
    target: "browser",
    format: "esm",
    sourcemap: "linked",
  });
  if (!out.success) {
    for (const log of out.logs) console.error(log);
    fail("Bun.build failed");
  }
  return out.outputs.filter((o) => o.kind !== "sourcemap").map((o) => o.path);
}

// The client: the SDK and the plain limits module. Nothing is external: it has no dependency.
const clientJs = await bundle({ entrypoints: [join(src, "sdk/index.ts"), join(src, "protocol/limits.ts")], outdir: clientDist });
for (const file of clientJs) {
  const bare = outside(await Bun.file(file).text());
  if (bare.length > 0) fail(`packages/client/dist/${relative(clientDist, file)} imports ${bare.join(", ")}: the client package must have no dependency`);
}
await Bun.write(join(clientDist, "protocol.js"), 'export * from "./protocol/limits.js";\n');

// The root package: the TypeBox schemas (TypeBox is a dependency of the root package), and the not-Bun answer.
const rootJs = await bundle({ entrypoints: [join(src, "protocol.ts")], outdir: dist, external: ["@sinclair/typebox"] });
await Bun.write(join(dist, "bun_only.js"), `throw new Error(${JSON.stringify(BUN_ONLY)});\n`);

// Declarations: one compiler run over both entry points, the published
// ones only, no `types: ["bun"]`, so a Bun-only type in their API fails.
const options: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
  types: [],
  strict: true,
  declaration: true,
  emitDeclarationOnly: true,
  rootDir: src,
  outDir: dist,
  // The declarations of dependencies are checked (a broken one would reach
  // consumers); TypeScript's own lib files need not be, which halves the time.
  skipLibCheck: false,
  skipDefaultLibCheck: true,
  isolatedModules: true,
};
const protocolFile = join(src, "protocol.ts");
const program = ts.createProgram([join(src, "sdk/index.ts"), protocolFile], options);
const diagnostics = ts.getPreEmitDiagnostics(program);
if (diagnostics.length > 0) {
  console.error(ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => "\n" }));
  fail("the published entry points do not type-check with the DOM lib and no Bun types");
}
const declarations = new Map<string, string>(); // path relative to src → text
const emitted = program.emit(undefined, (file, text) => declarations.set(relative(dist, file), text), undefined, true);
if (emitted.emitSkipped) fail("the compiler could not emit the declarations");

const writes: Promise<number>[] = [];
for (const [file, text] of declarations) {
  // The root package: the schemas' declarations (they name TypeBox's types).
  if (file === "protocol.d.ts" || file.startsWith("protocol/")) writes.push(Bun.write(join(dist, file), text));
  // The client: the SDK's, and the limits; its protocol.d.ts is written below, without TypeBox.
  if (file.startsWith("sdk/") || file.startsWith("protocol/")) writes.push(Bun.write(join(clientDist, file), text));
}
const types = protocolTypes(program, protocolFile);
writes.push(Bun.write(join(clientDist, "protocol.d.ts"), types.text));
await Promise.all(writes);

// The client's declarations name nothing outside the package.
for await (const file of new Bun.Glob("**/*.d.ts").scan(clientDist)) {
  const bare = outside(await Bun.file(join(clientDist, file)).text());
  if (bare.length > 0) fail(`packages/client/dist/${file} refers to ${bare.join(", ")}: the client package must have no dependency`);
}

// The written-out types are the schemas' types, exactly.
const tmp = mkdtempSync(join(tmpdir(), "wirechat-build-"));
try {
  const problems = checkProtocolTypes(protocolFile, join(clientDist, "protocol.d.ts"), types.names, join(tmp, "check.ts"), options);
  if (problems.length > 0) {
    console.error(problems.join("\n"));
    fail("packages/client/dist/protocol.d.ts differs from the schemas in src/protocol.ts (scripts/protocol_types.ts)");
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

/** Replaces `to` with `from`; another build may put its own in between, so try again. */
function swap(from: string, to: string) {
  for (let i = 0; ; i++) {
    rmSync(to, { recursive: true, force: true });
    try {
      renameSync(from, to);
      return;
    } catch (err) {
      if (i >= 20 || !["ENOTEMPTY", "EEXIST"].includes((err as { code?: string }).code ?? "")) throw err;
    }
  }
}
swap(dist, finalDist);
swap(clientDist, finalClientDist);

const shown = [
  ...clientJs.map((p) => join(finalClientDist, relative(clientDist, p))),
  join(finalClientDist, "protocol.js"),
  ...rootJs.map((p) => join(finalDist, relative(dist, p))),
  join(finalDist, "bun_only.js"),
].map((p) => relative(root, p));
console.log(`build: wrote ${shown.join(", ")} and their .d.ts (${types.names.length} protocol types without TypeBox)`);
