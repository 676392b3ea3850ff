/**
 * Operator view of the provider batches: GET /v1/batches, GET /v1/batches/:id,
 * POST /v1/batches/:id/cancel.
 *
 * Tenant scoping: a tenant sees only batches holding its items (provider_batches.tenant_ids). A
 * batch holds one tenant's items unless SIEVE_MIX_TENANTS; a tenant may cancel a batch only when
 * it holds no other tenant's items (403 otherwise). Cancelled items are resubmitted, up to
 * SIEVE_BATCH_MAX_ATTEMPTS, like expired ones (docs/batch-lane.md).
 */
import { Router, type NextFunction, type Request, type Response } from "express";
import { HttpError } from "@sieve/shared";
import { updateBatch, type ProviderBatchRow } from "@sieve/shared/db/ops/batchLane";
import { getBatchForTenant, listBatchesForTenant, requestOutcomes } from "@sieve/shared/db/ops/batchViews";
import type { ApiContext, BatchLaneApi } from "../context.js";
import { tenantOf } from "../auth.js";

const wrap = (fn: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) => fn(req, res).catch(next);

export function batchJson(b: ProviderBatchRow) {
  return {
    id: String(b.id),
    provider: b.provider,
    model: b.model,
    state: b.state,
    providerStatus: b.providerStatus,
    providerBatchId: b.providerBatchId,
    inputFileId: b.inputFileId,
    outputFileId: b.outputFileId,
    errorFileId: b.errorFileId,
    counts: {
      requests: b.requestCount,
      items: b.itemCount,
      settledRequests: b.settledRequests,
      okItems: b.okItems,
      retriedItems: b.retriedItems,
      erroredItems: b.erroredItems,
      provider: b.providerCounts,
    },
    tokens: { estimatedInput: b.estInputTokens, input: b.inputTokens, output: b.outputTokens },
    inputBytes: b.inputBytes,
    costUsd: Number(b.costUsd),
    cancelRequested: b.cancelRequested,
    lastError: b.lastError,
    createdAt: b.createdAt,
    submittedAt: b.submittedAt,
    endedAt: b.endedAt,
    settledAt: b.settledAt,
  };
}

function batchId(raw: unknown): number {
  const s = String(raw);
  if (!/^\d{1,15}$/.test(s)) throw new HttpError(404, "not_found", `batch ${s.slice(0, 40)} not found`);
  return Number(s);
}

export function batchesRouter(ctx: ApiContext, lane: BatchLaneApi): Router {
  const r = Router();

  r.get(
    "/v1/batches",
    wrap(async (req, res) => {
      const { tenantId } = tenantOf(res);
      const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new HttpError(400, "invalid_request", "limit: expected an integer from 1 to 500", [{ field: "limit", message: "out of range" }]);
      const before = req.query.before === undefined ? undefined : batchId(req.query.before);
      const state = typeof req.query.state === "string" ? req.query.state : undefined;
      const rows = await listBatchesForTenant(ctx.db, tenantId, { limit, ...(before !== undefined ? { beforeId: before } : {}), ...(state ? { state } : {}) });
      res.json({ batches: rows.map(batchJson), ...(rows.length === limit ? { nextBefore: String(rows[rows.length - 1]!.id) } : {}) });
    }),
  );

  r.get(
    "/v1/batches/:id",
    wrap(async (req, res) => {
      const { tenantId } = tenantOf(res);
      const id = batchId(req.params.id);
      const b = await getBatchForTenant(ctx.db, tenantId, id);
      if (!b) throw new HttpError(404, "not_found", `batch ${id} not found`);
      res.json({ ...batchJson(b), requestOutcomes: await requestOutcomes(ctx.db, id) });
    }),
  );

  r.post(
    "/v1/batches/:id/cancel",
    wrap(async (req, res) => {
      const { tenantId } = tenantOf(res);
      const id = batchId(req.params.id);
      const b = await getBatchForTenant(ctx.db, tenantId, id);
      if (!b) throw new HttpError(404, "not_found", `batch ${id} not found`);
      if (b.tenantIds.some((t) => t !== tenantId)) {
        throw new HttpError(403, "forbidden", `batch ${id} also holds other tenants' items (SIEVE_MIX_TENANTS): only an operator can cancel it`);
      }
      if (b.state === "ended" || b.state === "settled" || b.state === "abandoned") {
        throw new HttpError(409, "conflict", `batch ${id} has already ended (state ${b.state})`);
      }
      await updateBatch(ctx.db, id, { cancelRequested: true });
      // The poller cancels at the provider (and retries until it worked) and settles the batch.
      await lane.kickPoll().catch(() => {});
      res.status(202).json({ ...batchJson({ ...b, cancelRequested: true }), message: "cancellation requested: the batch is cancelled at the provider, then settled; its unfinished items are resubmitted up to SIEVE_BATCH_MAX_ATTEMPTS" });
    }),
  );
  return r;
}

/**
 * Without SIEVE_BATCH_LANE the batch routes answer why there is nothing there, instead of the
 * generic "no such route" a client cannot act on.
 */
export function batchesDisabledRouter(): Router {
  const r = Router();
  r.all(["/v1/batches", "/v1/batches/*rest"], (_req, res) => {
    res.status(404).json(new HttpError(404, "batch_lane_disabled", "the batch lane is not enabled on this server (SIEVE_BATCH_LANE)").toBody());
  });
  return r;
}
