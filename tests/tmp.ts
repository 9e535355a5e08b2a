// No web-standard API removes a folder; node:fs is the one way here.
import { mkdirSync, rmSync } from "node:fs";

const made: string[] = [];

/** Removes every folder `tempDir` made; tests/cleanup.ts runs it after the whole run (bun test runs no exit handlers). */
export function removeTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A new empty folder under the system temp folder, removed after the test run. */
export function tempDir(): string {
  const dir = `${process.env.TMPDIR ?? "/tmp"}/wirechat-test-${crypto.randomUUID()}`;
  mkdirSync(dir, { recursive: true });
  made.push(dir);
  return dir;
}

/**
 * Sets or clears a file's immutable attribute: every write to it, even on a
 * descriptor already open, is then refused with EPERM, as a failing disk
 * refuses it. Needs root on a file system with attributes (ext4, as here).
 */
export function chattr(flag: "+i" | "-i", file: string): void {
  const r = Bun.spawnSync(["chattr", flag, file], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`chattr ${flag} ${file} failed: ${r.stderr.toString().trim()} (this test needs root on ext4 or similar)`);
}
