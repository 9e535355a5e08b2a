/**
 * `/metrics` parses with a Prometheus text-format parser, and its counters
 * move by exactly what a test sends: accepted by kind, duplicates, acks,
 * frames in and out, rate-limited messages, refused connects by reason, the
 * connections gauge, resumed:false; the histograms count commits, acks and
 * replays.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import parsePrometheus, { type MetricFamily } from "parse-prometheus-text-format";
import { Client, connect, isAck, startServer, upgrade, waitUntil, type TestServer } from "../helpers";

const METRICS_TOKEN = "metrics-test-token-0123456789";
let s: TestServer;
beforeAll(() => {
  // One message a second after a burst of 5; one connection per user; a token on /metrics; a
  // young-generation collection every 2 delivered messages (at most one per 50 ms).
  s = startServer({ msgRate: 1, msgBurst: 5, maxConnectionsPerUser: 1, metricsToken: METRICS_TOKEN, gcPace: 2 });
});
afterAll(async () => {
  await s.stop();
});

/** The parsed families by name. */
async function scrape(): Promise<Map<string, MetricFamily>> {
  const res = await fetch(`${s.http}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/plain");
  const families = parsePrometheus(await res.text());
  return new Map(families.map((f) => [f.name, f]));
}

/** The sum of a family's samples whose labels include `labels` (a histogram: its count). */
function value(m: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number {
  const f = m.get(name);
  if (!f) throw new Error(`no metric ${name}`);
  let sum = 0;
  for (const sample of f.metrics) {
    if (!Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v)) continue;
    sum += Number("count" in sample ? sample.count : sample.value);
  }
  return sum;
}

/** Scrapes until `name` reads `want` (the server handles a close on its own turn); throws after the deadline. */
async function until(name: string, want: number, ms = 5000): Promise<void> {
  let got = NaN;
  await waitUntil(
    async () => {
      got = value(await scrape(), name);
      return got === want;
    },
    () => `${name} reads ${want}; it stayed at ${got}`,
    { ms },
  );
}

test("/metrics needs METRICS_TOKEN when it is set", async () => {
  expect((await fetch(`${s.http}/metrics`)).status).toBe(401);
  expect((await fetch(`${s.http}/metrics`, { headers: { authorization: "Bearer wrong-0123456789" } })).status).toBe(401);
});

test("every family parses; process metrics are there", async () => {
  const m = await scrape();
  for (const name of [
    "wirechat_process_resident_memory_bytes",
    "wirechat_nodejs_eventloop_lag_seconds",
    "wirechat_connections",
    "wirechat_users_online",
    "wirechat_messages_accepted_total",
    "wirechat_store_commit_seconds",
    "wirechat_ack_latency_seconds",
  ]) {
    expect(m.has(name)).toBe(true);
  }
  expect(m.get("wirechat_store_commit_seconds")!.type).toBe("HISTOGRAM");
  expect(m.get("wirechat_messages_accepted_total")!.type).toBe("COUNTER");
  expect(value(m, "wirechat_process_resident_memory_bytes")).toBeGreaterThan(0);
});

test("counters move with the traffic the test sends", async () => {
  const before = await scrape();
  const delta = (after: Map<string, MetricFamily>, name: string, labels?: Record<string, string>) => value(after, name, labels) - value(before, name, labels);

  const alice = await connect(`${s.ws}/ws/alice?rooms=dev`);
  const bob = await connect(`${s.ws}/ws/bob`);
  await until("wirechat_connections", value(before, "wirechat_connections") + 2);

  alice.send({ type: "broadcast", text: "one", cid: "b1" });
  const first = await alice.next(isAck("b1"));
  alice.send({ type: "direct", to: "bob", text: "two", cid: "d1" });
  await alice.next(isAck("d1"));
  alice.send({ type: "room", room: "dev", text: "three", cid: "r1" });
  await alice.next(isAck("r1"));
  // A retry with the same cid: the first ack again, nothing stored.
  alice.send({ type: "broadcast", text: "one", cid: "b1" });
  expect(await alice.next(isAck("b1"))).toEqual(first);
  await bob.next((f) => f.type === "message" && f.text === "two");

  // bob sends 8 at once against a burst of 5: the rest are refused.
  for (let i = 0; i < 8; i++) bob.send({ type: "broadcast", text: `flood ${i}`, cid: `f${i}` });
  const answers = await bob.take(8, (f) => (f.type === "ack" || f.type === "error") && f.cid?.startsWith("f") === true);
  const limited = answers.filter((f) => f.type === "error" && f.code === "rate_limited").length;
  const flooded = answers.length - limited;
  expect(limited).toBeGreaterThanOrEqual(1);
  expect(flooded).toBeGreaterThanOrEqual(5);

  // A resume with another store's epoch cannot be complete: resumed:false.
  const dave = new Client(`${s.ws}/ws/dave?since=1&epoch=another-store`);
  expect(await dave.next((f) => f.type === "welcome")).toMatchObject({ resumed: false });
  dave.close();

  // Refused connects, by reason.
  expect((await upgrade(`${s.ws}/ws/%zz`)).status).toBe(400);
  expect((await upgrade(`${s.ws}/ws/alice`)).status).toBe(429);
  expect((await upgrade(`${s.ws}/ws/carol`, { Origin: "https://elsewhere.example" })).status).toBe(403);

  const after = await scrape();
  expect(delta(after, "wirechat_messages_accepted_total", { kind: "broadcast" })).toBe(1 + flooded);
  expect(delta(after, "wirechat_messages_accepted_total", { kind: "direct" })).toBe(1);
  expect(delta(after, "wirechat_messages_accepted_total", { kind: "room" })).toBe(1);
  expect(delta(after, "wirechat_messages_duplicate_total")).toBe(1);
  expect(delta(after, "wirechat_acks_total")).toBe(4 + flooded);
  expect(delta(after, "wirechat_rate_limited_total")).toBe(limited);
  expect(delta(after, "wirechat_frames_in_total")).toBe(12);
  // Every stored message reached alice and bob (the direct one: bob and alice's echo; the room one: alice only).
  expect(delta(after, "wirechat_frames_out_total")).toBeGreaterThanOrEqual(2 * (1 + flooded) + 2 + 1);
  expect(delta(after, "wirechat_bytes_out_total")).toBeGreaterThan(0);
  expect(delta(after, "wirechat_connects_refused_total", { reason: "invalid_username" })).toBe(1);
  expect(delta(after, "wirechat_connects_refused_total", { reason: "rate_limited" })).toBe(1);
  expect(delta(after, "wirechat_connects_refused_total", { reason: "forbidden" })).toBe(1);
  expect(delta(after, "wirechat_connections_opened_total")).toBe(3);
  expect(delta(after, "wirechat_resumed_false_total")).toBe(1);
  // GC_PACE: the first 2 messages delivered collect at once; later ones wait 50 ms between collections.
  const stored = delta(after, "wirechat_messages_accepted_total");
  expect(delta(after, "wirechat_gc_paced_pause_seconds")).toBeGreaterThanOrEqual(1);
  expect(delta(after, "wirechat_gc_paced_pause_seconds")).toBeLessThanOrEqual(Math.floor(stored / 2));
  await until("wirechat_connections", value(before, "wirechat_connections") + 2);
  expect(value(await scrape(), "wirechat_users_online")).toBe(value(before, "wirechat_users_online") + 2);

  // Histograms: one observation per commit batch and per connect.
  const batches = delta(after, "wirechat_commit_batches_total");
  expect(batches).toBeGreaterThanOrEqual(1);
  expect(delta(after, "wirechat_store_commit_seconds")).toBe(batches);
  expect(delta(after, "wirechat_commit_batch_size")).toBe(batches);
  expect(delta(after, "wirechat_ack_latency_seconds")).toBe(batches);
  expect(delta(after, "wirechat_replay_messages")).toBe(3);
  // A batch holds what was offered to the store: the stored messages and the retry.
  const sizes = after.get("wirechat_commit_batch_size")!.metrics[0]!;
  expect("sum" in sizes && Number(sizes.sum)).toBe(value(after, "wirechat_messages_accepted_total") + value(after, "wirechat_messages_duplicate_total"));

  alice.close();
  bob.close();
  await until("wirechat_connections", value(before, "wirechat_connections"));
  expect(delta(await scrape(), "wirechat_connections_closed_total")).toBe(3);
});

test("docs/grafana-dashboard.json: valid JSON over the datasource variable, every metric it charts exists", async () => {
  const dashboard = await Bun.file(`${import.meta.dir}/../../docs/grafana-dashboard.json`).json();
  const vars = dashboard.templating.list.map((v: { name: string; type: string }) => `${v.type}:${v.name}`);
  expect(vars).toContain("datasource:datasource");
  const panels = (dashboard.panels as { type: string; datasource?: { uid: string }; targets?: { expr: string; datasource: { uid: string } }[] }[]).filter(
    (p) => p.type !== "row",
  );
  expect(panels.length).toBeGreaterThan(20);
  const m = await scrape();
  const charted = new Set<string>();
  for (const p of panels) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
    expect(p.datasource?.uid).toBe("${datasource}");
    for (const target of p.targets ?? []) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
      expect(target.datasource.uid).toBe("${datasource}");
      for (const [name] of target.expr.matchAll(/wirechat_\w+/g)) {
        const family = m.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "");
        if (!m.has(family)) throw new Error(`the dashboard charts ${name}, which /metrics does not have`);
        charted.add(family);
      }
    }
  }
  // Every wirechat metric (not the generic process ones) is on the dashboard.
  const ours = [...m.keys()].filter((n) => !/^wirechat_(process|nodejs)_/.test(n));
  expect(ours.filter((n) => !charted.has(n))).toEqual([]);
});
