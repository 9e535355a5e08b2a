/**
 * UserSockets: one socket per user kept as is, a Set from the second on;
 * counts, lists and deletes give the same answers either way.
 */
import { expect, test } from "bun:test";
import { UserSockets } from "../../src/hub/user_sockets";

test("UserSockets.add: one socket, then a second and a third, are counted and listed in order", () => {
  const u = new UserSockets<object>();
  const [a, b, c] = [{}, {}, {}];
  expect(u.count("ann")).toBe(0);
  expect(u.of("ann")).toEqual([]);
  u.add("ann", a);
  expect(u.count("ann")).toBe(1);
  expect(u.of("ann")[0]).toBe(a);
  u.add("ann", b);
  u.add("ann", c);
  expect(u.count("ann")).toBe(3);
  const listed = u.of("ann");
  expect(listed.length).toBe(3);
  expect(listed[0]).toBe(a);
  expect(listed[1]).toBe(b);
  expect(listed[2]).toBe(c);
  expect(u.count("bob")).toBe(0);
});

test("UserSockets.add: the same socket twice is filed once, with one socket or several", () => {
  const u = new UserSockets<object>();
  const [a, b] = [{}, {}];
  u.add("ann", a);
  u.add("ann", a);
  expect(u.count("ann")).toBe(1);
  u.add("ann", b);
  u.add("ann", b);
  expect(u.count("ann")).toBe(2);
});

test("UserSockets.delete: returns what is left, back down to none, and -1 for a socket not filed", () => {
  const u = new UserSockets<object>();
  const [a, b, c, stranger] = [{}, {}, {}, {}];
  expect(u.delete("ann", a)).toBe(-1);
  u.add("ann", a);
  expect(u.delete("ann", stranger)).toBe(-1);
  u.add("ann", b);
  u.add("ann", c);
  expect(u.delete("ann", stranger)).toBe(-1);
  expect(u.delete("ann", b)).toBe(2);
  expect(u.delete("ann", b)).toBe(-1);
  expect(u.delete("ann", a)).toBe(1);
  expect(u.of("ann")[0]).toBe(c);
  expect(u.count("ann")).toBe(1);
  expect(u.delete("ann", c)).toBe(0);
  expect(u.count("ann")).toBe(0);
  expect(u.of("ann")).toEqual([]);
  // Filed again after it emptied: starts over from one socket.
  u.add("ann", a);
  expect(u.count("ann")).toBe(1);
  expect(u.delete("ann", a)).toBe(0);
});

test("UserSockets.of: a new array each time, which later adds and deletes leave as it was", () => {
  const u = new UserSockets<object>();
  const [a, b, c] = [{}, {}, {}];
  u.add("ann", a);
  const one = u.of("ann");
  expect(u.of("ann")).not.toBe(one);
  u.add("ann", b);
  const two = u.of("ann");
  expect(u.of("ann")).not.toBe(two);
  u.add("ann", c);
  u.delete("ann", a);
  expect(one.length).toBe(1);
  expect(one[0]).toBe(a);
  expect(two.length).toBe(2);
  expect(two[0]).toBe(a);
  expect(two[1]).toBe(b);
  // Closing every socket while walking the list: each is deleted once.
  for (const s of u.of("ann")) expect(u.delete("ann", s)).toBeGreaterThanOrEqual(0);
  expect(u.count("ann")).toBe(0);
});

test("UserSockets: a user back down to one socket takes a second one again", () => {
  const u = new UserSockets<object>();
  const [a, b, c] = [{}, {}, {}];
  u.add("ann", a);
  u.add("ann", b);
  expect(u.delete("ann", a)).toBe(1);
  u.add("ann", c);
  expect(u.count("ann")).toBe(2);
  const listed = u.of("ann");
  expect(listed[0]).toBe(b);
  expect(listed[1]).toBe(c);
  expect(u.delete("ann", b)).toBe(1);
  expect(u.delete("ann", c)).toBe(0);
});
