import { Router, type Request, type Response, type NextFunction } from "express";
import { HttpError, JobRequest, parseOrThrow, taskParamsOf } from "@sieve/shared";
import { getJob, getJobTotals, listJobItems } from "@sieve/shared/db/ops/jobs";
import { jobQuality } from "@sieve/shared/db/ops/quality";
import type { ApiContext } from "../context.js";
import { tenantOf } from "../auth.js";
import { submitJob } from "../submit.js";
import { itemJson, jobJson } from "../views.js";

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

const wrap = (fn: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) => fn(req, res).catch(next);

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

  r.post(
    "/v1/jobs",
    wrap(async (req, res) => {
      const { tenantId } = tenantOf(res);
      const waitMs = parseWait(req.query.wait, ctx.env.SIEVE_MAX_WAIT_MS);
      const body = parseOrThrow(schema, req.body);
      const out = await submitJob(ctx, {
        tenantId,
        params: taskParamsOf(body),
        items: body.items,
        provider: body.provider,
        model: body.model,
        lane: body.lane,
        cache: body.cache,
      });
      ctx.log.info({ jobId: out.jobId, tenantId, items: out.itemCount, cached: out.cached, parcels: out.parcels }, "job accepted");
      if (waitMs > 0) {
        const done = await ctx.waiter.wait(out.jobId, waitMs, async () => (await getJob(ctx.db, tenantId, out.jobId))?.status !== "pending");
        const { body: v } = await view(tenantId, out.jobId, ctx.env.SIEVE_MAX_ITEMS_PER_REQUEST);
        res.status(done ? 200 : 202).json(v);
        return;
      }
      res.status(202).json({ id: out.jobId, status: "pending", counts: { items: out.itemCount, cached: out.cached }, links: { self: `/v1/jobs/${out.jobId}`, results: `/v1/jobs/${out.jobId}/results` } });
    }),
  );

  r.get(
    "/v1/jobs/:id",
    wrap(async (req, res) => {
      const { tenantId } = tenantOf(res);
      const limit = intParam(req.query.limit, "limit", 1000, 0, 10_000);
      const after = req.query.after === undefined ? undefined : intParam(req.query.after, "after", 0, -1, Number.MAX_SAFE_INTEGER);
      const waitMs = parseWait(req.query.wait, ctx.env.SIEVE_MAX_WAIT_MS);
      const jobId = String(req.params.id);
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
      const jobId = String(req.params.id);
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
