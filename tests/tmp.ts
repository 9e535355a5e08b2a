// No web-standard API removes a folder; node:fs is the one way here.
import { mkdirSync, rmSync } from "node:fs";

const made: string[] = [];
process.on("exit", () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A new empty folder under the system temp folder, removed when the test process exits. */
export function tempDir(): string {
  const dir = `${process.env.TMPDIR ?? "/tmp"}/wirechat-test-${crypto.randomUUID()}`;
  mkdirSync(dir, { recursive: true });
  made.push(dir);
  return dir;
}
