/**
 * POST /v1/bulk: a streamed NDJSON body (header line, then one item per line; see bulk/ingest.ts and
 * docs/batch-lane.md). Send it as `application/x-ndjson` (any type but JSON: /v1's JSON parser
 * would otherwise try to buffer it). The body is never buffered: it is read line by line while the
 * items go into Postgres.
 */
import { Router, type NextFunction, type Request, type Response } from "express";
import type { ApiContext } from "../context.js";
import { tenantOf } from "../auth.js";
import { ingestBulk } from "../bulk/ingest.js";
import type { BatchLaneApi } from "../bulk/lane.js";

export function bulkRouter(ctx: ApiContext, lane: BatchLaneApi | undefined): Router {
  const r = Router();
  r.post("/v1/bulk", (req: Request, res: Response, next: NextFunction) => {
    const { tenantId } = tenantOf(res);
    ingestBulk(ctx, req, { tenantId, ...(lane ? { lane } : {}) })
      .then((out) => {
        res.status(202).json({
          id: out.jobId,
          status: "pending",
          lane: out.lane,
          provider: out.provider,
          model: out.model,
          counts: { lines: out.lines, accepted: out.accepted, rejected: out.rejected, cached: out.cached },
          errors: out.errors,
          ...(out.notice ? { notice: out.notice } : {}),
          links: { self: `/v1/jobs/${out.jobId}`, results: `/v1/jobs/${out.jobId}/results` },
        });
      })
      .catch((e: unknown) => {
        // The client may still be sending: do not read the rest of the body, close after answering.
        if (!req.readableEnded) res.setHeader("connection", "close");
        next(e);
      });
  });
  return r;
}
