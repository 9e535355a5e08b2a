/** The hub's inputs and counters: what a connect brings, what the hub is built from, what it counts. */
import type { Broker } from "../broker/broker";
import type { History } from "../history/history";
import type { Presence } from "../presence/presence";
import type { Identity, TokenVerifier } from "../auth/auth";
import type { Logger } from "../log";
import type { Observers } from "../metrics";
import type { GcPacer } from "./gc_pacer";

/** What a connect brings, checked before the upgrade. */
export interface Session {
  user: string;
  since?: number;
  /** The epoch `since` belongs to, when the client knows it. */
  epoch?: string;
  rooms: readonly string[];
  /** The verified token's holder (jwt and accounts modes). */
  identity?: Identity;
  /** The client's address (after TRUST_PROXY). */
  ip: string;
  /** `?batch=1`: messages arrive as JSON arrays, one per topic and commit batch. */
  batch?: boolean;
}

/** What the hub needs; all of it is built outside and passed in. */
export interface HubDeps {
  history: History;
  broker: Broker;
  presence: Presence;
  /** Up to this many users online, everyone hears of every join and leave; above it, watchers only (default 500). */
  presenceGlobalMax?: number;
  /** Most messages one connect replays before it answers `resumed:false`. */
  replayLimit: number;
  /** How long a closing client may still be receiving (default 2,000 ms); see Cursors. */
  closeGraceMs?: number;
  /** Per-user message rate (0: off) and burst. */
  msgRate?: number;
  msgBurst?: number;
  /** Verifies `auth` frames; undefined in open mode. */
  verifier?: TokenVerifier;
  log?: Logger;
  /** Histograms to observe (commit, ack latency, batch and replay sizes). */
  observers?: Observers;
  /** Paces young-generation collections by the messages delivered here (from any node); undefined: the engine's own pacing. */
  gcPacer?: GcPacer;
}

/** Counters for /metrics; they only go up. */
export interface HubStats {
  badFrames: number;
  /** Sends Bun reported as dropped (0) rather than sent or queued. */
  droppedSends: number;
  /** Replays that met backpressure and waited for the socket to drain. */
  replayPauses: number;
  opened: number;
  closed: number;
  rateLimited: number;
  /** Times every socket was told to resume because the broker lost messages. */
  gaps: number;
  /** Typing frames not sent: over the per-conversation rate, or to a socket under backpressure. */
  typingDropped: number;
  framesIn: number;
  /** Connects refused before the upgrade, by error code. */
  refused: Record<string, number>;
  resumedFalse: number;
  /** Sockets Bun closed for being too far behind. */
  backpressureCloses: number;
  /** Frames sent to one socket (welcome, acks, errors, replays; publishes are the broker's count), and their bytes. */
  framesOut: number;
  bytesOut: number;
}

/** A fresh set of counters, all at 0. */
export const newHubStats = (): HubStats => ({
  badFrames: 0,
  droppedSends: 0,
  replayPauses: 0,
  opened: 0,
  closed: 0,
  rateLimited: 0,
  gaps: 0,
  typingDropped: 0,
  framesIn: 0,
  refused: {},
  resumedFalse: 0,
  backpressureCloses: 0,
  framesOut: 0,
  bytesOut: 0,
});
