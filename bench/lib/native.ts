/**
 * Builds the C load client and the ideal C server with the machine's own
 * compiler (`cc -O2`) into bench/native/build/ (gitignored), so the binaries
 * always match this machine and nothing prebuilt is committed.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** Paths of the built binaries. */
export interface NativeBins {
  wsload: string;
  wsserver: string;
}

/** Compiles both programs; throws with the compiler's output on failure. */
export function buildNative(benchDir: string): NativeBins {
  const src = join(benchDir, "native");
  const out = join(src, "build");
  mkdirSync(out, { recursive: true });
  const bins = { wsload: join(out, "wsload"), wsserver: join(out, "wsserver") };
  for (const name of ["wsload", "wsserver"] as const) {
    const r = Bun.spawnSync(["cc", "-O2", "-Wall", "-o", bins[name], join(src, `${name}.c`)], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`cc failed for ${name}.c:\n${r.stderr.toString()}`);
  }
  return bins;
}
