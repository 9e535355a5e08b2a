import { expect, test } from "bun:test";
import fc from "fast-check";
import { HashPositions } from "../src/history/hash_positions";

test("HashPositions: get, set and delete agree with a Map under any sequence, collisions in slot and shard included", () => {
  // Few distinct hashes (deletes must hit held ones), from a few shards and low bits, so probe runs wrap, overlap and are cut by deletes.
  const hash = fc
    .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 15 }), fc.constantFrom(0, 1, 6, 7, 8, 15, 2 ** 31, 2 ** 32 - 1))
    .map(([shard, mid, low]) => shard * 2 ** 43 + mid * 2 ** 32 + low);
  const op = fc.oneof(
    fc.record({ k: fc.constant("set" as const), h: hash, v: fc.integer({ min: 0, max: 2 ** 53 - 1 }) }),
    fc.record({ k: fc.constant("delete" as const), h: hash }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 400, size: "max" }), (ops) => {
      const table = new HashPositions();
      const model = new Map<number, number>();
      for (const o of ops) {
        if (o.k === "set") {
          table.set(o.h, o.v);
          model.set(o.h, o.v);
        } else expect(table.delete(o.h)).toBe(model.delete(o.h));
        expect(table.size).toBe(model.size);
      }
      for (const o of ops) expect(table.get(o.h)).toBe(model.get(o.h));
    }),
    { numRuns: 300 },
  );
});

test("HashPositions: the extremes of the hash range and of positions round-trip", () => {
  const table = new HashPositions();
  const top = 2 ** 53 - 1;
  table.set(0, top);
  table.set(top, 0);
  expect(table.get(0)).toBe(top);
  expect(table.get(top)).toBe(0);
  expect(table.get(1)).toBeUndefined();
  expect(table.delete(0)).toBe(true);
  expect(table.get(0)).toBeUndefined();
  expect(table.get(top)).toBe(0);
});

test("HashPositions: a million random keys, half deleted again, are all found or all gone", () => {
  const table = new HashPositions();
  // xorshift32 with a fixed seed: a failure replays.
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const keys = Array.from({ length: 1_000_000 }, () => (next() >>> 11) * 2 ** 32 + next());
  const held = new Map<number, number>();
  for (let i = 0; i < keys.length; i++) {
    table.set(keys[i]!, i);
    held.set(keys[i]!, i);
  }
  expect(table.size).toBe(held.size);
  for (let i = 0; i < keys.length; i += 2) table.delete(keys[i]!);
  for (let i = 0; i < keys.length; i += 2) held.delete(keys[i]!);
  expect(table.size).toBe(held.size);
  let wrong = 0;
  for (const h of keys) if (table.get(h) !== held.get(h)) wrong++;
  expect(wrong).toBe(0);
});
