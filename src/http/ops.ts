/** Operations routes: health, readiness, metrics, and the API descriptions (OpenAPI, AsyncAPI). */
import { Elysia, t } from "elysia";
import { openapi } from "@elysiajs/openapi";
import type { Broker } from "../broker/broker";
import { ChatError } from "../errors";
import type { History } from "../history/history";
import type { Hub } from "../hub/hub";
import { oneLine } from "../log";
import type { createMetrics } from "../metrics";
import { HealthBody, HttpError, ReadyBody } from "../protocol";
import { asyncApiDocument } from "./asyncapi";
import pkg from "../../package.json" with { type: "json" };

export interface OpsOptions {
  hub: Hub;
  history: History;
  broker: Broker;
  metrics: ReturnType<typeof createMetrics>;
  /** When set, `/metrics` needs it as a bearer token. */
  metricsToken?: string;
}

/** An OpenAPI response whose body is a file of this media type: a page, a script, a stylesheet, an icon, a document. */
export const fileResponse = (type: string, description: string) => ({ description, content: { [type]: { schema: { type: "string" as const } } } });

/** An OpenAPI error response: the `{error, message}` body every refusal has (`HttpError`). */
export const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: JSON.parse(JSON.stringify(HttpError)) as Record<string, unknown> } },
});

const HTML = "text/html; charset=utf-8";
const JSON_TYPE = "application/json";
const SVG = "image/svg+xml";
const bundleFailed = errorResponse("The page's script or stylesheet could not be bundled from its sources");

/**
 * The routes the OpenAPI generator cannot describe from their hooks: the chat
 * page (`src/web/page.ts`), which declares none, and the plugin's own two.
 */
const describedPaths = {
  "/": { get: { operationId: "getChatPage", summary: "The web chat page", responses: { 200: fileResponse(HTML, "The page") } } },
  "/app.js": {
    get: {
      operationId: "getChatScript",
      summary: "The chat page's script",
      responses: { 200: fileResponse("text/javascript", "The bundled script"), 500: bundleFailed },
    },
  },
  "/app.css": {
    get: {
      operationId: "getChatStyles",
      summary: "The chat page's stylesheet",
      responses: { 200: fileResponse("text/css", "The stylesheet"), 500: bundleFailed },
    },
  },
  "/favicon.svg": { get: { operationId: "getFaviconSvg", summary: "The page's icon", responses: { 200: fileResponse(SVG, "The icon (SVG)") } } },
  "/favicon.ico": {
    get: { operationId: "getFaviconIco", summary: "The icon at the path browsers ask for", responses: { 200: fileResponse(SVG, "The icon (SVG)") } },
  },
  "/docs": {
    get: { operationId: "getDocs", summary: "This document, as a browsable page", responses: { 200: fileResponse(HTML, "The page (it loads /openapi.json)") } },
  },
  "/openapi.json": {
    get: {
      operationId: "getOpenApi",
      summary: "This document: the HTTP API as OpenAPI 3.1",
      responses: { 200: fileResponse(JSON_TYPE, "The OpenAPI document") },
    },
  },
};

/** `/health`, `/ready`, `/metrics`, `/openapi.json` with `/docs`, `/asyncapi.json`. */
export function opsRoutes({ hub, history, broker, metrics, metricsToken }: OpsOptions) {
  const startedAt = Date.now();
  return new Elysia()
    .use(
      openapi({
        path: "/docs",
        specPath: "/openapi.json",
        // The WebSocket routes are described by /asyncapi.json; OpenAPI has no way to say "upgrade".
        // `staticFile: false`: paths with a dot (`/asyncapi.json`) are routes like any other here.
        exclude: { paths: ["/ws", "/ws/:username"], staticFile: false },
        documentation: {
          info: {
            title: "wirechat HTTP API",
            version: pkg.version,
            description:
              "History, presence, accounts, admin and operations routes, and the web pages. The WebSocket protocol is described at /asyncapi.json. " +
              'Every refusal is JSON `{error, message}` (HttpError); besides the answers listed, an unknown route answers 404 and an unexpected failure 500 `{"error":"internal"}`.',
          },
          paths: describedPaths,
          components: {
            securitySchemes: {
              bearer: {
                type: "http",
                scheme: "bearer",
                bearerFormat: "JWT",
                description: "AUTH=jwt: a token of your identity provider; AUTH=accounts: from POST /auth/login. Not used with AUTH=open.",
              },
              admin: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN (the admin API exists only when it is set)" },
              metrics: { type: "http", scheme: "bearer", description: "METRICS_TOKEN, when set" },
            },
          },
        },
      }),
    )
    .get("/asyncapi.json", () => asyncApiDocument(pkg.version), {
      detail: {
        summary: "The WebSocket protocol as an AsyncAPI 3.0 document",
        responses: { 200: fileResponse(JSON_TYPE, "The AsyncAPI document") },
      },
    })
    .get(
      "/health",
      () => ({
        status: "ok" as const,
        uptimeMs: Date.now() - startedAt,
        connections: hub.connections,
        lastId: broker.deliveredThrough(),
      }),
      { detail: { summary: "Liveness: the process answers" }, response: HealthBody },
    )
    .get(
      "/ready",
      async () => {
        if (hub.draining) throw new ChatError("unavailable", "Shutting down: send traffic to another node");
        try {
          await history.check();
        } catch (err) {
          throw new ChatError("unavailable", `The message store does not take writes now: ${oneLine(err)}`);
        }
        return { status: "ready" as const };
      },
      { detail: { summary: "Readiness: not shutting down, and the store takes writes" }, response: { 200: ReadyBody, 503: HttpError } },
    )
    .get(
      "/metrics",
      async ({ request }) => {
        if (metricsToken !== undefined && request.headers.get("authorization") !== `Bearer ${metricsToken}`) {
          throw new ChatError("unauthorized", "Metrics need Authorization: Bearer <METRICS_TOKEN>");
        }
        return new Response(await metrics.registry.metrics(), { headers: { "content-type": metrics.registry.contentType } });
      },
      {
        detail: {
          summary: "Prometheus metrics of this node",
          description:
            "The Prometheus text format (text/plain; version=0.0.4). With METRICS_TOKEN set it needs that bearer token (401 otherwise); without, it is open.",
          security: [{ metrics: [] }],
        },
        response: { 200: t.String({ description: "Metrics in the Prometheus text format" }), 401: HttpError },
      },
    );
}
