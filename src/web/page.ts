/**
 * The web chat page as an Elysia plugin: `GET /` serves static HTML under a
 * strict Content-Security-Policy, and the script and stylesheet it loads are
 * bundled by `Bun.build` from TypeScript on first request, in memory. The
 * compiled binary (`bun run compile`) has no source files to bundle: its
 * build bundles the page once (`bundlePage`) and embeds the result
 * (`embedPage`), which is then served instead.
 */
import { Elysia } from "elysia";
import { join } from "node:path";
import { FAVICON_SVG } from "./favicon";

const dir = import.meta.dir;

/** The page's three files, as served. */
export interface PageAssets {
  /** `index.html`. */
  html: string;
  /** The bundled, minified script, `/app.js`. */
  js: string;
  /** The stylesheet, `/app.css`. */
  css: string;
}

/** Assets embedded at compile time; undefined when running from source. */
let embedded: PageAssets | undefined;

/**
 * Serves these assets instead of bundling `src/web` (the compiled binary
 * calls it before the server starts). Called again, the last call wins.
 */
export function embedPage(assets: PageAssets): void {
  embedded = assets;
}

/** Bundles the page from its sources in `src/web`: what `scripts/compile.ts` embeds, and what is served otherwise. */
export async function bundlePage(): Promise<PageAssets> {
  const out = await Bun.build({
    entrypoints: [join(dir, "main.ts")],
    target: "browser",
    format: "esm",
    minify: true,
  });
  if (!out.success) throw new AggregateError(out.logs, "bundling the web page failed");
  const js = out.outputs.find((o) => o.kind === "entry-point");
  if (!js) throw new Error("bundling the web page produced no script");
  const [html, css] = await Promise.all([Bun.file(join(dir, "index.html")).text(), Bun.file(join(dir, "style.css")).text()]);
  return { html, js: await js.text(), css };
}

/** A bundle built once per process; a failed build is retried on the next request. */
let bundle: Promise<PageAssets> | undefined;

const assets = (): Promise<PageAssets> => {
  if (embedded) return Promise.resolve(embedded);
  bundle ??= bundlePage().catch((err) => {
    bundle = undefined;
    throw err;
  });
  return bundle;
};

const JS = "text/javascript; charset=utf-8";
const SVG = "image/svg+xml";
const CSS = "text/css; charset=utf-8";

/** Options of the page plugin. */
export interface WebPageOptions {
  /**
   * Origins the server lets browsers connect from (`ALLOWED_ORIGINS`), e.g.
   * `https://chat.example.com`. Their ws/wss forms join `connect-src`, for
   * browsers whose `'self'` does not cover WebSockets. `*` or nothing adds
   * none: the page itself only ever connects to its own origin.
   */
  allowedOrigins?: readonly string[] | "*";
}

/**
 * The WebSocket form of an http(s) origin (`https://x` → `wss://x`), or
 * undefined for anything that is not a plain origin: only configured,
 * well-formed origins reach the policy, never a request header.
 */
export function socketOrigin(origin: string): string | undefined {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return undefined;
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.origin !== origin.replace(/\/$/, "")) return undefined;
  return `${u.protocol === "https:" ? "wss" : "ws"}://${u.host}`;
}

/**
 * The page's policy: scripts and styles from this origin only (no inline
 * script), sockets and fetches to this origin and to the configured ones.
 */
export function contentSecurityPolicy(opts: WebPageOptions = {}): string {
  const origins = opts.allowedOrigins === "*" ? [] : (opts.allowedOrigins ?? []);
  const sockets = [...new Set(origins.map(socketOrigin).filter((o): o is string => o !== undefined))];
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    ["connect-src 'self'", ...sockets].join(" "),
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
 * The chat page plugin: `app.use(webPage({ allowedOrigins }))` adds `GET /`,
 * `GET /app.js`, `GET /app.css` and the icon (`/favicon.svg`, `/favicon.ico`). The bundle is made on the first request
 * and kept (or was embedded at compile time).
 */
export const webPage = (opts: WebPageOptions = {}) => {
  // The same for every request: nothing of the request goes into it.
  const policy = contentSecurityPolicy(opts);
  // Elysia dedupes plugins by name and seed: two policies are two plugins.
  return (
    new Elysia({ name: "web", seed: policy })
      .get("/", async () => {
        // From source the HTML is read on each request (it needs no bundling, so `/` works even when bundling fails).
        const html = embedded?.html ?? (await Bun.file(join(dir, "index.html")).text());
        return new Response(html, {
          headers: headers("text/html; charset=utf-8", {
            "content-security-policy": policy,
            "referrer-policy": "no-referrer",
          }),
        });
      })
      .get("/app.js", async () => {
        const { js } = await assets();
        return new Response(js, { headers: headers(JS) });
      })
      .get("/app.css", async () => {
        const { css } = await assets();
        return new Response(css, { headers: headers(CSS) });
      })
      // The page links /favicon.svg; browsers also ask for /favicon.ico on their own. Both: no 404 in the console.
      .get("/favicon.svg", () => new Response(FAVICON_SVG, { headers: headers(SVG) }))
      .get("/favicon.ico", () => new Response(FAVICON_SVG, { headers: headers(SVG) }))
  );
};
