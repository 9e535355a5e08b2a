/**
 * Property tests with fast-check: `decodeFrame` only ever returns a valid
 * client frame or throws a `ChatError` with a protocol error code, whatever
 * the input; and a live server fed arbitrary frames only closes with the
 * protocol's close codes and keeps answering others.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { decodeFrame } from "../src/decode";
import { ChatError } from "../src/errors";
import { ClientFrame, ErrorCode, LIMITS, type SingleServerFrame as ServerFrame } from "../src/protocol";
import { Client, probe } from "./helpers";
import { spawnServer, type ServerProcess } from "./spawn";
import { tempDir } from "./tmp";

const CODES = new Set<string>(ErrorCode.anyOf.map((s) => s.const as string));
const checkClientFrame = TypeCompiler.Compile(ClientFrame);
const TYPES = ["broadcast", "direct", "join", "leave", "room", "auth"] as const;

/** Decodes and checks the outcome: a valid, well-formed frame, or a ChatError with a protocol code. */
function decodesOrRefuses(raw: string): void {
  let frame: ClientFrame;
  try {
    frame = decodeFrame(raw);
  } catch (err) {
    if (!(err instanceof ChatError)) throw new Error(`decodeFrame threw ${String(err)} (not a ChatError) for ${JSON.stringify(raw.slice(0, 200))}`);
    if (!CODES.has(err.code)) throw new Error(`decodeFrame threw code ${JSON.stringify(err.code)} outside ErrorCode for ${JSON.stringify(raw.slice(0, 200))}`);
    if (typeof err.message !== "string" || err.message.length === 0) throw new Error("a ChatError without a message");
    if (err.cid !== undefined && typeof err.cid !== "string") throw new Error("a ChatError whose cid is not a string");
    return;
  }
  if (!checkClientFrame.Check(frame)) throw new Error(`decodeFrame returned an invalid frame ${JSON.stringify(frame).slice(0, 200)}`);
  const text = "text" in frame && (frame.type === "broadcast" || frame.type === "direct" || frame.type === "room") ? frame.text : undefined;
  if (text !== undefined && !text.isWellFormed()) throw new Error(`decodeFrame accepted a lone surrogate in ${JSON.stringify(raw.slice(0, 200))}`);
}

// ---- arbitraries -------------------------------------------------------------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const nasty = fc.constantFrom(
  "{",
  "}",
  "[",
  "]",
  '"',
  "\\",
  ":",
  ",",
  " ",
  "\n",
  "\u0000",
  "\u2028",
  "\ufeff",
  "\u{1F600}",
  "null",
  "true",
  "1e999",
  "-0",
  "__proto__",
  "constructor",
);
const chars = fc.oneof(fc.string({ unit: "binary", minLength: 1, maxLength: 1 }), loneSurrogate, nasty);
const anyText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: chars, maxLength: 40 }),
  fc.string({ unit: "grapheme-ascii", minLength: LIMITS.textMax - 2, maxLength: LIMITS.textMax + 2 }),
  fc.tuple(fc.string({ maxLength: 5 }), loneSurrogate, fc.string({ maxLength: 5 })).map(([a, s, b]) => a + s + b),
);
const name = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/), fc.constantFrom("", "bad name", "x".repeat(65), "\ud800", "a/b", "%zz"));
const field = (good: fc.Arbitrary<unknown>) =>
  fc.oneof(good, anyText, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.object({ maxDepth: 1 }));
/** Frames near the valid shapes: the right keys with right or wrong values, some missing. */
const nearFrame = fc.record(
  {
    type: fc.oneof(fc.constantFrom(...TYPES), fc.constantFrom("Broadcast", "", "message", "__proto__"), fc.integer(), fc.constant(null)),
    text: field(anyText),
    to: field(name),
    room: field(name),
    cid: field(fc.string({ minLength: 1, maxLength: LIMITS.cidMax + 2 })),
    token: field(fc.string({ minLength: 1, maxLength: 50 })),
    message: field(anyText),
    to_user: field(fc.oneof(name, fc.constant(null), fc.constant(""))),
  },
  { requiredKeys: [] },
);
/** Valid frames, by construction. */
const validText = fc.string({ unit: "binary", minLength: 1, maxLength: 200 }).filter((s) => s.isWellFormed());
const validName = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
const validCid = fc.option(fc.string({ minLength: 1, maxLength: LIMITS.cidMax }), { nil: undefined });
const validFrame: fc.Arbitrary<ClientFrame> = fc.oneof(
  fc.record({ type: fc.constant("broadcast" as const), text: validText, cid: validCid }, { requiredKeys: ["type", "text"] }),
  fc.record({ type: fc.constant("direct" as const), to: validName, text: validText, cid: validCid }, { requiredKeys: ["type", "to", "text"] }),
  fc.record({ type: fc.constant("join" as const), room: validName, cid: validCid }, { requiredKeys: ["type", "room"] }),
  fc.record({ type: fc.constant("leave" as const), room: validName, cid: validCid }, { requiredKeys: ["type", "room"] }),
  fc.record({ type: fc.constant("room" as const), room: validName, text: validText, cid: validCid }, { requiredKeys: ["type", "room", "text"] }),
  fc.record({ type: fc.constant("auth" as const), token: fc.string({ minLength: 1, maxLength: 100 }), cid: validCid }, { requiredKeys: ["type", "token"] }),
) as fc.Arbitrary<ClientFrame>;
/** JSON text of a value (JSON.stringify writes a lone surrogate as its `\\uXXXX` escape). */
const jsonText = (v: unknown) => JSON.stringify(v) ?? "null";

describe("decodeFrame (property)", () => {
  test("decodeFrame: arbitrary strings → a valid frame or a ChatError with a protocol code", () => {
    fc.assert(fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 200 }), fc.string({ unit: chars, maxLength: 60 }), anyText), decodesOrRefuses), {
      numRuns: 3000,
    });
  });

  test("decodeFrame: strings that start like JSON objects → a valid frame or a ChatError", () => {
    fc.assert(
      fc.property(fc.string({ unit: chars, maxLength: 60 }), fc.constantFrom("{", " {", "\n\t{", "{}", '{"type":', '{"message":'), (s, head) =>
        decodesOrRefuses(head + s),
      ),
      { numRuns: 3000 },
    );
  });

  test("decodeFrame: arbitrary JSON values → a valid frame or a ChatError", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), (v) => decodesOrRefuses(jsonText(v))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.object({ maxDepth: 2, withNullPrototype: true }), (v) => decodesOrRefuses(jsonText(v))),
      { numRuns: 1000 },
    );
  });

  test("decodeFrame: frames near the valid shapes (wrong types, lone surrogates, long strings) → a valid frame or a ChatError", () => {
    fc.assert(
      fc.property(nearFrame, (f) => decodesOrRefuses(jsonText(f))),
      {
        numRuns: 4000,
        // Found by this property: a known frame type with a stray non-string "text".
        examples: [[{ type: "join", room: "r", text: false }], [{ type: "auth", token: "t", text: 1 }]],
      },
    );
  });

  test("decodeFrame: a valid frame decodes to itself", () => {
    fc.assert(
      fc.property(validFrame, (f) => {
        expect(decodeFrame(JSON.stringify(f))).toEqual(f);
      }),
      { numRuns: 2000 },
    );
  });

  test("decodeFrame: plain text (not starting with {) is a broadcast of exactly that text when 1..4000 well-formed characters", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: chars, minLength: 1, maxLength: 60 }).filter((s) => !/^[ \t\n\r]*\{/.test(s)),
        (s) => {
          if (s.isWellFormed()) expect(decodeFrame(s)).toEqual({ type: "broadcast", text: s });
          else expect(() => decodeFrame(s)).toThrow(ChatError);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("a live server fed arbitrary frames (property)", () => {
  /** The close codes a server may use on a client that sent junk. */
  const ALLOWED_CLOSE = new Set([1000, 1003, 1008, 1009, 4008]);
  let s: ServerProcess;
  beforeAll(async () => {
    s = await spawnServer({ DB_PATH: `${tempDir()}/property.db` });
  });
  afterAll(async () => {
    await s?.stop();
  });

  const wireFrame = fc.oneof(
    { weight: 4, arbitrary: nearFrame.map(jsonText) },
    { weight: 2, arbitrary: fc.string({ unit: chars, maxLength: 60 }) },
    { weight: 2, arbitrary: validFrame.map((f) => JSON.stringify(f)) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map(jsonText) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    { weight: 1, arbitrary: fc.constantFrom("x".repeat(LIMITS.frameBytesMax + 1), `{"type":"broadcast","text":"${"y".repeat(LIMITS.frameBytesMax)}"}`) },
  );

  test("frames (strings, binary) to a live server: closes only with protocol codes, every error code is the protocol's, a probe is answered", async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(wireFrame, { minLength: 1, maxLength: 8 }), async (frames) => {
        const c = new Client(`${s.ws}/ws/fuzz-${n++ % 5}`);
        try {
          await c.ready();
          for (const f of frames) if (c.ws.readyState === WebSocket.OPEN) c.ws.send(f);
          // A last frame with a fresh cid: its ack (or error) says every frame before it was handled.
          const end = `end-${crypto.randomUUID()}`;
          if (c.ws.readyState === WebSocket.OPEN) c.send({ type: "join", room: "fuzz", cid: end });
          try {
            await c.next((f) => (f.type === "ack" || f.type === "error") && f.cid === end);
          } catch (err) {
            if (!c.closed) throw err;
          }
          if (c.closed) expect(ALLOWED_CLOSE).toContain(c.closed.code);
          const bad = c.frames.filter((f: ServerFrame) => f.type === "error" && !CODES.has(f.code));
          expect(bad).toEqual([]);
        } finally {
          c.close();
        }
      }),
      { numRuns: 120, examples: [[['{"type":"join","room":"fuzz","text":1}']]] },
    );
    await probe(`${s.ws}/ws/probe`);
    expect(s.proc.exitCode).toBeNull();
    expect(s.output()).not.toMatch(/unexpected error|^\s+at /m);
  }, 30_000);
});
