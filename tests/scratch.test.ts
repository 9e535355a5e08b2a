import { expect, test } from "bun:test";
import { emptied, SCRATCH_KEEP } from "../src/scratch";

test("emptied: a list up to SCRATCH_KEEP entries is kept and emptied", () => {
  const list = Array.from({ length: SCRATCH_KEEP }, (_, i) => ({ i }));
  const next = emptied(list);
  expect(next).toBe(list);
  expect(next.length).toBe(0);
});

test("emptied: a list past SCRATCH_KEEP is dropped for a new empty one", () => {
  const list = Array.from({ length: SCRATCH_KEEP + 1 }, (_, i) => i);
  const next = emptied(list);
  expect(next).not.toBe(list);
  expect(next).toEqual([]);
});
