/**
 * DeliveryWaits: replays that wait for this node's live delivery to reach
 * their `since` end when delivery gets there, when their socket closes, or
 * all at once on a gap or a shutdown.
 */
import { expect, test } from "bun:test";
import { DeliveryWaits } from "../../src/hub/replay";

/** Which of the waits have resolved, once every resolution queued so far has run. */
async function settled(waits: Promise<void>[]): Promise<boolean[]> {
  const done = waits.map(() => false);
  waits.forEach((w, i) => void w.then(() => (done[i] = true)));
  // Two turns of the microtask queue: the `then` callbacks of promises already resolved have run.
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

test("DeliveryWaits.delivered: ends the waits at or below the id delivered, keeps the others", async () => {
  const waits = new DeliveryWaits();
  const a = {};
  const b = {};
  const w = [waits.until(10, a), waits.until(12, b)];
  waits.delivered(9);
  expect(await settled(w)).toEqual([false, false]);
  waits.delivered(11);
  expect(await settled(w)).toEqual([true, false]);
  waits.delivered(12);
  expect(await settled(w)).toEqual([true, true]);
});

test("DeliveryWaits.cancel: a closed socket's wait ends at once, while delivery stands still; others keep waiting", async () => {
  const waits = new DeliveryWaits();
  const a = {};
  const b = {};
  const w = [waits.until(10, a), waits.until(10, b)];
  waits.cancel(a);
  expect(await settled(w)).toEqual([true, false]);
  // The cancelled wait is gone: a later delivery has only b's left to end.
  waits.delivered(10);
  expect(await settled(w)).toEqual([true, true]);
});

test("DeliveryWaits.releaseAll: every wait ends (a gap or a shutdown)", async () => {
  const waits = new DeliveryWaits();
  const w = [waits.until(5, {}), waits.until(500, {})];
  waits.releaseAll();
  expect(await settled(w)).toEqual([true, true]);
});
