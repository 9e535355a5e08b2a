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
