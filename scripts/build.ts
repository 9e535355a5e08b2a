/**
 * `bun run build`: writes `dist/` for the package's `./client` and
 * `./protocol` exports. JavaScript is bundled by Bun (ESM, no Bun APIs, so
 * browsers, Deno and Node run it); declarations come from tsc with the DOM
 * lib and no Bun types, which proves the public types need none.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const dist = join(root, "dist");
const entries = [join(root, "src/sdk/index.ts"), join(root, "src/protocol.ts")];

// node:fs because no web-standard API removes a folder.
rmSync(dist, { recursive: true, force: true });

const js = await Bun.build({
  entrypoints: entries,
  root: join(root, "src"),
  outdir: dist,
  target: "browser",
  format: "esm",
  splitting: true,
  sourcemap: "linked",
  // A dependency of the package: the consumer installs it, it is not copied in.
  external: ["@sinclair/typebox"],
});
if (!js.success) {
  for (const log of js.logs) console.error(log);
  process.exit(1);
}

// A throwaway tsconfig outside the repo: only the published entry points,
// no `types: ["bun"]`, so a Bun-only type in their API fails the build.
const tmp = mkdtempSync(join(tmpdir(), "wirechat-build-"));
const tsconfig = join(tmp, "tsconfig.json");
await Bun.write(tsconfig, JSON.stringify({
  compilerOptions: {
    target: "ES2022",
    module: "ESNext",
    moduleResolution: "bundler",
    lib: ["ES2022", "DOM"],
    types: [],
    strict: true,
    declaration: true,
    emitDeclarationOnly: true,
    rootDir: join(root, "src"),
    outDir: dist,
    skipLibCheck: false,
    isolatedModules: true,
  },
  files: entries,
}));
const tsc = Bun.spawnSync([process.execPath, join(root, "node_modules/typescript/lib/tsc.js"), "-p", tsconfig], {
  cwd: root, stdout: "inherit", stderr: "inherit",
});
rmSync(tmp, { recursive: true, force: true });
if (tsc.exitCode !== 0) {
  console.error("build: tsc could not emit the declarations");
  process.exit(1);
}
console.log(`build: wrote ${js.outputs.filter((o) => o.kind !== "sourcemap").map((o) => o.path.slice(root.length + 1)).join(", ")} and .d.ts`);
