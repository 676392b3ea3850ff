/** A workers-only Sieve process, for tests that SIGKILL it mid-call. Reads its config from env. */
import { createLogger, openDb, parseEnv, providerEndpoints } from "@sieve/shared";
import { startWorkerHttp, startWorkers } from "@sieve/workers";

const env = parseEnv();
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const dbh = await openDb({ url: env.DATABASE_URL, migrate: false, idleInTransactionTimeoutMs: env.SIEVE_PG_IDLE_TX_TIMEOUT_MS });
const w = await startWorkers({
  env,
  db: dbh.db,
  endpoints: providerEndpoints(env),
  log,
  lockDurationMs: Number(process.env.TEST_LOCK_MS ?? 3_000),
  // The sweeper is off unless a test turns it on (TEST_SWEEP_MS, TEST_STALE_MS).
  sweepEveryMs: Number(process.env.TEST_SWEEP_MS ?? 0),
  staleAfterMs: Number(process.env.TEST_STALE_MS ?? 60_000),
});
// Its /metrics and /readyz, when a test asks (TEST_METRICS_PORT, 0 = any free port).
const http = process.env.TEST_METRICS_PORT !== undefined ? await startWorkerHttp({ port: Number(process.env.TEST_METRICS_PORT), host: "127.0.0.1", monitor: w.monitor }) : undefined;
if (http) log.info({ url: http.url }, "worker metrics listening");
process.send?.("ready");
console.log(`worker-process ready pid=${process.pid}`);
const stop = async () => {
  await http?.close();
  await w.close();
  await dbh.close();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
