/**
 * The admin page's files: static HTML under the chat page's strict policy
 * (no inline script), its stylesheet, and its script transpiled from
 * TypeScript once, on first request. Like the chat page, a compiled binary
 * has no sources to read: its build calls `bundleAdminPage` and the binary
 * hands the result to `embedAdminPage` before the server starts.
 */
import { contentSecurityPolicy, type PageAssets } from "../../web/page";
// Text imports: a compiled binary carries them, with no file to read at run time.
import html from "./index.html" with { type: "text" };
// @ts-expect-error TypeScript has no types for a stylesheet imported as text
import css from "./style.css" with { type: "text" };
// @ts-expect-error imported as its source text (Bun's text loader), not as a module
import source from "./main.ts" with { type: "text" };
/** The page only fetches its own origin: no configured origins in its policy. */
const POLICY = contentSecurityPolicy();

/** Transpiles the page's script; the HTML and CSS are served as they are. */
export async function bundleAdminPage(): Promise<PageAssets> {
  const js = new Bun.Transpiler({ loader: "ts", target: "browser" }).transformSync(source as unknown as string);
  return { html: html as unknown as string, css: css as unknown as string, js };
}

let assets: Promise<PageAssets> | undefined;

/** Serves these files instead of reading the sources (the compiled binary). */
export function embedAdminPage(page: PageAssets): void {
  assets = Promise.resolve(page);
}

const TYPES = { page: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" } as const;

/** One of the page's files as a response. */
export async function adminAsset(name: "page" | "js" | "css"): Promise<Response> {
  assets ??= bundleAdminPage().catch((err) => {
    assets = undefined;
    throw err;
  });
  const a = await assets;
  const extra: Record<string, string> = name === "page" ? { "content-security-policy": POLICY, "referrer-policy": "no-referrer" } : {};
  return new Response(name === "page" ? a.html : a[name], {
    headers: { "content-type": TYPES[name], "x-content-type-options": "nosniff", "cache-control": "no-store", ...extra },
  });
}
