/**
 * The HTTP API: /v1/jobs (submit, status, NDJSON results), /healthz, /readyz, /metrics and the
 * operator console at /admin with Bull Board at /admin/queues, behind basic auth (docs/console.md).
 */
import express, { type NextFunction, type Request, type Response } from "express";
import { HttpError, OUTAGE_RETRY_AFTER_S, coerceError, metrics, ping, readHeartbeat, registry, rejectUnstorable } from "@sieve/shared";
import type { ApiContext } from "./context.js";
import { apiKeyAuth } from "./auth.js";
import { adminRouter } from "./admin/index.js";
import { jobsRouter } from "./routes/jobs.js";
import { usageRouter } from "./routes/usage.js";

export function createApp(ctx: ApiContext, extraRouters: express.Router[] = []): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  app.use((req, res, next) => {
    res.on("finish", () => metrics.httpRequests.inc({ route: req.route?.path ?? "unmatched", status: String(res.statusCode) }));
    next();
  });

  app.get("/healthz", (_req, res) => {
    res.json({ ok: true });
  });
  const sweeper = sweeperCheck(ctx);
  app.get("/readyz", async (_req, res) => {
    const [redis, db] = await Promise.allSettled([ctx.redis.ping(), ping(ctx.db)]);
    if (redis.status === "rejected") ctx.monitor.markDown("redis", "readyz", redis.reason);
    if (db.status === "rejected") ctx.monitor.markDown("postgres", "readyz", db.reason);
    const checks = {
      redis: redis.status === "fulfilled" ? "ok" : "unreachable",
      postgres: db.status === "fulfilled" ? "ok" : "unreachable",
      sweeper: redis.status === "fulfilled" ? await sweeper() : "unknown",
    };
    const ok = checks.redis === "ok" && checks.postgres === "ok" && checks.sweeper !== "stale";
    if (!ok) res.setHeader("retry-after", String(OUTAGE_RETRY_AFTER_S));
    res.status(ok ? 200 : 503).json({ ok, checks });
  });
  app.get("/metrics", async (_req, res) => {
    res.setHeader("content-type", registry.contentType);
    res.send(await registry.metrics());
  });

  // Operator console and Bull Board (docs/console.md), behind basic auth.
  app.use(adminRouter(ctx, [...ctx.queues.values(), ...(ctx.extraQueues ?? [])], { engines: ctx.engines }));

  app.use("/v1", express.json({ limit: ctx.env.SIEVE_MAX_BODY_BYTES, type: ["application/json", "application/*+json"] }));
  app.use("/v1", apiKeyAuth(ctx.db));
  // Query parameters reach SQL too (?state=, ?since=): U+0000 is a 400 naming the parameter (docs/retries.md).
  app.use("/v1", (req, _res, next) => {
    rejectUnstorable(req.query);
    next();
  });
  app.use(jobsRouter(ctx));
  app.use(usageRouter(ctx));
  for (const r of extraRouters) app.use(r);

  app.use((_req, res) => {
    res.status(404).json({ error: { code: "not_found", message: "no such route" } });
  });
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; expose?: boolean };
    let http: HttpError;
    const outage = err instanceof HttpError ? undefined : ctx.monitor.report(err, `api ${req.method} ${req.route?.path ?? req.path}`);
    if (err instanceof HttpError) http = err;
    else if (outage) {
      // Redis or Postgres unavailable: the client should retry later, not report a bug
      // (docs/operations.md#outages). The monitor has logged the outage once.
      const what = outage === "unknown" ? "a backing service (Redis or Postgres)" : outage === "redis" ? "the queue (Redis)" : "the database (Postgres)";
      http = new HttpError(503, "unavailable", `${what} is unavailable; retry after ${OUTAGE_RETRY_AFTER_S} s`);
    } else if (e.type === "entity.too.large") {
      http = new HttpError(413, "body_too_large", `body: larger than ${ctx.env.SIEVE_MAX_BODY_BYTES} bytes (SIEVE_MAX_BODY_BYTES); split the request or use POST /v1/bulk`, [{ field: "body", message: "too large" }]);
    } else if (e.type === "entity.parse.failed") {
      http = new HttpError(400, "invalid_json", "body: not valid JSON", [{ field: "body", message: "invalid JSON" }]);
    } else if (e.type === "encoding.unsupported" || e.type === "charset.unsupported") {
      http = new HttpError(415, "unsupported_encoding", "body: unsupported encoding or charset", [{ field: "body", message: "unsupported" }]);
    } else {
      ctx.log.error({ err: coerceError(err).message, stack: coerceError(err).stack, path: req.path }, "unhandled error");
      http = new HttpError(500, "internal", "internal error");
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (http.status === 503 && !res.getHeader("retry-after")) res.setHeader("retry-after", String(OUTAGE_RETRY_AFTER_S));
    res.status(http.status).json(http.toBody());
  });
  return app;
}

/**
 * "ok" when a sweeper ran within SIEVE_READY_SWEEPER_MAX_AGE_MS; "waiting" while none was seen
 * yet but the grace period (from API start, or from when Redis stopped having a record, e.g. it
 * lost its data) has not passed; "stale" afterwards: nothing would rescue stranded items, so
 * /readyz answers 503 (docs/operations.md#readiness). "off" when the check is disabled.
 */
function sweeperCheck(ctx: ApiContext): () => Promise<string> {
  let missingSince = ctx.startedAt;
  return async () => {
    const maxAge = ctx.env.SIEVE_READY_SWEEPER_MAX_AGE_MS;
    if (maxAge === 0) return "off";
    const last = await readHeartbeat(ctx.redis, ctx.env.SIEVE_QUEUE_PREFIX, "sweeper").catch(() => undefined);
    const now = Date.now();
    if (last !== undefined) {
      missingSince = now;
      return now - last <= maxAge ? "ok" : "stale";
    }
    return now - missingSince <= maxAge ? "waiting" : "stale";
  };
}
