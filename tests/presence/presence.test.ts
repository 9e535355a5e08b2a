/**
 * Presence on one node (issue 11): join/leave coalesced per tick, room
 * presence, the global limit with watch/unwatch, and a connect storm whose
 * count of presence frames grows linearly in the number of users, not
 * quadratically. Real server, real sockets; frames are awaited with a
 * timeout, and "nothing arrived" is shown with a later frame on the same
 * socket (a barrier), never with a sleep.
 */
import { afterEach, describe, expect, test, setDefaultTimeout } from "bun:test";
import { Client, isAck, isError, startServer, waitUntil, type TestServer } from "../helpers";
import { createLocalPresence } from "../../src/presence/presence_local";
import type { Presence, PresenceChanges } from "../../src/presence/presence";
import type { AckFrame, ErrorFrame, PresenceFrame, SingleServerFrame as ServerFrame, WelcomeFrame } from "../../src/protocol";

// Longer than any wait inside a test, so a stuck wait fails with its own message.
setDefaultTimeout(30_000);

let s: TestServer | undefined;
const open: Client[] = [];

afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await s?.stop();
  s = undefined;
});

const join = async (path: string, ms = 5000) => {
  const c = new Client(`${s!.ws}${path}`);
  open.push(c);
  return c.ready(ms);
};
const isPresence = (f: ServerFrame): f is PresenceFrame => f.type === "presence";
/** The users a presence frame names, `user` or `users`. */
const named = (f: PresenceFrame) => f.users ?? (f.user === undefined ? [] : [f.user]);
const mentions = (user: string) => (f: ServerFrame) => isPresence(f) && named(f).includes(user);
const welcomeOf = (c: Client) => c.raw.map((r) => JSON.parse(r) as ServerFrame).find((f) => f.type === "welcome") as WelcomeFrame;

/** Polls `cond` every 5 ms until it holds; throws after `ms` (a deadline, not a sleep). */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  await waitUntil(cond, what, { ms, pollMs: 5 });
}

/**
 * The real local presence with a gate in front: while held, the hub's
 * add/remove calls queue up; `release` hands them on in one synchronous turn,
 * so they fall in one tick of the coalescer whatever the machine's speed.
 */
function gated(inner: Presence) {
  let held: (() => void)[] | undefined;
  const call = (f: () => void) => (held ? held.push(f) : f());
  const presence: Presence = {
    ...inner,
    add: (u) => call(() => inner.add(u)),
    remove: (u) => call(() => inner.remove(u)),
    addRoom: (u, r) => call(() => inner.addRoom(u, r)),
    removeRoom: (u, r) => call(() => inner.removeRoom(u, r)),
  };
  return {
    presence,
    hold: () => void (held = []),
    queued: () => held?.length ?? 0,
    release() {
      const h = held ?? [];
      held = undefined;
      for (const f of h) f();
    },
  };
}

describe("coalescing (the presence seam alone)", () => {
  test("a leave and a join of one user in one tick cancel; several joins come as one change", async () => {
    const p = createLocalPresence(10);
    const seen: PresenceChanges[] = [];
    let wake = () => {};
    p.onChanges((c) => (seen.push(c), wake()));
    const nextChange = () =>
      new Promise<PresenceChanges>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no presence change")), 5000);
        wake = () => (clearTimeout(t), resolve(seen.shift()!));
      });
    let c = nextChange();
    p.add("alice");
    expect(await c).toEqual({ joins: ["alice"], leaves: [], rooms: new Map() });
    c = nextChange();
    p.remove("alice");
    p.add("alice"); // back within the tick: nothing changed
    p.add("a");
    p.add("b");
    p.addRoom("a", "dev");
    expect(await c).toEqual({ joins: ["a", "b"], leaves: [], rooms: new Map([["dev", { joins: ["a"], leaves: [] }]]) });
    expect(p.isOnline("alice")).toBe(true);
    expect(p.count()).toBe(3);
    await p.close();
  });
});

describe("join and leave, coalesced per tick", () => {
  test("several users connecting in one tick arrive as one frame with users", async () => {
    const g = gated(createLocalPresence());
    s = startServer({ presence: g.presence });
    const watcher = await join("/ws/watcher");
    expect(await watcher.next(isPresence)).toEqual({ type: "presence", event: "join", user: "watcher" });
    g.hold();
    await Promise.all(["a", "b", "c"].map((u) => join(`/ws/${u}`)));
    await until(() => g.queued() === 3, "the three connects reached presence");
    g.release();
    const f = await watcher.next<PresenceFrame>(isPresence);
    expect(f.user).toBeUndefined();
    expect({ ...f, users: [...f.users!].sort() }).toEqual({ type: "presence", event: "join", users: ["a", "b", "c"] });
    // The same for leaves.
    g.hold();
    for (const c of open.slice(1)) c.close();
    await until(() => g.queued() === 3, "the three closes reached presence");
    g.release();
    const l = await watcher.next<PresenceFrame>(isPresence);
    expect({ ...l, users: [...(l.users ?? [])].sort() }).toEqual({ type: "presence", event: "leave", users: ["a", "b", "c"] });
  });

  test("a user who leaves and comes back within a tick produces nothing", async () => {
    const g = gated(createLocalPresence());
    s = startServer({ presence: g.presence });
    const watcher = await join("/ws/watcher");
    const a1 = await join("/ws/alice");
    // Alice's join may share a tick (and a frame) with the watcher's own.
    expect(await watcher.next(mentions("alice"))).toMatchObject({ type: "presence", event: "join" });
    g.hold();
    a1.close();
    await until(() => g.queued() === 1, "alice's close reached presence");
    await join("/ws/alice");
    await until(() => g.queued() === 2, "alice's new connect reached presence");
    g.release();
    // Barrier: a later join on the same socket; anything about alice would have come before it.
    await join("/ws/marker");
    expect(await watcher.next(isPresence)).toEqual({ type: "presence", event: "join", user: "marker" });
    expect(watcher.frames.filter(mentions("alice"))).toEqual([]);
    expect((await (await fetch(`${s.http}/users/online`)).json()).users.sort()).toEqual(["alice", "marker", "watcher"]);
  });

  test("users connecting at once at the default tick: every join arrives exactly once, the welcome lists who is online", async () => {
    s = startServer();
    const watcher = await join("/ws/watcher");
    const users = Array.from({ length: 20 }, (_, i) => `u${i}`);
    await Promise.all(users.map((u) => join(`/ws/${u}`)));
    const got: string[] = [];
    while (got.length < users.length) {
      const f = await watcher.next<PresenceFrame>(isPresence);
      expect(f.event).toBe("join");
      got.push(...named(f).filter((u) => u !== "watcher"));
    }
    expect(got.sort()).toEqual([...users].sort());
    const late = await join("/ws/late");
    const w = welcomeOf(late);
    expect(w.online!.sort()).toEqual([...users, "late", "watcher"].sort());
    expect(w.onlineCount).toBe(22);
    // Barrier: nothing more about u0..u19 after their one join each.
    expect(await watcher.next(mentions("late"))).toEqual({ type: "presence", event: "join", user: "late" });
    expect(watcher.frames.filter((f) => isPresence(f) && named(f).some((u) => users.includes(u)))).toEqual([]);
  });

  test("a user with two connections leaves once, when the last one closes", async () => {
    s = startServer();
    const watcher = await join("/ws/watcher");
    const a1 = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    expect(await watcher.next(mentions("alice"))).toMatchObject({ type: "presence", event: "join" });
    expect(watcher.frames.filter(mentions("alice"))).toEqual([]);
    a1.close();
    await a1.closedWith();
    await join("/ws/marker");
    expect(await watcher.next(isPresence)).toEqual({ type: "presence", event: "join", user: "marker" });
    a2.close();
    expect(await watcher.next(isPresence)).toEqual({ type: "presence", event: "leave", user: "alice" });
  });
});

describe("room presence", () => {
  test("members of a room hear of its joins and leaves, others do not; GET /rooms/:room/online", async () => {
    s = startServer();
    const carol = await join("/ws/carol?rooms=dev");
    const dave = await join("/ws/dave?rooms=ops");
    await join("/ws/bob?rooms=dev");
    // Bob's join may share a tick with carol's own: then one frame lists both.
    expect(await carol.next((f) => isPresence(f) && f.room === "dev" && named(f).includes("bob"))).toMatchObject({
      type: "presence",
      room: "dev",
      event: "join",
    });
    expect(await (await fetch(`${s.http}/rooms/dev/online`)).json()).toMatchObject({ count: 2 });
    expect((await (await fetch(`${s.http}/rooms/dev/online`)).json()).users.sort()).toEqual(["bob", "carol"]);
    expect(await (await fetch(`${s.http}/rooms/ops/online`)).json()).toEqual({ users: ["dave"], count: 1 });
    expect(await (await fetch(`${s.http}/rooms/empty/online`)).json()).toEqual({ users: [], count: 0 });
    expect((await fetch(`${s.http}/rooms/no%20spaces/online`)).status).toBe(400);

    // Joining with a frame: the room's members hear of it, with the room named.
    dave.send({ type: "join", room: "dev", cid: "j" });
    await dave.next(isAck("j"));
    const inDev = (user: string) => (f: ServerFrame) => isPresence(f) && f.room === "dev" && named(f).includes(user);
    expect(await carol.next(inDev("dave"))).toEqual({ type: "presence", room: "dev", event: "join", user: "dave" });
    expect((await (await fetch(`${s.http}/rooms/dev/online`)).json()).users.sort()).toEqual(["bob", "carol", "dave"]);

    const bob = open[2]!;
    bob.send({ type: "leave", room: "dev", cid: "l" });
    await bob.next(isAck("l"));
    for (const c of [carol, dave]) {
      expect(await c.next(inDev("bob"))).toEqual({ type: "presence", room: "dev", event: "leave", user: "bob" });
    }
    expect((await (await fetch(`${s.http}/rooms/dev/online`)).json()).users.sort()).toEqual(["carol", "dave"]);

    // Barrier for everyone: a later global join. Before it, dave heard nothing of dev while
    // outside it (bob's join), and nobody outside ops heard of ops.
    await join("/ws/marker");
    for (const c of [carol, dave, bob]) await c.next(mentions("marker"));
    expect(dave.frames.filter(inDev("bob"))).toEqual([]);
    for (const c of [carol, bob]) expect(c.frames.filter((f) => isPresence(f) && f.room === "ops")).toEqual([]);
  });

  test("a room member with two connections leaves the room only with the last", async () => {
    s = startServer();
    const carol = await join("/ws/carol?rooms=dev");
    const b1 = await join("/ws/bob?rooms=dev");
    const b2 = await join("/ws/bob?rooms=dev");
    expect(await carol.next((f) => isPresence(f) && f.room === "dev" && named(f).includes("bob"))).toMatchObject({ event: "join" });
    b1.close();
    await b1.closedWith();
    await join("/ws/marker?rooms=dev");
    expect(await carol.next((f) => isPresence(f) && f.room === "dev")).toEqual({ type: "presence", room: "dev", event: "join", user: "marker" });
    expect((await (await fetch(`${s.http}/rooms/dev/online`)).json()).users.sort()).toEqual(["bob", "carol", "marker"]);
    b2.close();
    expect(await carol.next((f) => isPresence(f) && f.room === "dev")).toEqual({ type: "presence", room: "dev", event: "leave", user: "bob" });
  });
});

describe("above PRESENCE_GLOBAL_MAX: watchers only", () => {
  test("the welcome has onlineCount and no online; nobody hears global join/leave; watch, ack, unwatch", async () => {
    s = startServer({ presenceGlobalMax: 2 });
    const o1 = await join("/ws/o1");
    const o2 = await join("/ws/o2");
    expect(welcomeOf(o2).online!.sort()).toEqual(["o1", "o2"]);
    expect(welcomeOf(o2).onlineCount).toBe(2);
    await o1.next(mentions("o2"));

    // Above the limit: the count, no list.
    const p = await join("/ws/p");
    const wp = welcomeOf(p);
    expect("online" in wp).toBe(false);
    expect(wp.onlineCount).toBe(3);
    p.send({ type: "watch", users: ["x"], cid: "px" });
    expect(await p.next<AckFrame>(isAck("px"))).toEqual({ type: "ack", cid: "px", online: [] });
    const x = await join("/ws/x");
    expect(welcomeOf(x).online).toBeUndefined();
    expect(welcomeOf(x).onlineCount).toBe(4);
    expect(await p.next(isPresence)).toEqual({ type: "presence", event: "join", user: "x" });
    expect(await (await fetch(`${s.http}/users/online`)).json()).toMatchObject({ count: 4 });

    // x's join went out (p got it): a watch now answers with who is online, and no join follows.
    o1.send({ type: "watch", users: ["x", "y", "nobody"], cid: "w" });
    expect(await o1.next<AckFrame>(isAck("w"))).toEqual({ type: "ack", cid: "w", online: ["x"] });

    const y1 = await join("/ws/y");
    expect(await o1.next(isPresence)).toEqual({ type: "presence", event: "join", user: "y" });
    y1.close();
    expect(await o1.next(isPresence)).toEqual({ type: "presence", event: "leave", user: "y" });

    o1.send({ type: "unwatch", users: ["y"], cid: "u" });
    expect(await o1.next<AckFrame>(isAck("u"))).toEqual({ type: "ack", cid: "u" });
    await join("/ws/y"); // its join is noted before x's close below: an earlier or the same tick
    x.close();
    expect(await o1.next(isPresence)).toEqual({ type: "presence", event: "leave", user: "x" });
    expect(o1.frames.filter(isPresence)).toEqual([]);

    // Barrier for the others: they watch a marker, whose join comes after everything above.
    const others = [o2, p];
    for (const [i, c] of others.entries()) {
      c.send({ type: "watch", users: ["marker"], cid: `m${i}` });
      expect(await c.next<AckFrame>(isAck(`m${i}`))).toEqual({ type: "ack", cid: `m${i}`, online: [] });
    }
    await join("/ws/marker");
    expect(await o2.next(mentions("marker"))).toEqual({ type: "presence", event: "join", user: "marker" });
    // p watched x: it heard x's leave, then the marker; nothing of y.
    expect(await p.next(isPresence)).toEqual({ type: "presence", event: "leave", user: "x" });
    expect(await p.next(isPresence)).toEqual({ type: "presence", event: "join", user: "marker" });
    // Nobody heard a global join or leave of p, x or y.
    // Nobody heard a global join or leave of p, x or y: o2 watched none of them, p only x, o1 (above) x and y for a while.
    expect(o2.raw.filter((r) => r.includes('"presence"') && /"(p|x|y)"/.test(r))).toEqual([]);
    expect(p.raw.filter((r) => r.includes('"presence"') && /"(p|y)"/.test(r))).toEqual([]);
    expect(o1.raw.filter((r) => r.includes('"presence"') && /"p"/.test(r))).toEqual([]);
  });

  test("watching more than 500 users is refused with invalid_frame", async () => {
    s = startServer({ presenceGlobalMax: 1 });
    const c = await join("/ws/c");
    const names = (from: number, n: number) => Array.from({ length: n }, (_, i) => `w${from + i}`);
    c.send({ type: "watch", users: names(0, 501), cid: "big" });
    expect(await c.next<ErrorFrame>(isError)).toMatchObject({ type: "error", code: "invalid_frame" });

    c.send({ type: "watch", users: names(0, 300), cid: "a" });
    expect(await c.next<AckFrame>(isAck("a"))).toEqual({ type: "ack", cid: "a", online: [] });
    c.send({ type: "watch", users: names(0, 300), cid: "again" }); // the same ones: still 300
    expect(await c.next<AckFrame>(isAck("again"))).toEqual({ type: "ack", cid: "again", online: [] });
    c.send({ type: "watch", users: names(300, 201), cid: "b" });
    expect(await c.next<ErrorFrame>(isError)).toMatchObject({ type: "error", code: "invalid_frame", cid: "b" });
    c.send({ type: "watch", users: names(300, 200), cid: "c" }); // exactly 500
    expect(await c.next<AckFrame>(isAck("c"))).toEqual({ type: "ack", cid: "c", online: [] });
    c.send({ type: "unwatch", users: names(0, 1), cid: "u" });
    await c.next(isAck("u"));
    c.send({ type: "watch", users: ["w0", "c"], cid: "d" }); // 501 with both: one too many
    expect(await c.next<ErrorFrame>(isError)).toMatchObject({ type: "error", code: "invalid_frame", cid: "d" });
    c.send({ type: "watch", users: ["c"], cid: "e" }); // back to 500, and c itself is online
    expect(await c.next<AckFrame>(isAck("e"))).toEqual({ type: "ack", cid: "e", online: ["c"] });
    expect(c.closed).toBeUndefined();
  });
});

describe("connect storm", () => {
  /**
   * N users connect, B at once, with PRESENCE_GLOBAL_MAX = G, and each watches one
   * other user. Global join frames go out only in ticks that end with at
   * most G users online: at most G such ticks (each adds a user), each frame
   * to at most G subscribers, so at most G(G+1)/2 frames whatever N is. Each
   * user has one watcher, so watch frames add at most N. Hence
   *   total <= G(G+1)/2 + N = 1,275 + 300 = 1,575 <= 6N (c = 6 at N = 300, G = 50),
   * against N(N+1)/2 = 45,150 when every connect told everyone (the old quadratic behaviour).
   */
  test("300 users, PRESENCE_GLOBAL_MAX=50: presence frames grow linearly, not quadratically", async () => {
    const N = 300;
    const G = 50;
    const B = 25;
    s = startServer({ presenceGlobalMax: G });
    // In batches of B: each client, once welcomed, watches the user at its place in the next batch,
    // so every watched user connects after its watcher's ack (its join must reach that one watcher).
    const clients: Client[] = [];
    for (let from = 0; from < N; from += B) {
      const batch = await Promise.all(Array.from({ length: B }, (_, j) => join(`/ws/s${from + j}`, 20_000)));
      for (const [j, c] of batch.entries()) c.send({ type: "watch", users: [`s${from + j + B}`], cid: "w" });
      for (const c of batch) expect(await c.next<AckFrame>(isAck("w"))).toEqual({ type: "ack", cid: "w", online: [] });
      clients.push(...batch);
    }
    // Every welcome: the list only while at most G were online, the count always.
    for (const c of clients) {
      const w = welcomeOf(c);
      expect(typeof w.onlineCount).toBe("number");
      if (w.onlineCount <= G) expect(w.online!.length).toBe(w.onlineCount);
      else expect(w.online).toBeUndefined();
    }
    // Barrier: everyone watches a marker; its join reaches each socket after every earlier presence frame.
    for (const c of clients) c.send({ type: "watch", users: ["marker"], cid: "m" });
    for (const c of clients) await c.next(isAck("m"));
    await join("/ws/marker");
    for (const c of clients) await c.next(mentions("marker"));
    // Each watcher heard its watched user's join exactly once (globally while few were online, or as a watcher).
    for (let i = 0; i + B < N; i++) expect(clients[i]!.raw.filter((r) => r.includes('"presence"') && r.includes(`"s${i + B}"`)).length).toBe(1);

    const frames = clients.flatMap((c) => c.raw.map((r) => JSON.parse(r) as ServerFrame)).filter(isPresence);
    const count = frames.filter((f) => !named(f).includes("marker")).length;
    const bound = (G * (G + 1)) / 2 + N;
    console.log(`connect storm: ${N} users, ${count} presence frames (bound ${bound} = ${(bound / N).toFixed(2)}·N; quadratic would be ${(N * (N + 1)) / 2})`);
    expect(count).toBeLessThanOrEqual(bound);
    expect(count).toBeLessThanOrEqual(6 * N);
    expect(count).toBeGreaterThanOrEqual(N - B); // the watched joins, at least: the count is real
    expect(count).toBeLessThan((N * N) / 2 / 10);
    // Every frame is a join (nobody left), and none above the limit went to everyone.
    expect(frames.every((f) => f.event === "join")).toBe(true);
  }, 60_000);
});
