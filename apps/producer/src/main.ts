/**
 * `npm start`: Sieve's main job. Runs the API, the workers and the dashboard in one process
 * (SIEVE_ROLE=all), or one of them (api / workers) when DATABASE_URL points at a shared Postgres.
 *
 * Providers: real ones from OPENAI_API_KEY / ANTHROPIC_API_KEY / VLLM_BASE_URL. With none, Sieve
 * refuses to start and says what to set, unless SIEVE_SIMULATOR=true asks, on purpose, for the
 * bundled provider simulator (a test tool: no real model answers).
 */
import path from "node:path";
import { ConfigError, Shutdown, coerceError, createLogger, openDb, parseEnv, providerEndpoints } from "@sieve/shared";
import { addApiKey, parseBootstrapKeys } from "@sieve/shared/db/ops/tenants";
import { startApi } from "./server.js";

async function main(): Promise<void> {
  const log = createLogger({ name: "sieve" });
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

  if (env.SIEVE_ROLE === "all" || env.SIEVE_ROLE === "workers") {
    const { startWorkers } = await import("@sieve/workers");
    const workers = await startWorkers({ env, db: dbh.db, endpoints, log: log.child({ role: "workers" }) });
    shutdown.add("workers", () => workers.close());
  }
  if (env.SIEVE_ROLE === "all" || env.SIEVE_ROLE === "api") {
    const api = await startApi({ env, db: dbh.db, endpoints, log: log.child({ role: "api" }), ...(dbh.pglite ? { pglite: dbh.pglite } : {}) });
    shutdown.add("api", () => api.close());
    log.info(
      { url: api.url, providers: [...endpoints.values()].map((e) => `${e.provider}${e.simulated ? " (simulator)" : ""}`), dashboard: env.SIEVE_ADMIN_USER ? `${api.url}/admin/queues` : "disabled" },
      "Sieve API listening",
    );
  }
}

main().catch((e) => {
  const err = coerceError(e);
  console.error(`sieve: fatal: ${err.message}`);
  process.exit(1);
});
