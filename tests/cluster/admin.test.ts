/**
 * The admin API on a cluster (issues 8 and 11): a disconnect or a revoke
 * asked of one node closes the user's connections on every node, and a
 * revoked token is refused by every node.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { RedisClient } from "bun";
import { SignJWT } from "jose";
import { CLOSE } from "../../src/protocol";
import { Cluster, redisServer } from "./cluster";
import type { RedisServer } from "../redis_server";
import { connect, upgrade, waitUntil, type Client } from "../helpers";

setDefaultTimeout(30_000);

const SECRET = "cluster-admin-test-secret-of-32-bytes!!";
const ADMIN = "admin-token-for-the-cluster-test";
let redis: RedisServer;
let c: Cluster;
const clients: Client[] = [];

const token = (user: string, iat = Math.floor(Date.now() / 1000)) =>
  new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(user).setIssuedAt(iat).setExpirationTime("1h").sign(new TextEncoder().encode(SECRET));

/** A connection of `user` to node `i` with `tok`. */
async function on(i: number, user: string, tok: string): Promise<Client> {
  const cl = await connect(`${c.node(i).ws}/ws/${user}`, { headers: { authorization: `Bearer ${tok}` } });
  clients.push(cl);
  return cl;
}

const admin = (i: number, user: string, action: "disconnect" | "revoke") =>
  fetch(`${c.node(i).http}/admin/users/${user}/${action}`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}` } });

beforeAll(async () => {
  redis = await redisServer(false);
  c = await Cluster.start(redis, { nodes: 2, env: { AUTH: "jwt", JWT_SECRET: SECRET, ADMIN_TOKEN: ADMIN } });
});
afterAll(async () => {
  for (const cl of clients) cl.close();
  await c?.stop();
  await redis?.stop();
});

describe("admin API across nodes", () => {
  test("disconnect on node 0 closes the user's connections on node 1 too (4003), and no one else's", async () => {
    // Issued a second ago: the revoke test below revokes tokens issued before its own second.
    const tok = await token("ann", Math.floor(Date.now() / 1000) - 1);
    const here = await on(0, "ann", tok);
    const there = await on(1, "ann", tok);
    const other = await on(1, "bea", await token("bea"));
    const res = await admin(0, "ann", "disconnect");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ user: "ann", closed: 1 });
    expect((await here.closedWith()).code).toBe(CLOSE.forbidden);
    expect((await there.closedWith()).code).toBe(CLOSE.forbidden);
    // bea on the same node is untouched: she still gets her acks.
    other.send({ type: "broadcast", text: "still here", cid: "b1" });
    expect((await other.next((f) => f.type === "ack" && f.cid === "b1")).type).toBe("ack");
    expect(other.closed).toBeUndefined();
  });

  test("revoke on node 1 closes the user's connections on node 0 (4001), and node 0 refuses the old token", async () => {
    const tok = await token("cid", Math.floor(Date.now() / 1000) - 2);
    const here = await on(1, "cid", tok);
    const there = await on(0, "cid", tok);
    const res = await admin(1, "cid", "revoke");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ user: "cid", closed: 1 });
    expect((await here.closedWith()).code).toBe(CLOSE.unauthorized);
    expect((await there.closedWith()).code).toBe(CLOSE.unauthorized);
    const again = await upgrade(`${c.node(0).ws}/ws/cid`, { authorization: `Bearer ${tok}` });
    expect(again.status).toBe(401);
  });

  test("/admin/stats on node 0 lists both nodes with their own connections and users", async () => {
    // Only this test's connections: the earlier tests' are closed first.
    for (const cl of clients.splice(0)) cl.close();
    await on(0, "eve", await token("eve"));
    await on(1, "fay", await token("fay"));
    await on(1, "fay", await token("fay"));
    type Nodes = { node: string; connections: number; users: number }[];
    const nodes = await waitUntil(
      async () => {
        const body = (await (await fetch(`${c.node(0).http}/admin/stats`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { nodes: Nodes };
        // Each node writes its figures every 2 s: wait for both to have written these connects.
        const n = body.nodes;
        return n.length === 2 && n[0]!.connections === 1 && n[1]!.connections === 2 && n;
      },
      "both nodes report their connections",
      { ms: 10_000, pollMs: 200 },
    );
    expect(nodes.map((n) => [n.connections, n.users])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(nodes[0]!.node).not.toBe(nodes[1]!.node);
  });

  test("/admin/stats answers with this node alone while Redis does not answer", async () => {
    const admin = new RedisClient(redis.url);
    // Every client's commands wait while Redis is paused: the board cannot be read.
    expect(await admin.send("CLIENT", ["PAUSE", "3000", "ALL"])).toBe("OK");
    try {
      const t0 = performance.now();
      const res = await fetch(`${c.node(0).http}/admin/stats`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(res.status).toBe(200);
      const { nodes } = (await res.json()) as { nodes: { self: boolean }[] };
      expect(nodes.map((n) => n.self)).toEqual([true]);
      // Answered from memory once the board's read gave up (0.5 s), long before the pause ends.
      expect(performance.now() - t0).toBeLessThan(2500);
    } finally {
      await admin.send("CLIENT", ["UNPAUSE"]);
      admin.close();
    }
  });
});
