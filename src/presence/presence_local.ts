import type { Presence } from "./presence";
import { Coalescer, Tally } from "./tally";

/** Presence on one node: connections counted per user and per room member; changes coalesced per tick. */
export function createLocalPresence(tickMs = 20): Presence {
  const users = new Tally<string>();
  const rooms = new Map<string, Tally<string>>();
  const changes = new Coalescer(tickMs);
  return {
    add(user) {
      if (users.add(user)) changes.user(user, "join");
    },
    remove(user) {
      if (users.remove(user)) changes.user(user, "leave");
    },
    addRoom(user, room) {
      let t = rooms.get(room);
      if (!t) rooms.set(room, (t = new Tally()));
      if (t.add(user)) changes.room(room, user, "join");
    },
    removeRoom(user, room) {
      const t = rooms.get(room);
      if (!t?.remove(user)) return;
      if (t.size === 0) rooms.delete(room);
      changes.room(room, user, "leave");
    },
    isOnline: (user) => users.has(user),
    count: () => users.size,
    users: () => [...users.keys()],
    roomUsers: (room) => [...(rooms.get(room)?.keys() ?? [])],
    localCount: () => users.size,
    onChanges: (handler) => changes.onChanges(handler),
    async close() {
      changes.stop();
    },
  } satisfies Presence;
}
