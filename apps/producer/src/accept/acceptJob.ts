/**
 * The one way a job is accepted, whoever submits it: POST /v1/jobs (a request with its items),
 * POST /v1/bulk and the nightly inbox (a streamed body: header line, then one item per line).
 * Both share the same decisions (resolve.ts: route, queue, deadline, job id; the batch key
 * `batchKeyFor` and the cache policy `resolveCachePolicy` from packages/shared), record cache
 * answers the same way (answers.ts) and enqueue parcels built by one builder (parcels.ts).
 *
 * It throws domain errors (errors.ts): RejectedInput, DeadlineUnmeetable, Unavailable; the routes
 * turn them into HTTP, the inbox into a report beside the refused file.
 */
import type { ApiContext } from "../context.js";
import { ingestBody, type BodySubmission, type IngestReport } from "../bulk/ingest.js";
import { acceptItems, type AcceptedJob, type ItemsSubmission } from "./items.js";

export type { AcceptedJob, BodySubmission, IngestReport, ItemsSubmission };

export function acceptJob(ctx: ApiContext, submission: ItemsSubmission): Promise<AcceptedJob>;
export function acceptJob(ctx: ApiContext, submission: BodySubmission): Promise<IngestReport>;
export function acceptJob(ctx: ApiContext, submission: ItemsSubmission | BodySubmission): Promise<AcceptedJob | IngestReport> {
  return "items" in submission ? acceptItems(ctx, submission) : ingestBody(ctx, submission);
}
