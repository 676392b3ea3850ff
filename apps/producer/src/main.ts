/**
 * `npm start`: Sieve's main job. Runs the API, the workers and the dashboard in one process
 * (SIEVE_ROLE=all), or one of them (api / workers) when DATABASE_URL points at a shared Postgres.
 *
 * Providers: real ones from OPENAI_API_KEY / ANTHROPIC_API_KEY / VLLM_BASE_URL. With none, Sieve
 * refuses to start and says what to set, unless SIEVE_SIMULATOR=true asks, on purpose, for the
 * bundled provider simulator (a test tool: no real model answers).
 *
 * What ends the process (docs/operations.md#outages): bad configuration (exit 2), a port it
 * cannot listen on, a database it cannot reach or migrate AT START-UP, and a bug that escaped
 * every handler (an unhandled rejection or exception: the state is unknown, the supervisor
 * restarts us and crash safety finishes the work). Everything else, notably Redis or Postgres
 * going away while running, is ridden out.
 */
import path from "node:path";
import { ConfigError, Shutdown, coerceError, createLogger, openDb, parseEnv, providerEndpoints } from "@sieve/shared";
import { addApiKey, parseBootstrapKeys } from "@sieve/shared/db/ops/tenants";
import { ListenError, startApi } from "./server.js";

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

async function main(): Promise<void> {
  let env;
  try {
    env = parseEnv();
  } catch (e) {
    log.fatal(coerceError(e).message);
    process.exit(2);
  }
  const shutdown = new Shutdown(log);
  shutdown.installSignalHandlers();

  let simulatorUrl: string | undefined;
  if (env.SIEVE_SIMULATOR) {
    const { startSimulator, ReferenceAnswers, parseNoiseSpec } = await import("@sieve/simulator");
    let answers;
    try {
      // Reference mode (docs/quality.md): known answers with noise instead of hashed ones.
      answers = env.SIEVE_SIMULATOR_ANSWERS ? ReferenceAnswers.load(env.SIEVE_SIMULATOR_ANSWERS, parseNoiseSpec(env.SIEVE_SIMULATOR_NOISE)) : undefined;
    } catch (e) {
      log.fatal(`SIEVE_SIMULATOR_ANSWERS / SIEVE_SIMULATOR_NOISE: ${coerceError(e).message}`);
      process.exit(2);
    }
    if (answers) log.warn({ known: answers.size(), noise: answers.noise }, "simulator in reference mode");
    const sim = await startSimulator({ port: env.SIEVE_SIMULATOR_PORT, host: "127.0.0.1", ...(env.VLLM_MODEL ? { vllm: { model: env.VLLM_MODEL } } : {}), ...(answers ? { answers } : {}) });
    simulatorUrl = sim.url;
    shutdown.add("simulator", () => sim.close());
    log.warn({ url: sim.url }, "PROVIDER SIMULATOR in use (SIEVE_SIMULATOR=true): answers are synthetic, no real LLM is called");
  }
  let endpoints;
  try {
    endpoints = providerEndpoints(env, simulatorUrl);
  } catch (e) {
    if (e instanceof ConfigError) {
      log.fatal(e.message);
      await shutdown.run();
      process.exit(2);
    }
    throw e;
  }

  const dataDir = path.resolve(env.SIEVE_DATA_DIR, "pgdata");
  const dbh = await openDb({ url: env.DATABASE_URL, dataDir });
  shutdown.add("database", () => dbh.close());
  log.info({ database: dbh.kind === "pglite" ? `embedded PGlite at ${dataDir}` : "postgres (DATABASE_URL)" }, "database ready");
  for (const { tenantId, key } of parseBootstrapKeys(env.SIEVE_API_KEYS)) await addApiKey(dbh.db, tenantId, key, "bootstrap");

  if (env.SIEVE_ROLE === "all" || env.SIEVE_ROLE === "workers" || env.SIEVE_ROLE === "gpu") {
    const { startWorkers, startWorkerHttp } = await import("@sieve/workers");
    const workers = await startWorkers({ env, db: dbh.db, endpoints, log: log.child({ role: "workers" }) });
    shutdown.add("workers", () => workers.close());
    if ((env.SIEVE_ROLE === "workers" || env.SIEVE_ROLE === "gpu") && env.SIEVE_WORKER_METRICS_PORT > 0) {
      const http = await startWorkerHttp({ port: env.SIEVE_WORKER_METRICS_PORT, host: env.HOST, monitor: workers.monitor });
      shutdown.add("worker metrics", () => http.close());
      log.info({ url: http.url }, "workers metrics and readiness listening");
    }
  }
  if (env.SIEVE_ROLE === "all" || env.SIEVE_ROLE === "api") {
    const { cacheConsumers } = await import("@sieve/workers/dedup/cacheConsumers");
    const apiLog = log.child({ role: "api" });
    const api = await startApi({ env, db: dbh.db, endpoints, log: apiLog, ...(dbh.pglite ? { pglite: dbh.pglite } : {}), cacheConsumers: cacheConsumers({ env, db: dbh.db, endpoints, log: apiLog }) });
    shutdown.add("api", () => api.close());
    log.info(
      { url: api.url, providers: [...endpoints.values()].map((e) => `${e.provider}${e.simulated ? " (simulator)" : ""}`), console: env.SIEVE_ADMIN_USER ? `${api.url}/admin` : "disabled (set SIEVE_ADMIN_USER and SIEVE_ADMIN_PASSWORD)" },
      "Sieve API listening",
    );
  }
}

main().catch((e) => {
  const err = coerceError(e);
  // A listen error already says what to do; anything else keeps its stack for the operator.
  log.fatal(err instanceof ListenError ? {} : { stack: err.stack }, `cannot start: ${err.message}`);
  console.error(`sieve: fatal: ${err.message}`);
  process.exit(1);
});
