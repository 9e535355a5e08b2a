import { expect, test } from "bun:test";
import fc from "fast-check";
import client from "prom-client";
import { FastHistogram } from "../src/histogram";

const BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The exposition text of one registry holding prom-client's Histogram and one holding FastHistogram, after the same observations. */
async function both(values: readonly number[], bounds: readonly number[] = BOUNDS): Promise<[string, string]> {
  const ref = new client.Registry();
  const fast = new client.Registry();
  const h = new client.Histogram({ name: "x_seconds", help: "Some seconds.", buckets: [...bounds], registers: [ref] });
  const f = new FastHistogram("x_seconds", "Some seconds.", bounds, fast);
  for (const v of values) {
    h.observe(v);
    f.observe(v);
  }
  return [await ref.metrics(), await fast.metrics()];
}

test("FastHistogram: the registry writes the same lines as for prom-client's Histogram, for any observations", async () => {
  // Values on the bounds, between them, below and above all, and zero: each bucket edge is where a fault would show.
  const value = fc.oneof(fc.constantFrom(0, ...BOUNDS, 2.5000001, 1e6), fc.double({ min: 0, max: 5, noNaN: true }), fc.integer({ min: 0, max: 5000 }));
  await fc.assert(
    fc.asyncProperty(fc.array(value, { maxLength: 300, size: "max" }), async (values) => {
      const [ref, fast] = await both(values);
      expect(fast).toBe(ref);
    }),
  );
});

test("FastHistogram: integer bounds (batch sizes), and the count and sum lines read as expected", async () => {
  const [ref, fast] = await both([1, 1, 2, 3, 700, 6000], [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000]);
  expect(fast).toBe(ref);
  expect(fast).toContain('x_seconds_bucket{le="1"} 2\n');
  expect(fast).toContain('x_seconds_bucket{le="5"} 4\n');
  expect(fast).toContain('x_seconds_bucket{le="1000"} 5\n');
  expect(fast).toContain('x_seconds_bucket{le="+Inf"} 6\n');
  expect(fast).toContain("x_seconds_sum 6707\n");
  expect(fast).toContain("x_seconds_count 6");
});

test("FastHistogram: the registry's resetMetrics zeroes it", async () => {
  const registry = new client.Registry();
  const f = new FastHistogram("y", "Y.", [1, 2], registry);
  f.observe(1.5);
  registry.resetMetrics();
  f.observe(0.5);
  const text = await registry.metrics();
  expect(text).toContain('y_bucket{le="1"} 1\n');
  expect(text).toContain('y_bucket{le="2"} 1\n');
  expect(text).toContain("y_count 1");
});

test("FastHistogram: NaN and infinities are not counted (prom-client throws on them)", async () => {
  const registry = new client.Registry();
  const f = new FastHistogram("z", "Z.", [1], registry);
  f.observe(Number.NaN);
  f.observe(Number.POSITIVE_INFINITY);
  f.observe(0.5);
  const text = await registry.metrics();
  expect(text).toContain("z_count 1");
  expect(text).toContain("z_sum 0.5");
});
