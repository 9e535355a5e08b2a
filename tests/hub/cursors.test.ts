/**
 * Cursors on a real (in-memory) SQLite history: a clean close moves the
 * user's inbox cursor to just before the oldest batch still inside the
 * grace, through many batches (the settled ones are dropped from the front
 * in chunks, not one shift per batch).
 */
import { afterEach, expect, test } from "bun:test";
import { Cursors } from "../../src/hub/cursors";
import { createSqliteHistory } from "../../src/history/history_sqlite";
import type { History } from "../../src/history/history";

let history: History | undefined;
afterEach(() => history?.close());

test("Cursors.closed settles to the batch before the grace window, across thousands of batches", async () => {
  history = createSqliteHistory(":memory:");
  const DELIVERED_THROUGH = 1_000_000;
  const cursors = new Cursors(history, () => DELIVERED_THROUGH, 2_000);
  // Batch i starts at id 10*i and is delivered at time i ms.
  let user = 0;
  for (let i = 1; i <= 10_000; i++) {
    cursors.delivered(10 * i, i);
    if (i % 997 === 0) {
      // At time i the batches delivered at i-2000 or earlier are settled: the first unsettled starts at 10*(i-1999).
      const name = `u${user++}`;
      await cursors.closed(name, i);
      expect(await history.cursor(name)).toBe(i > 2_000 ? 10 * (i - 1_999) - 1 : 9);
    }
  }
  // The grace boundary itself: a batch delivered exactly graceMs ago is settled.
  await cursors.closed("edge", 10_000 + 1_999);
  expect(await history.cursor("edge")).toBe(10 * 10_000 - 1);
  // Long after the last batch every one is settled: the cursor is what the broker delivered through.
  await cursors.closed("late", 10_000 + 2_000);
  expect(await history.cursor("late")).toBe(DELIVERED_THROUGH);
});
