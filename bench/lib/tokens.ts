/**
 * Identity for the benchmark: wirechat runs with AUTH=jwt, as in production,
 * so every connection of the load clients carries `Authorization: Bearer
 * <token>`. One random HS256 secret per bench run (never reused, never
 * written to the repository) and one token per connection index, written to
 * a file whose line i is the token of user u<i>, for wsload.c (--tokens) to
 * read. Signing happens here, with jose, so no JWT
 * code lives in the C client.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";

/** The secret wirechat verifies with and the file of tokens signed with it. */
export interface BenchAuth {
  /** JWT_SECRET for the wirechat processes: 43 base64url characters (32 random bytes). */
  secret: string;
  /** Path of the token file: line i is the token of u<i>. */
  tokensFile: string;
  /** Removes the token file. */
  dispose(): void;
}

/** Signs tokens for u0..u<n-1>, valid for 4 hours: longer than any run, so no connection expires mid-run. */
export async function makeBenchAuth(n: number): Promise<BenchAuth> {
  const secret = randomBytes(32).toString("base64url");
  const key = new TextEncoder().encode(secret);
  const exp = Math.floor(Date.now() / 1000) + 4 * 3600;
  const tokens = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      new SignJWT({}).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setSubject(`u${i}`).setIssuedAt().setExpirationTime(exp).sign(key),
    ),
  );
  const dir = mkdtempSync(join(tmpdir(), "wirechat-bench-tokens-"));
  const tokensFile = join(dir, "tokens.txt");
  writeFileSync(tokensFile, `${tokens.join("\n")}\n`, { mode: 0o600 });
  return { secret, tokensFile, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
