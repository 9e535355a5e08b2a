/**
 * wirechat's socket shortcut: in `open` the hub replaces the socket's `data`
 * with its own `Connection`, whose `message`, `drain` and `close` Elysia's
 * global WebSocket handler then calls directly with the raw frame (no
 * promise, JSON guess or wrapper per message). That relies on Elysia
 * dispatching every event through `ws.data.<event>(ws, ...)`, as Elysia
 * 1.4.30 does. This check runs Elysia's own dispatcher once at start and
 * fails loudly if a future Elysia dispatches otherwise.
 */
import { websocket as elysiaDispatch } from "elysia/ws";

/** Throws when Elysia's dispatcher no longer forwards message, drain and close to `ws.data`. */
export function assertElysiaDispatch(): void {
  const seen: string[] = [];
  const data = {
    message: (_ws: unknown, m: unknown) => seen.push(`message:${String(m)}`),
    drain: () => seen.push("drain"),
    close: (_ws: unknown, code: number) => seen.push(`close:${code}`),
  };
  const ws = { data } as never;
  const d = elysiaDispatch as unknown as Record<string, (...args: unknown[]) => void>;
  d.message?.(ws, "probe");
  d.drain?.(ws);
  d.close?.(ws, 1000, "");
  const expected = ["message:probe", "drain", "close:1000"];
  if (seen.join() !== expected.join()) {
    throw new Error(
      `Elysia's WebSocket dispatcher no longer calls ws.data.message/drain/close (saw ${JSON.stringify(seen)}): ` +
        "wirechat's socket shortcut (src/hub/hub.ts open) must be revised for this Elysia version",
    );
  }
}
