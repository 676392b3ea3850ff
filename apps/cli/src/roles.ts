/**
 * The roles of one Sieve process (SIEVE_ROLE, README "Configuration"): `api` (the HTTP API, the
 * console and the caches it reads), `workers` (the provider lanes, the sweeper, the batch lane),
 * `gpu` (the local GPU lane only), `all` (api + workers). This is the one place that puts the
 * API (apps/producer) and the workers (apps/workers) together: neither imports the other.
 *
 * The caches' fill and audit consumers are worker code, run by the process that holds the caches
 * (the API role: its vector store and learned models are local to it; see
 * apps/workers/src/dedup/cacheConsumers.ts). A process without the workers role loads only that
 * part of the workers' code.
 */
import type { PGlite } from "@electric-sql/pglite";
import type { Db, Env, Logger, ProviderEndpoint, ProviderName, Shutdown } from "@sieve/shared";
import { startApi } from "@sieve/producer/server";

export interface RoleDeps {
  env: Env;
  db: Db;
  /** The embedded database, when there is one (the pgvector table lives in it). */
  pglite?: PGlite | undefined;
  endpoints: Map<ProviderName, ProviderEndpoint>;
  log: Logger;
  /** Every started part registers its closer here. */
  shutdown: Shutdown;
}

export async function startRoles(deps: RoleDeps): Promise<void> {
  const { env, db, endpoints, log, shutdown } = deps;
  const role = env.SIEVE_ROLE;
  if (role === "all" || role === "workers" || role === "gpu") {
    const { startWorkers, startWorkerHttp } = await import("@sieve/workers");
    const workers = await startWorkers({ env, db, endpoints, log: log.child({ role: "workers" }) });
    shutdown.add("workers", () => workers.close());
    if ((role === "workers" || role === "gpu") && env.SIEVE_WORKER_METRICS_PORT > 0) {
      const http = await startWorkerHttp({ port: env.SIEVE_WORKER_METRICS_PORT, host: env.HOST, monitor: workers.monitor });
      shutdown.add("worker metrics", () => http.close());
      log.info({ url: http.url }, "workers metrics and readiness listening");
    }
  }
  if (role === "all" || role === "api") {
    const { cacheConsumers } = await import("@sieve/workers/dedup/cacheConsumers");
    const apiLog = log.child({ role: "api" });
    const api = await startApi({
      env,
      db,
      endpoints,
      log: apiLog,
      ...(deps.pglite ? { pglite: deps.pglite } : {}),
      cacheConsumers: cacheConsumers({ env, db, endpoints, log: apiLog }),
    });
    shutdown.add("api", () => api.close());
    log.info(
      { url: api.url, providers: [...endpoints.values()].map((e) => `${e.provider}${e.simulated ? " (simulator)" : ""}`), console: env.SIEVE_ADMIN_USER ? `${api.url}/admin` : "disabled (set SIEVE_ADMIN_USER and SIEVE_ADMIN_PASSWORD)" },
      "Sieve API listening",
    );
  }
}
