import { afterAll, beforeAll, expect, test } from "bun:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import { Parser } from "@asyncapi/parser";
import { ClientFrame, ServerFrame } from "../../src/protocol";
import { startServer, type TestServer } from "../helpers";

let s: TestServer;
beforeAll(() => {
  s = startServer();
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

test("GET /openapi.json: a valid OpenAPI document with every HTTP route, its answers and security schemes", async () => {
  const doc = await (await fetch(`${s.http}/openapi.json`)).json();
  await SwaggerParser.validate(structuredClone(doc));
  const paths = Object.keys(doc.paths);
  for (const p of [
    "/health",
    "/ready",
    "/metrics",
    "/auth/mode",
    "/auth/register",
    "/auth/login",
    "/auth/refresh",
    "/users/online",
    "/history",
    "/rooms/{room}/history",
    "/rooms/{room}/online",
    "/users/{name}/history",
    "/admin/users/{name}/disconnect",
    "/admin/users/{name}/revoke",
  ]) {
    expect(paths).toContain(p);
  }
  expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["admin", "bearer", "metrics"]);
  expect(doc.paths["/users/{name}/history"].get.security).toEqual([{ bearer: [] }]);
  expect(Object.keys(doc.paths["/auth/login"].post.responses)).toEqual(expect.arrayContaining(["200", "401", "429"]));
});

test("GET /docs: the browsable page of the OpenAPI document", async () => {
  const r = await fetch(`${s.http}/docs`);
  expect(r.status).toBe(200);
  // Scalar loads the document from the page's own origin.
  expect(await r.text()).toContain('"url":"openapi.json"');
});

test("GET /asyncapi.json: valid AsyncAPI 3.0 with a message for every frame type of the protocol", async () => {
  const doc = await (await fetch(`${s.http}/asyncapi.json`)).json();
  const { document, diagnostics } = await new Parser().parse(JSON.stringify(doc));
  expect(diagnostics.filter((d) => d.severity === 0)).toEqual([]);
  expect(document).toBeDefined();
  const names = (action: "receive" | "send") =>
    document!
      .operations()
      .all()
      .filter((o) => o.action() === action)
      .flatMap((o) =>
        o
          .messages()
          .all()
          .map((m) => m.name()!),
      )
      .sort();
  // Adding a frame to the protocol without it reaching this document fails here.
  expect(names("receive")).toEqual(frameTypes(ClientFrame));
  expect(names("send")).toEqual(frameTypes(ServerFrame));
  expect(frameTypes(ClientFrame)).toContain("broadcast");
});
