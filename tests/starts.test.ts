import { expect, test } from "bun:test";
import fc from "fast-check";
import { Starts } from "../src/history/starts";

test("Starts: offsets across many full chunks, with gaps read as NaN", () => {
  const starts = new Starts();
  const at = new Map<number, number>();
  // 200,000 ids fill three chunks of 65,536 and part of a fourth; every seventh id is a gap (never written).
  for (let id = 5; id < 200_005; id++) {
    if (id % 7 === 0) continue;
    starts.set(id, id * 10);
    at.set(id, id * 10);
  }
  expect(starts.base).toBe(5);
  for (const id of [4, 5, 6, 7, 1023 + 5, 1024 + 5, 65_535 + 5, 65_536 + 5, 65_537 + 5, 131_077, 199_999, 200_004, 200_005]) {
    expect(starts.get(id)).toBe(at.get(id) ?? Number.NaN);
  }
  // Four chunks of 65,536 hold 200,000 offsets: nothing was kept twice.
  expect(starts.capacity).toBe(4 * 65_536);
});

test("Starts.rebase: forgets ids below the base and frees each chunk that held only those", () => {
  const starts = new Starts(4);
  for (let id = 1; id <= 100; id++) starts.set(id, id);
  expect(starts.capacity).toBe(112);
  starts.rebase(40);
  expect(starts.base).toBe(40);
  expect(starts.get(39)).toBeNaN();
  expect(starts.get(40)).toBe(40);
  expect(starts.get(100)).toBe(100);
  // Ids 1..32 filled the first two chunks of 16: both are gone; 33..39 share a chunk with 40 and stay.
  expect(starts.capacity).toBe(112 - 32);
  starts.rebase(1_000);
  expect(starts.get(100)).toBeNaN();
  // Empty again: the next id is the new base, and one chunk is left to take it.
  starts.set(2_000, 7);
  expect(starts.base).toBe(2_000);
  expect(starts.get(2_000)).toBe(7);
  expect(starts.get(1_999)).toBeNaN();
});

test("Starts: the first chunk doubles past its first size with gaps and a rebase, and keeps every offset", () => {
  const starts = new Starts(11);
  const at = new Map<number, number>();
  for (let id = 1; id <= 5_000; id++) {
    if (id % 5 === 0) continue;
    starts.set(id, id + 0.5);
    at.set(id, id + 0.5);
    // A rebase while the first chunk is still growing (1,024 → 2,048 offsets).
    if (id === 701) starts.rebase(300);
  }
  for (let id = 0; id <= 5_001; id++) expect(starts.get(id)).toBe(id >= 300 ? (at.get(id) ?? Number.NaN) : Number.NaN);
});

test("Starts: any run of sets with gaps and rebases answers like a map", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ set: fc.integer({ min: 1, max: 90 }), gap: fc.integer({ min: 0, max: 40 }) }),
          fc.record({ rebase: fc.integer({ min: 0, max: 120 }) }),
        ),
        { maxLength: 30 },
      ),
      // Small chunks cross many chunk edges; 11 (2,048 a chunk) makes the first chunk double past 1,024 under gaps and rebases.
      fc.constantFrom(2, 3, 4, 6, 11),
      (ops, bits) => {
        const starts = new Starts(bits);
        const model = new Map<number, number>();
        let next = 1;
        let floor = 0;
        for (const op of ops) {
          if ("set" in op) {
            next += op.gap;
            for (let i = 0; i < op.set; i++, next++) {
              starts.set(next, next * 3);
              model.set(next, next * 3);
            }
          } else {
            floor += op.rebase;
            starts.rebase(floor);
            for (const id of model.keys()) if (id < floor) model.delete(id);
          }
          for (let id = 0; id <= next; id++) expect(starts.get(id)).toBe(model.get(id) ?? Number.NaN);
          // Only the slots from the oldest id held on, and at most two partly used chunks, take memory.
          if (model.size > 0) expect(starts.base).toBeLessThanOrEqual(Math.min(...model.keys()));
          expect(starts.capacity).toBeLessThanOrEqual((model.size > 0 ? next - starts.base : 0) + 2 * (1 << bits));
        }
      },
    ),
    { numRuns: 300 },
  );
});
