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

test("CidIndex.forget: a page whose newest entry is exactly at minAt stays", () => {
  const index = new CidIndex(1_000);
  index.remember("u\nedge", direct(1), 500);
  index.forget(500);
  expect(index.find("u\nedge", 500)).toEqual(direct(1));
  index.forget(501);
  expect(index.find("u\nedge", 0)).toBeUndefined();
});

/** What CidIndex must agree with: entries in pages of 1,024, dropped whole from the front, searched newest first. */
class PagedModel {
  readonly pages: { key: string; hit: CidHit; at: number }[][] = [];
  constructor(readonly max: number) {}
  get size(): number {
    return this.pages.reduce((n, p) => n + p.length, 0);
  }
  remember(key: string, hit: CidHit, at: number): void {
    let page = this.pages.at(-1);
    if (page === undefined || page.length === 1024) this.pages.push((page = []));
    page.push({ key, hit, at });
    while (this.pages.length > 1 && this.size - 1024 >= this.max) this.pages.shift();
  }
  forget(minAt: number): void {
    while (this.pages.length > 0 && Math.max(...this.pages[0]!.map((e) => e.at)) < minAt) this.pages.shift();
  }
  find(key: string, notBefore: number): CidHit | undefined {
    for (let i = this.pages.length - 1; i >= 0; i--) {
      const page = this.pages[i]!;
      for (let j = page.length - 1; j >= 0; j--) if (page[j]!.key === key) return page[j]!.at >= notBefore ? page[j]!.hit : undefined;
    }
    return undefined;
  }
}

test("CidIndex agrees with a model that forgets whole pages: small bounds, forget, colliding hashes, clocks that step back (property)", () => {
  const op = fc.oneof(
    {
      weight: 40,
      arbitrary: fc.record({ key: fc.integer({ min: 0, max: 80 }), step: fc.integer({ min: -50, max: 3 }), to: fc.constantFrom("bob", "ça", "😀x", "\ud800") }),
    },
    { weight: 1, arbitrary: fc.record({ forgetBack: fc.integer({ min: -200, max: 3_000 }) }) },
  );
  fc.assert(
    fc.property(
      fc.array(op, { minLength: 500, maxLength: 5_000, size: "max" }),
      fc.constantFrom(1, 5, 1_000, 1_500, 2_048),
      fc.integer({ min: 1, max: 3 }),
      (ops, max, buckets) => {
        const index = new CidIndex(max, (key) => key.length % buckets);
        const model = new PagedModel(max);
        let at = 10_000;
        ops.forEach((o, i) => {
          if ("forgetBack" in o) {
            index.forget(at - o.forgetBack);
            model.forget(at - o.forgetBack);
            return;
          }
          at += o.step;
          const key = `u${o.key % 4}\n${"c".repeat(1 + (o.key % 7))}${o.key}`;
          const hit: CidHit = i % 3 === 0 ? { id: i + 1, kind: "broadcast", to: undefined } : { id: i + 1, kind: i % 3 === 1 ? "direct" : "room", to: o.to };
          index.remember(key, hit, at);
          model.remember(key, hit, at);
        });
        expect(index.size).toBe(model.size);
        for (let k = 0; k <= 80; k++) {
          const key = `u${k % 4}\n${"c".repeat(1 + (k % 7))}${k}`;
          for (const notBefore of [Number.NEGATIVE_INFINITY, at - 100, at]) expect(index.find(key, notBefore)).toEqual(model.find(key, notBefore));
        }
      },
    ),
    // Shrinking thousands of operations takes minutes: a failure is reported as found.
    { numRuns: 40, endOnFailure: true },
  );
});

test("CidIndex.find: a direct hit remembered without `to` comes back without one", () => {
  const index = new CidIndex(10);
  index.remember("u\nlegacy", { id: 3, kind: "direct", to: undefined }, 1);
  expect(index.find("u\nlegacy", 0)).toEqual({ id: 3, kind: "direct", to: undefined });
  expect(index.find("u\nlegacy", 0)!.to).toBeUndefined();
});
