import { expect, test } from "bun:test";
import fc from "fast-check";
import { ShardedMap } from "../src/history/sharded_map";

/** Keys shaped like the index's, from a small set so deletes and replacements hit held ones. */
const key = fc.constantFrom("b", "d:alice", "s:alice", "d:bob", "c:alice\nbob", "r:lobby", "d:é", "", "d:u1", "d:u10", "c:u1\nu10");

test("ShardedMap: get, set, delete, size and entries agree with a Map under any sequence", () => {
  const op = fc.oneof(fc.record({ k: fc.constant("set" as const), key, v: fc.integer() }), fc.record({ k: fc.constant("delete" as const), key }));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const map = new ShardedMap<number>();
      const model = new Map<string, number>();
      for (const o of ops) {
        if (o.k === "set") {
          map.set(o.key, o.v);
          model.set(o.key, o.v);
        } else expect(map.delete(o.key)).toBe(model.delete(o.key));
        expect(map.size).toBe(model.size);
      }
      for (const o of ops) expect(map.get(o.key)).toBe(model.get(o.key));
      const sorted = (es: Iterable<[string, number]>) => [...es].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      expect(sorted(map.entries())).toEqual(sorted(model.entries()));
    }),
    { numRuns: 300 },
  );
});

test("ShardedMap.entries: deleting as it goes visits every entry once and leaves none", () => {
  const map = new ShardedMap<number>();
  for (let i = 0; i < 5_000; i++) map.set(`d:u${i}`, i);
  const seen = new Set<string>();
  for (const [k] of map.entries()) {
    expect(seen.has(k)).toBe(false);
    seen.add(k);
    map.delete(k);
  }
  expect(seen.size).toBe(5_000);
  expect(map.size).toBe(0);
  expect([...map.entries()]).toEqual([]);
});

test("ShardedMap: keys spread over the shards, so no shard holds most of them", () => {
  // The point of the split: one shard's growth moves a small share of the keys. entries() yields shard by shard, which shows the spread.
  const map = new ShardedMap<number>();
  const n = 25_600;
  for (let i = 0; i < n; i++) map.set(i % 2 ? `c:u${i}\nu${i + 1}` : `d:u${i}`, i);
  // Runs of consecutive entries from one shard: shards are visited in turn, so a run ends where the key's shard changes.
  const shardSizes: number[] = [];
  let run = 0;
  let last = -1;
  for (const [, v] of map.entries()) {
    // Insertion order inside a shard is increasing; a drop in the value starts the next shard.
    if (v < last) {
      shardSizes.push(run);
      run = 0;
    }
    run++;
    last = v;
  }
  shardSizes.push(run);
  expect(Math.max(...shardSizes)).toBeLessThan((n / 256) * 2);
});
