/**
 * The lane's database row of a provider batch, as a provider's Batch API client is given it
 * (BatchRef in providers/batch-types.ts): the clients never see how the lane stores its batches.
 */
import type { ProviderBatchRow } from "@sieve/shared/db/ops/batchLane";
import type { BatchRef } from "../providers/batch-types.js";

export function batchRefOf(row: ProviderBatchRow): BatchRef {
  return {
    id: row.id,
    requestCount: row.requestCount,
    createStartedAt: row.submittingAt ?? row.createdAt,
    inputFileId: row.inputFileId ?? undefined,
    providerBatchId: row.providerBatchId ?? undefined,
    outputFileId: row.outputFileId ?? undefined,
    errorFileId: row.errorFileId ?? undefined,
  };
}
