/** Operations routes: health, readiness, metrics, and the API descriptions (OpenAPI, AsyncAPI). */
import { Elysia } from "elysia";
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

/** `/health`, `/ready`, `/metrics`, `/openapi.json` with `/docs`, `/asyncapi.json`. */
export function opsRoutes({ hub, history, broker, metrics, metricsToken }: OpsOptions) {
  const startedAt = Date.now();
  return new Elysia()
    .use(
      openapi({
        path: "/docs",
        specPath: "/openapi.json",
        // The WebSocket routes are described by /asyncapi.json; OpenAPI has no way to say "upgrade".
        exclude: { paths: ["/", "/app.js", "/app.css", "/favicon.ico", "/docs", "/openapi.json", "/ws", "/ws/:username"] },
        documentation: {
          info: {
            title: "wirechat HTTP API",
            version: pkg.version,
            description: "History, presence, accounts, admin and operations routes. The WebSocket protocol is described at /asyncapi.json.",
          },
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
    .get("/asyncapi.json", () => asyncApiDocument(pkg.version), { detail: { summary: "The WebSocket protocol as an AsyncAPI 3.0 document" } })
    .get(
      "/health",
      () => ({
        status: "ok" as const,
        uptimeMs: Date.now() - startedAt,
        connections: hub.connections,
        lastId: broker.deliveredThrough(),
      }),
      { response: HealthBody },
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
    .get("/metrics", async ({ request }) => {
      if (metricsToken !== undefined && request.headers.get("authorization") !== `Bearer ${metricsToken}`) {
        throw new ChatError("unauthorized", "Metrics need Authorization: Bearer <METRICS_TOKEN>");
      }
      return new Response(await metrics.registry.metrics(), { headers: { "content-type": metrics.registry.contentType } });
    });
}
