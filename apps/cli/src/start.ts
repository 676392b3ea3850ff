/**
 * `sieve start` (what `npm start` runs): Sieve itself. Runs the API, the workers and the console
 * in one process (SIEVE_ROLE=all), or one role (api / workers / gpu) when DATABASE_URL points at a
 * shared Postgres (roles.ts).
 *
 * Providers: real ones from OPENAI_API_KEY / ANTHROPIC_API_KEY / VLLM_BASE_URL. With none, Sieve
 * refuses to start and says what to set, unless SIEVE_SIMULATOR=true asks, on purpose, for the
 * bundled provider simulator (a test tool: no real model answers). The simulator is a process of
 * its own, like a provider: `npm start -- --simulator` runs it and sets SIEVE_SIMULATOR_URL.
 *
 * What ends the process (docs/operations.md#outages): bad configuration (exit 2), a port it
 * cannot listen on, a database it cannot reach or migrate AT START-UP, and a bug that escaped
 * every handler (an unhandled rejection or exception: the state is unknown, the supervisor
 * restarts us and crash safety finishes the work). Everything else, notably Redis or Postgres
 * going away while running, is ridden out.
 */
import path from "node:path";
import { ConfigError, Shutdown, coerceError, createLogger, openDb, parseEnv, providerEndpoints, simulatorUrlOf, type Logger } from "@sieve/shared";
import { addApiKey, parseBootstrapKeys } from "@sieve/shared/db/ops/tenants";
import { ListenError } from "@sieve/producer/server";
import { startRoles } from "./roles.js";

/** Starts Sieve in this process; it runs until SIGTERM/SIGINT (or a fatal error, which exits). */
export function start(): void {
  const log = createLogger({ name: "sieve" });
  // Last resort: a bug no handler caught. Logged as one JSON line, then exit for the supervisor.
  process.on("unhandledRejection", (reason) => {
    const err = coerceError(reason);
    log.fatal({ err: err.message, stack: err.stack }, "unhandled rejection: exiting so the supervisor restarts this process");
    process.exit(1);
  });
  process.on("uncaughtException", (e) => {
    log.fatal({ err: e.message, stack: e.stack }, "uncaught exception: exiting so the supervisor restarts this process");
    process.exit(1);
  });
  run(log).catch((e) => {
    const err = coerceError(e);
    // A listen error already says what to do; anything else keeps its stack for the operator.
    log.fatal(err instanceof ListenError ? {} : { stack: err.stack }, `cannot start: ${err.message}`);
    console.error(`sieve: fatal: ${err.message}`);
    process.exit(1);
  });
}

async function run(log: Logger): Promise<void> {
  let env;
  try {
    env = parseEnv();
  } catch (e) {
    log.fatal(coerceError(e).message);
    process.exit(2);
  }
  const shutdown = new Shutdown(log);
  shutdown.installSignalHandlers();

  let endpoints;
  try {
    endpoints = providerEndpoints(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      log.fatal(e.message);
      process.exit(2);
    }
    throw e;
  }
  if (env.SIEVE_SIMULATOR) {
    const url = simulatorUrlOf(env);
    log.warn({ url }, "PROVIDER SIMULATOR in use (SIEVE_SIMULATOR=true): answers are synthetic, no real LLM is called");
    if (!(await answers(`${url}/_sim`))) log.warn({ url }, "no provider simulator answers there yet: `npm start -- --simulator` runs one, or `npm run simulator`");
  }

  const dataDir = path.resolve(env.SIEVE_DATA_DIR, "pgdata");
  const dbh = await openDb({ url: env.DATABASE_URL, dataDir, idleInTransactionTimeoutMs: env.SIEVE_PG_IDLE_TX_TIMEOUT_MS });
  shutdown.add("database", () => dbh.close());
  log.info({ database: dbh.kind === "pglite" ? `embedded PGlite at ${dataDir}` : "postgres (DATABASE_URL)" }, "database ready");
  for (const { tenantId, key } of parseBootstrapKeys(env.SIEVE_API_KEYS)) await addApiKey(dbh.db, tenantId, key, "bootstrap");

  await startRoles({ env, db: dbh.db, endpoints, log, shutdown, ...(dbh.pglite ? { pglite: dbh.pglite } : {}) });
}

/** Whether `url` answers 200 within a second. */
async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}
