import { expect, test } from "bun:test";
import fc from "fast-check";
import { CidIndex, keyedHash } from "../src/history/cid_index";
import type { CidHit } from "../src/history/history";

const direct = (id: number, to = "bob"): CidHit => ({ id, kind: "direct", to });

test("CidIndex.find: the remembered hit within the window, nothing before notBefore or for an unknown key", () => {
  const index = new CidIndex(1_000);
  index.remember("alice\nc1", direct(7, "bób €"), 1_000);
  index.remember("alice\nc2", { id: 8, kind: "broadcast", to: undefined }, 1_001);
  index.remember("carol\nc1", { id: 9, kind: "room", to: "dev" }, 1_002);
  expect(index.find("alice\nc1", 1_000)).toEqual({ id: 7, kind: "direct", to: "bób €" });
  expect(index.find("alice\nc2", 0)).toEqual({ id: 8, kind: "broadcast", to: undefined });
  expect(index.find("carol\nc1", 0)).toEqual({ id: 9, kind: "room", to: "dev" });
  expect(index.find("alice\nc1", 1_001)).toBeUndefined();
  expect(index.find("bob\nc1", 0)).toBeUndefined();
  expect(index.find("alice\nc", 0)).toBeUndefined();
  expect(index.size).toBe(3);
});

test("CidIndex.remember: a key remembered again answers with its newest hit", () => {
  const index = new CidIndex(1_000);
  index.remember("alice\nk", direct(1), 10);
  index.remember("alice\nk", direct(2, "carol"), 20);
  expect(index.find("alice\nk", 0)).toEqual(direct(2, "carol"));
  expect(index.find("alice\nk", 21)).toBeUndefined();
});

test("CidIndex: keys that share a hash are each found exactly, before and after older pages are forgotten", () => {
  // Every key has the same hash: only the keys themselves tell entries apart.
  const index = new CidIndex(2_000, () => 42);
  for (let i = 0; i < 5_000; i++) index.remember(`u\nc${i}`, direct(i + 1), i);
  expect(index.size).toBeGreaterThanOrEqual(2_000);
  expect(index.size).toBeLessThanOrEqual(2_000 + 1024);
  for (let i = 5_000 - 2_000; i < 5_000; i++) expect(index.find(`u\nc${i}`, 0)?.id).toBe(i + 1);
  for (const i of [0, 1, 1_000, 1_975]) expect(index.find(`u\nc${i}`, 0)).toBeUndefined();
  // A key whose first entry was forgotten is remembered again as new.
  index.remember("u\nc0", direct(9_999), 9_999);
  expect(index.find("u\nc0", 0)?.id).toBe(9_999);
});

test("CidIndex.forget: whole pages whose every entry left the window go, newer pages stay", () => {
  const index = new CidIndex(1_000_000);
  for (let i = 0; i < 3_000; i++) index.remember(`u\nc${i}`, direct(i + 1), i);
  index.forget(1_500);
  // The first page (at 0..1023) is gone; the second (1024..2047) holds entries in the window.
  expect(index.find("u\nc10", 0)).toBeUndefined();
  expect(index.find("u\nc1100", 0)?.id).toBe(1_101);
  expect(index.find("u\nc1100", 1_500)).toBeUndefined();
  expect(index.find("u\nc2999", 1_500)?.id).toBe(3_000);
  index.forget(10_000);
  expect(index.size).toBe(0);
  expect(index.find("u\nc2999", 0)).toBeUndefined();
  index.remember("u\nnew", direct(5), 10_000);
  expect(index.find("u\nnew", 0)).toEqual(direct(5));
});

test("keyedHash: whole numbers below 2^53, the same for the same key, seeded per call", () => {
  const h = keyedHash();
  const keys = Array.from({ length: 1_000 }, (_, i) => `user${i % 7}\n${i}`);
  const values = keys.map(h);
  for (const v of values) expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
  expect(new Set(values).size).toBe(keys.length);
  expect(keys.map(h)).toEqual(values);
  expect(keys.map(keyedHash())).not.toEqual(values);
});

test("CidIndex agrees with a Map of each key's newest hit, whatever the hash collides (property)", () => {
  const op = fc.record({
    key: fc.integer({ min: 0, max: 300 }),
    to: fc.constantFrom("bob", "ça", "dev"),
    kind: fc.constantFrom("direct", "broadcast", "room"),
  });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 2_500, size: "max" }), fc.integer({ min: 1, max: 5 }), (ops, buckets) => {
      const index = new CidIndex(10_000, (key) => key.length % buckets);
      const model = new Map<string, { hit: CidHit; at: number }>();
      ops.forEach((o, i) => {
        const hit: CidHit = { id: i + 1, kind: o.kind as CidHit["kind"], to: o.kind === "broadcast" ? undefined : o.to };
        index.remember(`u${o.key % 3}\nc${o.key}`, hit, i);
        model.set(`u${o.key % 3}\nc${o.key}`, { hit, at: i });
      });
      for (let k = 0; k <= 300; k++) {
        const key = `u${k % 3}\nc${k}`;
        const want = model.get(key);
        expect(index.find(key, 0)).toEqual(want?.hit);
        if (want) expect(index.find(key, want.at + 1)).toBeUndefined();
      }
    }),
    { numRuns: 60 },
  );
});
