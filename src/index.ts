/**
 * The server's entry point: the only module that reads the environment,
 * listens and handles signals. `bun run src/index.ts`.
 */
import { createApp } from "./app";
import { ConfigError, loadConfig } from "./config";
import { createSqliteHistory } from "./history/history_sqlite";
import { startPruning } from "./history/retention";

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`wirechat: ${err.message}`);
  process.exit(2);
}

let history;
try {
  history = createSqliteHistory(config.dbPath, config.dbSync);
} catch (err) {
  console.error(`wirechat: cannot open DB_PATH=${JSON.stringify(config.dbPath)}: ${(err as Error).message}`);
  process.exit(2);
}

const app = createApp({ history, replayLimit: config.replayLimit });
const pruning = startPruning(history, config);
app.listen({ port: config.port, hostname: config.host });
const server = app.server!;
console.log(`wirechat listening on http://${server.hostname}:${server.port} (history: ${config.dbPath})`);

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`wirechat: ${signal}, closing connections`);
  pruning.stop();
  app.decorator.hub.shutdown();
  await app.stop();
  history.close();
  process.exit(0);
};
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
