/**
 * The entry of the compiled binary (`bun run compile`, scripts/compile.ts,
 * which calls `main` with the page it bundled and embedded):
 *
 *   wirechat                     the server, configured by the environment (as `bun run src/index.ts`)
 *   wirechat healthcheck [path]  GET path (default /health) of the server on HOST:PORT; exit 0 on 200 (Docker HEALTHCHECK)
 *   wirechat backup <file>       copy DB_PATH to a new file while the server runs (as `bun run backup`)
 *   wirechat version
 *
 * Each command loads only what it needs: a health check does not load the server.
 */
import type { PageAssets } from "../src/web/page.ts";

const USAGE = `usage:
  wirechat                      start the server (configured by the environment, see README "Configuration")
  wirechat healthcheck [path]   exit 0 when GET path (default /health) on HOST:PORT answers 200
  wirechat backup <file>        copy the SQLite database at DB_PATH to a new file, while the server runs
  wirechat version              print the version`;

export async function main(page: PageAssets, version: string): Promise<void> {
  const code = await run(process.argv.slice(2), page, version);
  if (code !== undefined) process.exit(code);
}

/** Runs one command; undefined when it is the server, which keeps running. */
async function run([command, ...rest]: string[], page: PageAssets, version: string): Promise<number | undefined> {
  switch (command) {
    case undefined: {
      const { embedPage } = await import("../src/web/page.ts");
      embedPage(page);
      await import("../src/index.ts");
      return undefined;
    }
    case "healthcheck":
      return await healthcheck(rest[0] ?? "/health", process.env);
    case "backup": {
      const { backupCommand } = await import("./backup.ts");
      return backupCommand(rest, process.env);
    }
    case "version":
    case "--version":
      console.log(`wirechat ${version}`);
      return 0;
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    default:
      console.error(`wirechat: unknown command ${JSON.stringify(command)}\n${USAGE}`);
      return 2;
  }
}

/** Asks the local server; a wildcard HOST (0.0.0.0, ::) is reached on loopback. */
async function healthcheck(path: string, env: Record<string, string | undefined>): Promise<number> {
  const host = env.HOST?.trim() || "127.0.0.1";
  const reach = host === "0.0.0.0" || host === "::" || host === "[::]" ? "127.0.0.1" : host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  const url = `http://${reach}:${env.PORT?.trim() || "8000"}${path.startsWith("/") ? path : `/${path}`}`;
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
    if (r.status === 200) return 0;
    console.error(`healthcheck: ${url} answered ${r.status}`);
  } catch (err) {
    console.error(`healthcheck: ${url}: ${(err as Error).message}`);
  }
  return 1;
}
