/**
 * Direct-message latency client (run by bench/run.ts as its own process).
 *
 * Opens --n sockets (u0..u<n-1>), then sends direct messages from u<i> to
 * u<(i+1)%n> at a fixed open-loop rate: the schedule never waits for
 * replies, so a slow server shows up as latency rather than as a lower rate.
 * Each text carries performance.now() of this process at the moment of the
 * send, and the target computes the latency against the same clock. The
 * sender's echo is counted too: every message must arrive twice, and any
 * shortfall after the drain is reported as lost.
 *
 * Prints one JSON line: {"event":"result", sent, delivered, expected, lost,
 * p50_ms, p99_ms, max_ms, samples, achieved_rate, error}.
 * With --tokens FILE (line i: the token of u<i>), each socket sends
 * `Authorization: Bearer <token>` on its upgrade: wirechat runs with AUTH=jwt.
 * With --ports P1,P2 (a cluster's nodes) socket i connects to port i % k, so
 * every message from u<i> to u<i+1> crosses nodes; --welcome waits for each
 * socket's first frame (wirechat's welcome) before it counts as open.
 * --query Q is appended to every socket's path (`?batch=1`: wirechat sends
 * JSON arrays of frames; each message inside one is timed).
 * --warmup-rate R sends at R a second during the warm-up, then at --rate:
 * the server's JIT then compiles the same code before the window opens
 * whatever the measured rate.
 * --paired: odd-numbered sockets connect with `?batch=1`, even ones without,
 * on the same server at the same time. Each message is timed at its
 * receiver, so the result also gives p50/p99 per receiver mode
 * (`p99_batch_ms`, `p99_plain_ms`): a stall of the machine or the server
 * then hits both modes alike, and their ratio shows what coalescing itself
 * adds. Usage: bun bench/latency.ts --port P | --ports P1,P2 --rate 2000 --duration 2 [--n 64] [--warmup 0.5] [--warmup-rate R] [--sio] [--tokens FILE] [--welcome] [--query ?batch=1] [--paired] [--first-user K]
 * --cids: every message carries a fresh cid, as the SDK's sends do (wirechat
 * then acks each one and remembers it for retries; acks are not timed).
 * --first-user K names socket i u<K+i> (token line K+i): the interleaved
 * latency runs measure the same servers again and again, each time with users
 * they have not seen (wirechat would replay a returning user's inbox).
 */
import { parseArgs } from "node:util";

const { values: a } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    port: { type: "string" },
    ports: { type: "string" },
    welcome: { type: "boolean", default: false },
    n: { type: "string", default: "64" },
    rate: { type: "string", default: "2000" },
    duration: { type: "string", default: "2" },
    warmup: { type: "string", default: "0.5" },
    "warmup-rate": { type: "string" },
    drain: { type: "string", default: "3" },
    sio: { type: "boolean", default: false },
    tokens: { type: "string" },
    query: { type: "string", default: "" },
    paired: { type: "boolean", default: false },
    "first-user": { type: "string", default: "0" },
    cids: { type: "boolean", default: false },
  },
});
const ports = (a.ports ?? a.port ?? "")
  .split(",")
  .filter((p) => p !== "")
  .map(Number);
const n = Number(a.n);
/** Socket i is user u<first + i> (and takes line first + i of the token file): a later run against the same server gets users it has not seen. */
const first = Number(a["first-user"]);
const rate = Number(a.rate);
const duration = Number(a.duration) * 1000;
const warmup = Number(a.warmup) * 1000;
/** Messages per second during the warm-up (default: the measured rate). */
const warmupRate = Number(a["warmup-rate"] ?? a.rate);
const drain = Number(a.drain) * 1000;
const sio = a.sio;
const tokens = a.tokens ? (await Bun.file(a.tokens).text()).split("\n").filter((t) => t !== "") : undefined;
if (a.query !== "" && !a.query.startsWith("?")) {
  console.error("--query must start with ?");
  process.exit(2);
}
if (a.paired && (a.query !== "" || a.sio)) {
  console.error("--paired sets each socket's query itself: it takes neither --query nor --sio");
  process.exit(2);
}
if (
  ports.length === 0 ||
  ports.some((p) => !Number.isInteger(p) || p <= 0) ||
  n < 2 ||
  !(rate > 0) ||
  !Number.isInteger(first) ||
  first < 0 ||
  (tokens && tokens.length < first + n)
) {
  console.error(
    "usage: bun bench/latency.ts --port P | --ports P1,P2 --rate R --duration S [--n 64] [--sio] [--tokens FILE with a line per socket] [--first-user K]",
  );
  process.exit(2);
}

let delivered = 0;
let error: string | null = null;
const samples: number[] = [];
/** With --paired: the samples whose receiver batches (odd index) and whose receiver does not. */
const batchSamples: number[] = [];
const plainSamples: number[] = [];
let measureFrom = Infinity;

/** Per socket index: messages it sent, how many of them its target got, and how many came back as its echo (to name a loss). */
const sentBy = new Uint32Array(n);
const gotFrom = new Uint32Array(n);
const echoed = new Uint32Array(n);

/** Handles one delivery: `text` is "#<sender index> <sendTime>". */
function onDelivery(me: number, from: string, text: string): void {
  if (!text.startsWith("#")) return;
  delivered++;
  if (from === `u${first + me}`) {
    echoed[me]!++;
    return; // the sender's echo: counted, not timed
  }
  const space = text.indexOf(" ");
  gotFrom[Number(text.slice(1, space))]!++;
  const sentAt = Number(text.slice(space + 1));
  if (sentAt < measureFrom) return;
  const ms = performance.now() - sentAt;
  samples.push(ms);
  if (a.paired) (me % 2 === 1 ? batchSamples : plainSamples).push(ms);
}

function open(i: number): Promise<WebSocket> {
  const port = ports[i % ports.length]!;
  const url = sio
    ? `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket&username=u${first + i}`
    : `ws://127.0.0.1:${port}/ws/u${first + i}${a.paired && i % 2 === 1 ? "?batch=1" : a.query}`;
  // Bun's WebSocket takes headers (browsers cannot); the DOM lib's typing hides
  // that overload, hence the cast. Without --tokens no header is sent.
  const ws = tokens
    ? new WebSocket(url, { headers: { Authorization: `Bearer ${tokens[first + i]}` } } satisfies Bun.WebSocketOptions as unknown as string[])
    : new WebSocket(url);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`u${first + i}: connect timed out`)), 15_000);
    const ready = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    if (!sio && !a.welcome) ws.onopen = ready;
    // Bun's error event names the refused upgrade's status (401: bad token).
    ws.onerror = (e) => reject(new Error(`u${first + i}: connection failed: ${(e as ErrorEvent).message ?? "no reason given"}`));
    ws.onclose = () => {
      error ??= `u${first + i}: connection closed by the server`;
    };
    ws.onmessage = (ev) => {
      const s = typeof ev.data === "string" ? ev.data : "";
      if (!sio) {
        if (a.welcome && s.includes('"type":"welcome"')) return ready();
        if (!s.includes('"type":"message"')) {
          // Acks are not timed; an error frame is the sign of a refused message: the run fails with it.
          if (/^\[?\{"type":"error"/.test(s)) error ??= `u${first + i}: the server answered with ${s.slice(0, 200)}`;
          return;
        }
        type Delivery = { type: string; from: string; text: string };
        // A coalesced frame (`?batch=1`) is an array of frames.
        const parsed = JSON.parse(s) as Delivery | Delivery[];
        for (const f of Array.isArray(parsed) ? parsed : [parsed]) if (f.type === "message") onDelivery(i, f.from, f.text);
        return;
      }
      // Engine.IO v4 / Socket.IO v5 framing: open, connect, ping, event.
      if (s.startsWith("0")) ws.send("40");
      else if (s.startsWith("40")) ready();
      else if (s === "2") ws.send("3");
      else if (s.startsWith("42")) {
        const [, f] = JSON.parse(s.slice(2)) as [string, { from: string; text: string }];
        onDelivery(i, f.from, f.text);
      }
    };
  });
}

function send(ws: WebSocket, i: number): void {
  const to = `u${first + ((i + 1) % n)}`;
  const text = `#${i} ${performance.now()}`;
  if (sio) ws.send(`42${JSON.stringify(["direct", { to, text }])}`);
  else ws.send(JSON.stringify(a.cids ? { type: "direct", to, text, cid: crypto.randomUUID() } : { type: "direct", to, text }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sockets = await Promise.all(Array.from({ length: n }, (_, i) => open(i)));
await sleep(200); // let welcome/presence chatter pass
const start = performance.now();
measureFrom = start + warmup;
const end = measureFrom + duration;
let sent = 0;
// Open loop: each tick sends whatever the schedule says is due by now.
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const now = performance.now();
    const t = Math.min(now, end) - start;
    const due = Math.floor((Math.min(t, warmup) * warmupRate + Math.max(0, t - warmup) * rate) / 1000);
    while (sent < due) {
      const i = sent % n;
      send(sockets[i]!, i);
      sentBy[i]!++;
      sent++;
    }
    if (now >= end || error) {
      clearInterval(timer);
      resolve();
    }
  }, 1);
});
const expected = sent * 2;
// Drain: give up only when deliveries stop arriving for --drain seconds (lost
// messages never come), so a server working off a backlog is not called lossy.
const drainStart = performance.now();
let lastCount = delivered;
let lastProgress = drainStart;
while (delivered < expected && !error && performance.now() - lastProgress < drain && performance.now() - drainStart < 60_000) {
  await sleep(5);
  if (delivered !== lastCount) (lastCount = delivered), (lastProgress = performance.now());
}
for (const ws of sockets) ws.onclose = null;

for (const xs of [samples, batchSamples, plainSamples]) xs.sort((x, y) => x - y);
/** The p-th percentile of sorted `xs` (0 without samples). */
const pct = (p: number, xs = samples) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : 0);
const paired = a.paired
  ? {
      p50_batch_ms: pct(50, batchSamples),
      p99_batch_ms: pct(99, batchSamples),
      samples_batch: batchSamples.length,
      p50_plain_ms: pct(50, plainSamples),
      p99_plain_ms: pct(99, plainSamples),
      samples_plain: plainSamples.length,
    }
  : {};
const lost = Math.max(0, expected - delivered);
if (delivered > expected) error ??= "more deliveries than messages sent";
if (lost) {
  /** Which senders' messages fell short, at the target or as the echo: one message missing both, or several missing one. */
  const short: string[] = [];
  for (let i = 0; i < n; i++) {
    if (gotFrom[i] === sentBy[i] && echoed[i] === sentBy[i]) continue;
    short.push(`u${first + i}→u${first + ((i + 1) % n)}: sent ${sentBy[i]}, target got ${gotFrom[i]}, echo ${echoed[i]}`);
  }
  error ??= `${lost} deliveries missing after a ${drain / 1000} s drain: ${short.slice(0, 8).join("; ")}${short.length > 8 ? `; and ${short.length - 8} more senders` : ""}`;
}
console.log(
  JSON.stringify({
    event: "result",
    sent,
    delivered,
    expected,
    lost,
    p50_ms: pct(50),
    p99_ms: pct(99),
    max_ms: samples.at(-1) ?? 0,
    samples: samples.length,
    ...paired,
    // The measured window's rate: what was sent after the warm-up's share.
    achieved_rate: ((sent - Math.floor((warmup * warmupRate) / 1000)) * 1000) / duration,
    error,
  }),
);
for (const ws of sockets) ws.close();
process.exit(error || lost ? 1 : 0);
