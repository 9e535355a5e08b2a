/**
 * When GcPacer collects, by what it reports to `observe` (JavaScriptCore's
 * own eden collection runs; nothing stands in for it).
 * tests/ops/metrics.test.ts checks the wiring: a server's deliveries drive it.
 */
import { expect, test } from "bun:test";
import { GcPacer, type GcPacerOptions } from "../../src/hub/gc_pacer";

/** A pacer and the length of each collection it ran, in order. */
function pacer(options: Omit<GcPacerOptions, "observe">): { p: GcPacer; seen: number[] } {
  const seen: number[] = [];
  return { p: new GcPacer({ ...options, observe: (s) => seen.push(s) }), seen };
}

test("GcPacer.note: collects once everyMessages are counted, then counts again from zero", () => {
  const { p, seen } = pacer({ everyMessages: 3, minIntervalMs: 0 });
  p.note(2);
  expect(seen.length).toBe(0);
  p.note(1);
  expect(seen.length).toBe(1);
  p.note(2);
  expect(seen.length).toBe(1);
  // A batch bigger than the pace is one collection, not several.
  p.note(10);
  expect(seen.length).toBe(2);
});

test("GcPacer.note: tells observe the length of each collection it runs, in seconds", () => {
  const { p, seen } = pacer({ everyMessages: 2, minIntervalMs: 0 });
  p.note(1);
  expect(seen).toEqual([]);
  p.note(1);
  p.note(2);
  expect(seen.length).toBe(2);
  expect(seen.every((s) => Number.isFinite(s) && s >= 0)).toBe(true);
});

test("GcPacer.note: within minIntervalMs of the last collection, keeps counting and does not collect", () => {
  const { p, seen } = pacer({ everyMessages: 1, minIntervalMs: 3_600_000 });
  p.note(1);
  expect(seen.length).toBe(1);
  for (let i = 0; i < 100; i++) p.note(5);
  expect(seen.length).toBe(1);
});

test("GcPacer: everyMessages below 1 or not whole, or a minIntervalMs that is negative or not a number, is refused", () => {
  expect(() => new GcPacer({ everyMessages: 0 })).toThrow(RangeError);
  expect(() => new GcPacer({ everyMessages: 1.5 })).toThrow("everyMessages must be a whole number of at least 1");
  expect(() => new GcPacer({ everyMessages: 1, minIntervalMs: -1 })).toThrow("minIntervalMs must be a number of milliseconds, 0 or more");
  expect(() => new GcPacer({ everyMessages: 1, minIntervalMs: Number.NaN })).toThrow(RangeError);
});
