/**
 * The web chat page as an Elysia plugin: `GET /` serves static HTML under a
 * strict Content-Security-Policy, and the script and stylesheet it loads are
 * bundled by `Bun.build` from TypeScript on first request, in memory.
 */
import { Elysia } from "elysia";
import { join } from "node:path";

const dir = import.meta.dir;

/** A bundle built once per process; a failed build is retried on the next request. */
interface Asset {
  body: string;
  type: string;
}

let bundle: Promise<{ js: Asset; css: Asset }> | undefined;

async function build(): Promise<{ js: Asset; css: Asset }> {
  const out = await Bun.build({
    entrypoints: [join(dir, "main.ts")],
    target: "browser",
    format: "esm",
    minify: true,
  });
  if (!out.success) throw new AggregateError(out.logs, "bundling the web page failed");
  const js = out.outputs.find((o) => o.kind === "entry-point");
  if (!js) throw new Error("bundling the web page produced no script");
  const css = await Bun.file(join(dir, "style.css")).text();
  return {
    js: { body: await js.text(), type: "text/javascript; charset=utf-8" },
    css: { body: css, type: "text/css; charset=utf-8" },
  };
}

const assets = () => {
  bundle ??= build().catch((err) => {
    bundle = undefined;
    throw err;
  });
  return bundle;
};

/** Only a plain host[:port] goes into the policy; anything else falls back to 'self' alone. */
const HOST_RE = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * The page's policy: scripts and styles from this origin only (no inline
 * script), sockets only to this host. `'self'` alone does not cover `ws:` in
 * every browser, so the host is named explicitly when it looks sane.
 */
export function contentSecurityPolicy(host: string | null): string {
  const sockets = host && HOST_RE.test(host) ? ` ws://${host} wss://${host}` : "";
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const headers = (type: string, extra: Record<string, string> = {}) => ({
  "content-type": type,
  "x-content-type-options": "nosniff",
  "cache-control": "no-cache",
  ...extra,
});

/**
 * The chat page plugin: `app.use(webPage())` adds `GET /`, `GET /app.js`
 * and `GET /app.css`. The bundle is made on the first request and kept.
 */
export const webPage = () =>
  new Elysia({ name: "web" })
    .get("/", async ({ request }) => {
      const html = await Bun.file(join(dir, "index.html")).text();
      return new Response(html, {
        headers: headers("text/html; charset=utf-8", {
          "content-security-policy": contentSecurityPolicy(request.headers.get("host")),
          "referrer-policy": "no-referrer",
        }),
      });
    })
    .get("/app.js", async () => {
      const { js } = await assets();
      return new Response(js.body, { headers: headers(js.type) });
    })
    .get("/app.css", async () => {
      const { css } = await assets();
      return new Response(css.body, { headers: headers(css.type) });
    });
