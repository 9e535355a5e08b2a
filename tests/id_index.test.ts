import { expect, test } from "bun:test";
import { IdIndex, mergeIds } from "../src/history/id_index";

test("mergeIds: merges ascending lists without duplicates, first or last `limit`", () => {
  const lists = [[1, 4, 7, 10], [2, 4, 8], [], [3, 9, 11]];
  expect(mergeIds(lists, 100, false)).toEqual([1, 2, 3, 4, 7, 8, 9, 10, 11]);
  expect(mergeIds(lists, 4, false)).toEqual([1, 2, 3, 4]);
  expect(mergeIds(lists, 4, true)).toEqual([8, 9, 10, 11]);
  expect(mergeIds([[5, 6]], 1, true)).toEqual([6]);
  expect(mergeIds([], 3, false)).toEqual([]);
});

test("IdIndex.dropThrough: hides pruned ids at once and trims a bounded number of keys per call", () => {
  const index = new IdIndex();
  for (let k = 0; k < 10; k++) for (let id = 1; id <= 5; id++) index.add(`k${k}`, k * 100 + id);
  index.dropThrough(503, 3);
  expect(index.range("k5", 0, 1000, 10)).toEqual([504, 505]);
  expect(index.before("k5", 1000, 10)).toEqual([505, 504]);
  expect(index.range("k1", 0, 1000, 10)).toEqual([]);
  for (let i = 0; i < 5; i++) index.dropThrough(503, 3);
  expect(index.range("k9", 0, 1000, 2, true)).toEqual([904, 905]);
});

test("IdIndex.addAll: files the id under each key, same as add, whether or not the array was seen before", () => {
  const index = new IdIndex();
  const keys = ["to:b", "from:a", "pair:a|b"] as const;
  index.addAll(keys, 1);
  index.addAll(keys, 2);
  // Another array with an overlapping key, and add on its own, share the same lists.
  index.addAll(["to:b", "room:x"], 3);
  index.add("from:a", 4);
  index.addAll(keys, 5);
  expect(index.range("to:b", 0, 100, 10)).toEqual([1, 2, 3, 5]);
  expect(index.range("from:a", 0, 100, 10)).toEqual([1, 2, 4, 5]);
  expect(index.range("pair:a|b", 0, 100, 10)).toEqual([1, 2, 5]);
  expect(index.range("room:x", 0, 100, 10)).toEqual([3]);
});

test("IdIndex.addAll: after dropThrough removed a key's list, ids added through the same array are found again", () => {
  const index = new IdIndex();
  const keys = ["to:b", "pair:a|b"];
  index.addAll(keys, 1);
  index.addAll(["other"], 2);
  // Every id of both keys is pruned: their lists are removed.
  index.dropThrough(1);
  expect(index.range("to:b", 0, 100, 10)).toEqual([]);
  index.addAll(keys, 3);
  expect(index.range("to:b", 0, 100, 10)).toEqual([3]);
  expect(index.range("pair:a|b", 0, 100, 10)).toEqual([3]);
  expect(index.before("pair:a|b", 100, 10)).toEqual([3]);
});

test("IdIndex.dropThrough: pruning long lists a few ids at a time never returns a pruned id, with adds in between", () => {
  const index = new IdIndex();
  const keys = ["to:b", "from:a", "pair:a|b"];
  let id = 0;
  for (; id < 1_000; ) index.addAll(keys, ++id);
  // Small steps (fewer pruned ids than the list sheds at once), then big ones, adding as a live server does.
  for (let upTo = 3; upTo <= 1_200; upTo += upTo < 200 ? 3 : 97) {
    index.dropThrough(upTo);
    index.addAll(keys, ++id);
    const live = Array.from({ length: id - upTo }, (_, i) => upTo + 1 + i);
    for (const k of keys) {
      expect(index.range(k, 0, id, 10_000)).toEqual(live);
      expect(index.range(k, 0, id, 5, true)).toEqual(live.slice(-5));
      expect(index.before(k, id + 1, 3)).toEqual(live.slice(-3).reverse());
      expect(index.before(k, upTo + 3, 10)).toEqual(live.filter((x) => x < upTo + 3).reverse());
    }
  }
});
