import { afterAll, beforeAll, expect, test } from "bun:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import { Parser } from "@asyncapi/parser";
import { decodeFrame } from "../../src/decode";
import { socket } from "../../src/http/sockets";
import { ClientFrame, ServerFrame } from "../../src/protocol";
import { recordingLogger, startServer, type TestServer } from "../helpers";

const ADMIN = "admin-token-for-the-docs-test";
const METRICS = "metrics-token-for-the-docs-test";

let s: TestServer;
beforeAll(() => {
  s = startServer({ adminToken: ADMIN, metricsToken: METRICS, log: recordingLogger() });
});
afterAll(async () => {
  await s.stop();
});

/** The `type` literals of a protocol union, nested unions included. */
function frameTypes(union: unknown): string[] {
  const out = new Set<string>();
  const visit = (x: { anyOf?: unknown[]; type?: string; properties?: { type?: { const?: string } } }) => {
    if (x.anyOf) for (const m of x.anyOf) visit(m as typeof x);
    else if (x.type === "array") out.add("batch");
    else if (x.properties?.type?.const) out.add(x.properties.type.const);
  };
  visit(union as never);
  return [...out].sort();
}

/** Every HTTP route the app answers, as the app itself lists them; the WebSocket upgrade routes are /asyncapi.json's. */
function httpRoutes(app: TestServer["app"]): { method: string; path: string; route: string }[] {
  return app.routes.filter((r) => r.method !== "WS").map((r) => ({ method: r.method.toLowerCase(), path: r.path.replace(/:([^/]+)/g, "{$1}"), route: r.path }));
}

type OpenApi = {
  components: { securitySchemes: Record<string, unknown> };
  paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, unknown> }>; security?: unknown }>>;
};

const openApi = async (): Promise<OpenApi> => (await fetch(`${s.http}/openapi.json`)).json() as Promise<OpenApi>;

test("GET /openapi.json: a valid OpenAPI document with every HTTP route of the app, its answers and security schemes", async () => {
  const doc = await openApi();
  await SwaggerParser.validate(structuredClone(doc) as never);
  const routes = httpRoutes(s.app);
  expect(routes.length).toBeGreaterThan(20);
  // A route added without documentation (or without its answers) fails here.
  const undocumented = routes.filter((r) => Object.keys(doc.paths[r.path]?.[r.method]?.responses ?? {}).length === 0).map((r) => `${r.method} ${r.path}`);
  expect(undocumented).toEqual([]);
  expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["admin", "bearer", "metrics"]);
  expect(doc.paths["/users/{name}/history"]!.get!.security).toEqual([{ bearer: [] }]);
  expect(Object.keys(doc.paths["/auth/login"]!.post!.responses!)).toEqual(expect.arrayContaining(["200", "400", "401", "429"]));
  const metrics = doc.paths["/metrics"]!.get!;
  expect(metrics.security).toEqual([{ metrics: [] }]);
  expect(Object.keys(metrics.responses!["200"]!.content!)).toEqual(["text/plain"]);
  expect(Object.keys(metrics.responses!)).toEqual(["200", "401"]);
  for (const action of ["disconnect", "revoke"]) {
    expect(Object.keys(doc.paths[`/admin/users/{name}/${action}`]!.post!.responses!).sort()).toEqual(["200", "400", "401", "404"]);
  }
});

test("every answer of every HTTP route, good and bad requests alike, is one its document lists", async () => {
  const doc = await openApi();
  const headers: Record<string, string>[] = [{}, { authorization: `Bearer ${ADMIN}` }, { authorization: `Bearer ${METRICS}` }];
  const queries = ["", `?limit=999&before=0&user=${"x".repeat(70)}`];
  const bodies = [undefined, "{", JSON.stringify({ username: "bob", password: "a-long-password" }), JSON.stringify({ username: 1 })];
  const undocumented: string[] = [];
  for (const r of httpRoutes(s.app)) {
    const documented = Object.keys(doc.paths[r.path]?.[r.method]?.responses ?? {});
    const params = r.route.includes(":") ? ["bob", "bad name"] : [""];
    for (const param of params) {
      const url = r.route.replace(/:[^/]+/g, encodeURIComponent(param));
      for (const h of headers) {
        for (const q of queries) {
          for (const body of r.method === "get" ? [undefined] : bodies) {
            const res = await fetch(`${s.http}${url}${q}`, {
              method: r.method.toUpperCase(),
              headers: body === undefined ? h : { ...h, "content-type": "application/json" },
              body,
            });
            await res.arrayBuffer();
            if (!documented.includes(String(res.status))) undocumented.push(`${r.method} ${url}${q} ${body ?? ""} answered ${res.status}`);
          }
        }
      }
    }
  }
  expect(undocumented).toEqual([]);
}, 60_000);

test("GET /docs: the browsable page of the OpenAPI document", async () => {
  const r = await fetch(`${s.http}/docs`);
  expect(r.status).toBe(200);
  // Scalar loads the document from the page's own origin.
  expect(await r.text()).toContain('"url":"openapi.json"');
});

/** The frame types of decode.ts's own table of checkers, read from its source (the table is not exported). */
async function decodeTableTypes(): Promise<string[]> {
  const source = await Bun.file(new URL("../../src/decode.ts", import.meta.url)).text();
  const table = /const checkers = \{([^}]*)\}/.exec(source)?.[1];
  if (table === undefined) throw new Error("src/decode.ts has no `const checkers = {…}` table: update this test to read its frame types");
  return [...table.matchAll(/^\s*(\w+):/gm)].map((m) => m[1]!).sort();
}

/** The message decodeFrame gives for a frame of this type with no other field. */
const decodeError = (type: string): string => {
  try {
    decodeFrame(JSON.stringify({ type }));
  } catch (err) {
    return (err as Error).message;
  }
  return "accepted";
};

test("GET /asyncapi.json: valid AsyncAPI 3.0 with a message for every frame type the server takes and sends", async () => {
  const doc = await (await fetch(`${s.http}/asyncapi.json`)).json();
  const { document, diagnostics } = await new Parser().parse(JSON.stringify(doc));
  expect(diagnostics.filter((d) => d.severity === 0)).toEqual([]);
  expect(document).toBeDefined();
  const names = (operation: string) =>
    document!
      .operations()
      .get(operation)!
      .messages()
      .all()
      .map((m) => m.name()!)
      .sort();
  // Adding a frame to the protocol without it reaching this document fails here.
  expect(names("clientFrames")).toEqual(frameTypes(ClientFrame));
  expect(names("serverFrames")).toEqual(frameTypes(ServerFrame));
  expect(frameTypes(ClientFrame)).toContain("broadcast");
  // decode.ts keeps its own table of frame types: each must be in the document, and each documented one decodable.
  const table = await decodeTableTypes();
  expect(table).toContain("broadcast");
  for (const type of table) expect(decodeError(type)).toStartWith(`Invalid ${type} frame`);
  expect(names("clientFrames")).toEqual(expect.arrayContaining(table));
  for (const type of names("clientFrames")) expect(decodeError(type)).not.toStartWith("Unknown frame type");
  // The compatibility forms decode.ts also accepts.
  expect(names("legacyClientFrames")).toEqual(["plainText", "tutorial"]);
  expect(decodeFrame('{"message":"hi","to_user":"bob"}')).toEqual({ type: "direct", to: "bob", text: "hi" });
  expect(decodeFrame("hi")).toEqual({ type: "broadcast", text: "hi" });
  expect(doc.components.messages.clientPlainText.contentType).toBe("text/plain");
  // How a connect is refused: an HTTP answer before the upgrade.
  expect(doc.channels.chat.description).toContain("{error, message}");
  expect(Object.keys(doc.channels.chat.bindings.ws.query.properties)).toEqual(Object.keys(socket.query.properties));
});
