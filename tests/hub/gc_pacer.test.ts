/**
 * GcPacer runs JavaScriptCore's own eden collection (nothing stands in for
 * it): these tests check when it runs, by its counters.
 */
import { expect, test } from "bun:test";
import { GcPacer } from "../../src/hub/gc_pacer";

test("GcPacer.note: collects once everyMessages are counted, then counts again from zero", () => {
  const p = new GcPacer({ everyMessages: 3, minIntervalMs: 0 });
  p.note(2);
  expect(p.stats.collections).toBe(0);
  p.note(1);
  expect(p.stats.collections).toBe(1);
  expect(p.stats.seconds).toBeGreaterThanOrEqual(0);
  p.note(2);
  expect(p.stats.collections).toBe(1);
  // A batch bigger than the pace is one collection, not several.
  p.note(10);
  expect(p.stats.collections).toBe(2);
});

test("GcPacer.note: within minIntervalMs of the last collection, keeps counting and does not collect", () => {
  const p = new GcPacer({ everyMessages: 1, minIntervalMs: 3_600_000 });
  p.note(1);
  expect(p.stats.collections).toBe(1);
  for (let i = 0; i < 100; i++) p.note(5);
  expect(p.stats.collections).toBe(1);
});

test("GcPacer: everyMessages below 1 or not whole is refused", () => {
  expect(() => new GcPacer({ everyMessages: 0 })).toThrow(RangeError);
  expect(() => new GcPacer({ everyMessages: 1.5 })).toThrow("everyMessages must be a whole number of at least 1");
});
