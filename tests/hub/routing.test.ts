import { expect, test } from "bun:test";
import { keysOf, topicsOf } from "../../src/hub/routing";

/** A `to` as JSON.parse makes it: a new string each message, equal in content only. */
const fresh = (s: string) => (JSON.parse(JSON.stringify({ s })) as { s: string }).s;

test("topicsOf and keysOf: a sender switching between conversations gets each one's own lists", () => {
  const seq = ["bob", "bob", "carol", "bob", "ann", "ann", "carol", "bob"];
  for (const to of seq) {
    const m = { kind: "direct" as const, from: "ann", to: fresh(to) };
    expect(topicsOf(m)).toEqual(to === "ann" ? ["user:ann"] : [`user:${to}`, "user:ann"]);
    const pair = to < "ann" ? `c:${to}\nann` : `c:ann\n${to}`;
    expect(keysOf(m)).toEqual(to === "ann" ? ["d:ann", pair] : [`d:${to}`, "s:ann", pair]);
  }
  // Another sender to the same recipients: lists of its own, not ann's.
  expect(topicsOf({ kind: "direct", from: "dave", to: fresh("bob") })).toEqual(["user:bob", "user:dave"]);
  expect(topicsOf({ kind: "direct", from: "ann", to: fresh("bob") })).toEqual(["user:bob", "user:ann"]);
  // The same list each time for one conversation: the index keeps its per-list state by identity.
  expect(keysOf({ kind: "direct", from: "ann", to: fresh("carol") })).toBe(keysOf({ kind: "direct", from: "ann", to: fresh("carol") }));
});

test("topicsOf: rooms and broadcasts", () => {
  expect(topicsOf({ kind: "room", from: "ann", to: fresh("lobby") })).toEqual(["room:lobby"]);
  expect(topicsOf({ kind: "room", from: "bob", to: fresh("games") })).toEqual(["room:games"]);
  expect(topicsOf({ kind: "room", from: "ann", to: fresh("lobby") })).toEqual(["room:lobby"]);
  expect(topicsOf({ kind: "broadcast", from: "ann" })).toEqual(["all"]);
  expect(keysOf({ kind: "room", from: "ann", to: "lobby" })).toEqual(["r:lobby"]);
});
