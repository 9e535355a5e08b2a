import { expect, test } from "bun:test";
import { createSqliteHistory } from "../src/history/history_sqlite";
import { startPruning } from "../src/history/retention";

test("startPruning: runNow prunes past both limits in steps, and stop ends the timer", async () => {
  const history = createSqliteHistory(":memory:");
  const now = Date.now();
  const old = Array.from({ length: 3000 }, (_, i) => ({ id: i + 1, kind: "broadcast" as const, from: "a", text: "old", at: now - 40 * 86_400_000 }));
  const fresh = Array.from({ length: 3000 }, (_, i) => ({ id: 3001 + i, kind: "broadcast" as const, from: "a", text: "new", at: now }));
  await history.append(old);
  await history.append(fresh);
  const pruning = startPruning(history, { historyMaxMessages: 2500, historyMaxAgeMs: 30 * 86_400_000 });
  expect(await pruning.runNow()).toBe(3500);
  pruning.stop();
  expect(await history.prunedThrough()).toBe(3500);
  expect((await history.page(undefined, Number.MAX_SAFE_INTEGER, 200)).length).toBe(200);
  expect((await history.page(undefined, 3502, 10)).map((m) => m.id)).toEqual([3501]);
  await history.close();
});
