/**
 * Presence changes to frames, on each node for its own sockets: below
 * `globalMax` users online everyone hears of every join and leave (topic
 * `all`); above it only the connections watching a user do. Room members
 * always hear of their room's.
 */
import { encode, type PresenceFrame } from "../protocol";
import { topics } from "../hub/routing";
import type { PresenceChanges } from "./presence";

const frame = (event: "join" | "leave", users: string[], room?: string): string => {
  const f: PresenceFrame = users.length === 1 ? { type: "presence", event, user: users[0]! } : { type: "presence", event, users };
  if (room !== undefined) f.room = room;
  return encode(f);
};

/** The frames one tick's changes make, as [topic, data] pairs. */
export function presenceFrames(c: PresenceChanges, online: number, globalMax: number): [string, string][] {
  const out: [string, string][] = [];
  for (const [event, users] of [
    ["leave", c.leaves],
    ["join", c.joins],
  ] as const) {
    if (users.length === 0) continue;
    if (online <= globalMax) out.push([topics.all, frame(event, users)]);
    else for (const u of users) out.push([topics.watch(u), frame(event, [u])]);
  }
  for (const [room, r] of c.rooms) {
    if (r.leaves.length > 0) out.push([topics.room(room), frame("leave", r.leaves, room)]);
    if (r.joins.length > 0) out.push([topics.room(room), frame("join", r.joins, room)]);
  }
  return out;
}
