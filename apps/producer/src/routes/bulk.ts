/**
 * POST /v1/bulk: a streamed NDJSON body (header line, then one item per line; see bulk/ingest.ts and
 * docs/batch-lane.md). Send it as `application/x-ndjson` (any type but JSON: /v1's JSON parser
 * would otherwise try to buffer it). The body is never buffered: it is read line by line while the
 * items go into Postgres.
 *
 * With an `Idempotency-Key` (README), every byte of the body is hashed as it passes; a repeated
 * key reads the body through (without storing it) and replays the first answer when the bytes are
 * the same, or answers 422 when they are not.
 */
import { Router, type NextFunction, type Request, type Response } from "express";
import { coerceError } from "@sieve/shared";
import { getJob } from "@sieve/shared/db/ops/jobs";
import { IdempotencyKeyTaken, findIdempotencyKey, type IdempotencyRow } from "@sieve/shared/db/ops/idempotency";
import type { ApiContext } from "../context.js";
import { tenantOf } from "../auth.js";
import { acceptJob } from "../accept/acceptJob.js";
import { bulkAnswer } from "../bulk/ingest.js";
import { HashedBody } from "../bulk/hashed.js";
import { checkReplay, idempotencyKeyOf, markReplayed } from "../idempotency.js";
import { asHttp } from "./httpErrors.js";

export function bulkRouter(ctx: ApiContext): Router {
  const r = Router();
  r.post("/v1/bulk", (req: Request, res: Response, next: NextFunction) => {
    let body: HashedBody | undefined;
    (async () => {
      const { tenantId } = tenantOf(res);
      const key = idempotencyKeyOf(req);
      const ttlHours = ctx.env.SIEVE_IDEMPOTENCY_TTL_HOURS;
      body = new HashedBody(req, { hash: key !== undefined });
      if (!key) {
        res.status(202).json(bulkAnswer(await acceptJob(ctx, { tenantId, body })));
        return;
      }
      const replay = async (prior: IdempotencyRow) => {
        if (prior.requestHash !== null) checkReplay(prior, "bulk", await body!.drain());
        else checkReplay(prior, "bulk", ""); // 409: the first upload is still arriving
        markReplayed(res);
        const stored = (prior.response ?? { id: prior.jobId }) as Record<string, unknown>;
        const status = await getJob(ctx.db, tenantId, prior.jobId).then(
          (j) => j?.status,
          (e: unknown) => ctx.log.warn({ jobId: prior.jobId, err: coerceError(e).message }, "replayed bulk job: status not readable"),
        );
        res.status(202).json({ ...stored, ...(status ? { status } : {}) });
      };
      const prior = await findIdempotencyKey(ctx.db, tenantId, key, ttlHours);
      if (prior) return replay(prior);
      try {
        res.status(202).json(bulkAnswer(await acceptJob(ctx, { tenantId, body, idempotency: { key, ttlHours, body: body! } })));
      } catch (e) {
        // A concurrent upload with the same key claimed it first.
        const winner = e instanceof IdempotencyKeyTaken ? await findIdempotencyKey(ctx.db, tenantId, key, ttlHours) : undefined;
        if (winner) return replay(winner);
        throw e;
      }
    })().catch((e: unknown) => {
      next(asHttp(e));
      // The client may still be sending. Closing at once would reset the connection and the
      // client could lose this answer ("fetch failed"): read the rest off the connection for a
      // while (a lingering close), then cut it.
      if (!req.readableEnded) lingerThenClose(req, body);
    });
  });
  return r;
}

/** How long a refused upload is read (and dropped) after its answer, in ms. */
const LINGER_MS = 10_000;

function lingerThenClose(req: Request, body: HashedBody | undefined): void {
  const timer = setTimeout(() => req.socket?.destroy(), LINGER_MS);
  timer.unref();
  const drained = body ? body.drain() : (async () => {
    for await (const _ of req) void _;
  })();
  drained.then(
    () => clearTimeout(timer),
    () => {
      clearTimeout(timer);
      req.socket?.destroy();
    },
  );
}
