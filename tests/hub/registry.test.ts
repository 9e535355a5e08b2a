/**
 * SocketRegistry: what it files on open it takes out on close, and the counts
 * the connect limits read follow both.
 */
import { expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import { Connection } from "../../src/hub/connection";
import { SocketRegistry } from "../../src/hub/registry";

/** A socket stand-in: the registry only files it and reads its `data`. */
const socket = (user: string, ip: string, rooms: string[] = []) => {
  const conn = new Connection({} as never, user, rooms, ip);
  return { ws: { data: conn } as unknown as ServerWebSocket<Connection>, conn };
};

test("SocketRegistry.add: counts sockets per user and per address, and connects still replaying", () => {
  const reg = new SocketRegistry();
  const a = socket("ann", "10.0.0.1");
  const b = socket("ann", "10.0.0.2");
  const c = socket("bob", "10.0.0.1");
  reg.add(a.ws, a.conn, true);
  reg.add(b.ws, b.conn, false);
  reg.add(c.ws, c.conn, true);
  expect(reg.all.size).toBe(3);
  expect(reg.connectionsOf("ann")).toBe(2);
  expect(reg.connectionsOf("bob")).toBe(1);
  expect(reg.connectionsOf("cid")).toBe(0);
  expect(reg.connectionsFrom("10.0.0.1")).toBe(2);
  expect(reg.connectionsFrom("10.0.0.2")).toBe(1);
  expect(reg.replaysOf("ann")).toBe(1);
  expect(reg.replaysOf("bob")).toBe(1);
  expect([...reg.eachConnection()].map((x) => x.user)).toEqual(["ann", "ann", "bob"]);
});

test("SocketRegistry.remove: returns the user's sockets left, undefined the second time, and undoes every count", () => {
  const reg = new SocketRegistry();
  const a = socket("ann", "10.0.0.1", ["dev"]);
  const b = socket("ann", "10.0.0.1", ["dev", "ops"]);
  for (const s of [a, b]) {
    reg.add(s.ws, s.conn, true);
    for (const room of s.conn.rooms) reg.enter(s.ws, room);
  }
  expect(reg.roomSockets()).toEqual([
    ["dev", 2],
    ["ops", 1],
  ]);
  expect(reg.remove(b.ws, b.conn)).toBe(1);
  expect(reg.remove(b.ws, b.conn)).toBeUndefined();
  expect(reg.connectionsOf("ann")).toBe(1);
  expect(reg.connectionsFrom("10.0.0.1")).toBe(1);
  expect(reg.replaysOf("ann")).toBe(1);
  expect(reg.roomSockets()).toEqual([["dev", 1]]);
  expect(reg.remove(a.ws, a.conn)).toBe(0);
  expect(reg.all.size).toBe(0);
  expect(reg.connectionsOf("ann")).toBe(0);
  expect(reg.connectionsFrom("10.0.0.1")).toBe(0);
  expect(reg.replaysOf("ann")).toBe(0);
  expect(reg.roomSockets()).toEqual([]);
});

test("SocketRegistry.doneReplaying: counts a connect's replay once, however often it is told", () => {
  const reg = new SocketRegistry();
  const a = socket("ann", "10.0.0.1");
  const b = socket("ann", "10.0.0.1");
  reg.add(a.ws, a.conn, true);
  reg.add(b.ws, b.conn, true);
  expect(reg.replaysOf("ann")).toBe(2);
  reg.doneReplaying(a.conn);
  reg.doneReplaying(a.conn);
  expect(reg.replaysOf("ann")).toBe(1);
  // Closing after the replay ended does not count it down again.
  reg.remove(a.ws, a.conn);
  expect(reg.replaysOf("ann")).toBe(1);
  reg.remove(b.ws, b.conn);
  expect(reg.replaysOf("ann")).toBe(0);
});

test("SocketRegistry.inRoom and ofUser: the sockets filed there, none for an unknown room or user", () => {
  const reg = new SocketRegistry();
  const a = socket("ann", "10.0.0.1", ["dev"]);
  reg.add(a.ws, a.conn, false);
  reg.enter(a.ws, "dev");
  expect([...(reg.inRoom("dev") ?? [])]).toEqual([a.ws]);
  expect(reg.inRoom("ops")).toBeUndefined();
  expect(reg.ofUser("ann")).toEqual([a.ws]);
  expect(reg.ofUser("bob")).toEqual([]);
  reg.leave(a.ws, "dev");
  expect(reg.inRoom("dev")).toBeUndefined();
});
