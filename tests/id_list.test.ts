import { expect, test } from "bun:test";
import fc from "fast-check";
import { IdList } from "../src/history/id_list";

/** What IdList must agree with: the ids still held, by position, in a plain array. */
function model(ids: number[], dropped: number) {
  return { held: ids.slice(dropped), start: dropped };
}

test("IdList: push, at, firstAbove and slice agree with a plain array across many chunks", () => {
  const list = new IdList();
  const ids: number[] = [];
  // Gaps between ids, so firstAbove of a value between two ids is checked too; 20,000 ids span several full chunks.
  for (let id = 3; ids.length < 20_000; id += 1 + (ids.length % 3)) {
    list.push(id);
    ids.push(id);
  }
  expect(list.start).toBe(0);
  expect(list.end).toBe(ids.length);
  for (const pos of [0, 1, 3, 4, 7, 8, 4095, 4096, 4097, 8191, 8192, 19_999]) expect(list.at(pos)).toBe(ids[pos]!);
  const above = (v: number) => {
    const i = ids.findIndex((x) => x > v);
    return i < 0 ? ids.length : i;
  };
  for (const v of [0, 2, 3, 4, ids[4095]!, ids[4095]! + 1, ids[4096]! - 1, ids[12_345]!, ids.at(-1)! - 1, ids.at(-1)!, ids.at(-1)! + 5])
    expect(list.firstAbove(v)).toBe(above(v));
  expect(list.slice(0, ids.length)).toEqual(ids);
  expect(list.slice(4090, 8200)).toEqual(ids.slice(4090, 8200));
  expect(list.slice(5, 5)).toEqual([]);
});

test("IdList.dropThrough: frees whole chunks at or below the floor, keeps positions, and takes ids again once empty", () => {
  const list = new IdList();
  for (let id = 1; id <= 10_000; id++) list.push(id);
  // The first chunks hold 4, 4, 8, 16, ... ids: 5,000 falls inside a chunk, which stays whole.
  expect(list.dropThrough(5_000)).toBe(false);
  expect(list.start).toBeGreaterThan(0);
  expect(list.start).toBeLessThanOrEqual(5_000);
  expect(list.at(list.start)).toBe(list.start + 1);
  expect(list.firstAbove(5_000)).toBe(5_000);
  expect(list.slice(list.firstAbove(9_997), list.end)).toEqual([9_998, 9_999, 10_000]);
  expect(list.dropThrough(10_000)).toBe(true);
  expect(list.start).toBe(list.end);
  expect(list.firstAbove(0)).toBe(list.end);
  list.push(10_001);
  expect(list.slice(list.start, list.end)).toEqual([10_001]);
  expect(list.end).toBe(10_001);
});

test("IdList: any interleaving of pushes and drops answers like a plain array", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.record({ push: fc.integer({ min: 1, max: 3_000 }) }), fc.record({ drop: fc.integer({ min: 0, max: 60_000 }) })), {
        maxLength: 40,
      }),
      fc.integer({ min: 0, max: 100_000 }),
      (ops, probeValue) => {
        const list = new IdList();
        const ids: number[] = [];
        let dropped = 0;
        let next = 1;
        for (const op of ops) {
          if ("push" in op) {
            for (let i = 0; i < op.push; i++) {
              list.push(next);
              ids.push(next);
              next += 2;
            }
          } else {
            const floor = op.drop * 2;
            const empty = list.dropThrough(floor);
            // Only whole chunks go: what is dropped is at or below the floor, and what stays starts a chunk.
            expect(list.start).toBeGreaterThanOrEqual(dropped);
            for (let p = dropped; p < list.start; p++) expect(ids[p]!).toBeLessThanOrEqual(floor);
            dropped = list.start;
            expect(empty).toBe(dropped === ids.length);
            // And every chunk that could go went: fewer ids at or below the floor stay than the biggest chunk holds.
            expect(list.firstAbove(floor) - list.start).toBeLessThan(4096);
            if (!empty) expect(list.at(list.start)).toBe(ids[dropped]!);
          }
          const m = model(ids, dropped);
          expect(list.start).toBe(m.start);
          expect(list.end).toBe(ids.length);
          expect(list.slice(list.start, list.end)).toEqual(m.held);
          const firstIdx = m.held.findIndex((x) => x > probeValue);
          expect(list.firstAbove(probeValue)).toBe(firstIdx < 0 ? ids.length : m.start + firstIdx);
        }
      },
    ),
    { numRuns: 200 },
  );
});
