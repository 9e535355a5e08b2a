import { Redis, redisKeys } from "../cluster/redis";
import type { AccountStore, Revocations } from "./store";

/**
 * Accounts, revocations and the accounts' signing key in Redis, shared by
 * every node: `{p}accounts` (username → hash), `{p}revoked` (user → epoch
 * seconds), `{p}secret:accounts_hs256`.
 */
export async function createRedisAuthStore(url: string, prefix = "wc:"): Promise<{ accounts: AccountStore; revocations: Revocations; close(): void }> {
  const r = new Redis(url);
  await r.connect();
  const keys = redisKeys(prefix);
  const accountsKey = keys.accounts;
  const revokedKey = keys.revoked;
  const secretKey = keys.accountsKey;
  let key: Uint8Array | undefined;

  const accounts: AccountStore = {
    // HSETNX: of two nodes registering one name at once, exactly one wins.
    create: async (username, hash) => Number(await r.send("HSETNX", [accountsKey, username, hash])) === 1,
    passwordHash: async (username) => ((await r.send("HGET", [accountsKey, username])) as string | null) ?? undefined,
    async signingKey() {
      if (key) return key;
      const fresh = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
      await r.send("SET", [secretKey, fresh, "NX"]);
      return (key = new Uint8Array(Buffer.from(String(await r.send("GET", [secretKey])), "base64")));
    },
  } satisfies AccountStore;

  // Only ever raised: a second revoke never shortens the first.
  const REVOKE =
    "local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') local n = tonumber(ARGV[2]) if n > v then redis.call('HSET', KEYS[1], ARGV[1], n) v = n end return v";
  const revocations: Revocations = {
    revoke: async (user, nowMs) => Number(await r.send("EVAL", [REVOKE, "1", revokedKey, user, String(Math.ceil(nowMs / 1000))])),
    revokedBefore: async (user) => Number((await r.send("HGET", [revokedKey, user])) ?? 0),
  } satisfies Revocations;

  return { accounts, revocations, close: () => r.close() };
}
