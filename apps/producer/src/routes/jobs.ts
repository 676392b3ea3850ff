import { Router, type Request, type Response, type NextFunction } from "express";
import { HttpError, JobRequest, coerceError, parseOrThrow, rejectUnstorable, taskParamsOf } from "@sieve/shared";
import { getJob, getJobTotals, listJobItems } from "@sieve/shared/db/ops/jobs";
import { IdempotencyKeyTaken, canonicalHash, findIdempotencyKey } from "@sieve/shared/db/ops/idempotency";
import { jobQuality } from "@sieve/shared/db/ops/quality";
import type { ApiContext } from "../context.js";
import { tenantOf } from "../auth.js";
import { acceptJob } from "../accept/acceptJob.js";
import { asHttp } from "./httpErrors.js";
import { itemJson, jobJson } from "../views.js";
import { checkReplay, idempotencyKeyOf, markReplayed } from "../idempotency.js";

/** A path id, refused with a 400 naming `id` when Postgres could not even compare it (U+0000). */
export function pathId(req: Request): string {
  const id = String(req.params.id);
  rejectUnstorable(id, ["id"]);
  return id;
}

/** "10s", "1500ms", "2m" or plain seconds. */
export function parseWait(raw: unknown, maxMs: number): number {
  if (raw === undefined || raw === "") return 0;
  const s = String(raw).trim();
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new HttpError(400, "invalid_request", 'wait: expected a duration such as "10s" or "500ms"', [{ field: "wait", message: "invalid duration" }]);
  const n = Number(m[1]);
  const ms = m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1_000;
  if (ms > maxMs) throw new HttpError(400, "invalid_request", `wait: at most ${maxMs / 1000}s`, [{ field: "wait", message: `at most ${maxMs} ms` }]);
  return Math.round(ms);
}

function intParam(raw: unknown, field: string, def: number, min: number, max: number): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new HttpError(400, "invalid_request", `${field}: expected an integer from ${min} to ${max}`, [{ field, message: "out of range" }]);
  }
  return n;
}

/** Express handler from an async one; a domain error becomes its HTTP answer (httpErrors.ts). */
const wrap = (fn: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) => fn(req, res).catch((e: unknown) => next(asHttp(e)));

export function jobsRouter(ctx: ApiContext): Router {
  const r = Router();
  const schema = JobRequest({ maxItems: ctx.env.SIEVE_MAX_ITEMS_PER_REQUEST, maxTextChars: ctx.env.SIEVE_MAX_TEXT_CHARS });

  async function view(tenantId: string, jobId: string, limit: number, after?: number) {
    const job = await getJob(ctx.db, tenantId, jobId);
    if (!job) throw new HttpError(404, "not_found", `job ${jobId} not found`);
    const [totals, items, quality] = await Promise.all([getJobTotals(ctx.db, jobId), listJobItems(ctx.db, jobId, { limit: limit + 1, ...(after !== undefined ? { afterSeq: after } : {}) }), jobQuality(ctx.db, jobId)]);
    const more = items.length > limit;
    const page = items.slice(0, limit);
    return {
      job,
      body: {
        ...jobJson(job, totals),
        // Answer quality (docs/quality.md): re-check agreement and learned-cache audits of this job.
        quality,
        items: page.map(itemJson),
        // With limit=0 the page is empty: continue after the caller's cursor.
        ...(more ? { nextAfter: page.length > 0 ? page[page.length - 1]!.seq : (after ?? -1) } : {}),
      },
    };
  }

  /**
   * The answer to a submission whose job is committed. From here on the caller must learn the id
   * whatever fails (a long-poll whose Redis or Postgres read breaks, a timeout): otherwise its retry
   * would create a second job and pay for the same items twice. So any failure answers 202 + id.
   */
  async function answerCommitted(res: Response, tenantId: string, jobId: string, waitMs: number, fresh?: { items: number; cached: number }) {
    let status = "pending";
    let counts = fresh;
    try {
      if (waitMs > 0) {
        const done = await ctx.waiter.wait(jobId, waitMs, async () => (await getJob(ctx.db, tenantId, jobId))?.status !== "pending");
        const { body: v } = await view(tenantId, jobId, ctx.env.SIEVE_MAX_ITEMS_PER_REQUEST);
        res.status(done ? 200 : 202).json(v);
        return;
      }
      if (!counts) {
        const job = await getJob(ctx.db, tenantId, jobId);
        if (job) {
          status = job.status;
          counts = { items: job.itemCount, cached: job.cachedCount };
        }
      }
    } catch (e) {
      ctx.log.warn({ jobId, tenantId, err: coerceError(e).message }, "job committed but its status could not be read; answering 202 with its id");
    }
    res.status(202).json({ id: jobId, status, ...(counts ? { counts } : {}), links: { self: `/v1/jobs/${jobId}`, results: `/v1/jobs/${jobId}/results` } });
  }

  r.post(
    "/v1/jobs",
    wrap(async (req, res) => {
      const { tenantId } = tenantOf(res);
      const waitMs = parseWait(req.query.wait, ctx.env.SIEVE_MAX_WAIT_MS);
      const key = idempotencyKeyOf(req);
      // Before the schema: a field Postgres cannot store is named even where the schema says nothing.
      rejectUnstorable(req.body);
      const body = parseOrThrow(schema, req.body);
      const ttlHours = ctx.env.SIEVE_IDEMPOTENCY_TTL_HOURS;
      const requestHash = key ? canonicalHash(req.body) : "";
      const replay = async () => {
        const prior = key ? await findIdempotencyKey(ctx.db, tenantId, key, ttlHours) : undefined;
        if (!prior) return false;
        checkReplay(prior, "jobs", requestHash);
        markReplayed(res);
        await answerCommitted(res, tenantId, prior.jobId, waitMs);
        return true;
      };
      if (await replay()) return;
      let out;
      try {
        out = await acceptJob(ctx, {
          tenantId,
          params: taskParamsOf(body),
          options: { provider: body.provider, model: body.model, lane: body.lane, deadline: body.deadline, cache: body.cache },
          items: body.items,
          ...(key ? { idempotency: { key, route: "jobs" as const, requestHash, ttlHours } } : {}),
        });
      } catch (e) {
        // A concurrent request with the same key committed first: answer with its job.
        if (e instanceof IdempotencyKeyTaken && (await replay())) return;
        throw e;
      }
      ctx.log.info({ jobId: out.jobId, tenantId, items: out.itemCount, cached: out.cached, parcels: out.parcels }, "job accepted");
      await answerCommitted(res, tenantId, out.jobId, waitMs, { items: out.itemCount, cached: out.cached });
    }),
  );

  r.get(
    "/v1/jobs/:id",
    wrap(async (req, res) => {
      const { tenantId } = tenantOf(res);
      const limit = intParam(req.query.limit, "limit", 1000, 0, 10_000);
      const after = req.query.after === undefined ? undefined : intParam(req.query.after, "after", 0, -1, Number.MAX_SAFE_INTEGER);
      const waitMs = parseWait(req.query.wait, ctx.env.SIEVE_MAX_WAIT_MS);
      const jobId = pathId(req);
      if (waitMs > 0) {
        if (!(await getJob(ctx.db, tenantId, jobId))) throw new HttpError(404, "not_found", `job ${jobId} not found`);
        await ctx.waiter.wait(jobId, waitMs, async () => (await getJob(ctx.db, tenantId, jobId))?.status !== "pending");
      }
      const { body } = await view(tenantId, jobId, limit, after);
      res.json(body);
    }),
  );

  /** Every item with its result as NDJSON, streamed page by page (flat memory for large jobs). */
  r.get(
    "/v1/jobs/:id/results",
    wrap(async (req, res) => {
      const { tenantId } = tenantOf(res);
      const jobId = pathId(req);
      const job = await getJob(ctx.db, tenantId, jobId);
      if (!job) throw new HttpError(404, "not_found", `job ${jobId} not found`);
      res.status(200).setHeader("content-type", "application/x-ndjson; charset=utf-8");
      let after = -1;
      while (true) {
        const page = await listJobItems(ctx.db, jobId, { afterSeq: after, limit: 1_000 });
        if (page.length === 0) break;
        const chunk = page.map((v) => JSON.stringify(itemJson(v))).join("\n") + "\n";
        if (!res.write(chunk)) await new Promise<void>((resolve) => res.once("drain", resolve));
        after = page[page.length - 1]!.seq;
        if (page.length < 1_000 || res.destroyed) break;
      }
      res.end();
    }),
  );
  return r;
}
