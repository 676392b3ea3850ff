/**
 * Submitting a prepared batch, crash-safe. Every step is recorded before the next one
 * starts, and every state can be resumed by another process once the lease of a dead one expired:
 *
 *   preparing --(OpenAI: upload; input_file_id recorded)--> uploaded
 *   uploaded / preparing (Anthropic) --(submitting_at recorded)--> submitting --(create)--> submitted
 *
 * "submitting" means "a create may have reached the provider": resuming it first looks the batch
 * up at the provider (OpenAI: by its unique input file; Anthropic: by time and request count) and
 * adopts it, so a crash between create and the database write never sends the items twice. The
 * input is always rebuilt from the database (batch_requests + items), so the first attempt and a
 * resumed one send the same bytes.
 *
 * A create refused for capacity (OpenAI token_limit_exceeded, a 429) releases the items without
 * counting an attempt: they wait (docs/batch-lane.md, "admission"). Another 4xx releases them counting the
 * attempt (the retry limit bounds a create that can never work). Network errors and 5xx leave the
 * row as it is, for the poller to resume.
 */
import { ProviderError, TaskParams } from "@sieve/shared";
import { updateBatch, type ProviderBatchRow } from "@sieve/shared/db/ops/batchLane";
import { isCapacityError, type BatchApi } from "../providers/batch-types.js";
import { toProviderError } from "../providers/errors.js";
import { knownProviderBatchIds, requestsPage } from "./db/batchRows.js";
import { laneLoad } from "./db/packing.js";
import { releaseUnsentBatch } from "./db/settlement.js";
import { asDb } from "./db/tx.js";
import { batchRefOf } from "./batchRef.js";
import { callIds } from "./ids.js";
import { capacityBackoffMs, type LaneDeps } from "./laneDeps.js";
import { withLease } from "./lease.js";

export type SubmitOutcome = "submitted" | "busy" | "deferred" | "at_capacity" | "abandoned" | "not_pending";

/** Renders the batch's requests from the database, page by page, in file order. */
function inputOf(deps: LaneDeps, api: BatchApi, row: ProviderBatchRow): () => AsyncIterable<string> {
  const params = TaskParams.parse(row.params);
  return async function* () {
    let after = -1;
    for (;;) {
      const page = await requestsPage(deps.db, row.id, after, 500);
      if (page.length === 0) return;
      for (const r of page) {
        const ids = callIds(r.itemIds.length);
        // An item deleted meanwhile (its job was deleted) keeps its place, so positions still map to item ids.
        yield api.render({ customId: r.customId, model: row.model, params, items: r.texts.map((t, i) => ({ id: ids[i]!, text: t ?? "(deleted)" })) }).text;
      }
      after = page[page.length - 1]!.seq;
    }
  };
}

async function abandon(deps: LaneDeps, row: ProviderBatchRow, opts: { countAttempt: boolean; reason: string }): Promise<number> {
  return deps.db.transaction(async (tx) => {
    const n = await releaseUnsentBatch(asDb(tx), row.id, opts);
    await updateBatch(asDb(tx), row.id, { state: "abandoned", lastError: opts.reason.slice(0, 2000), settledAt: new Date() });
    return n;
  });
}

export async function submitBatch(deps: LaneDeps, api: BatchApi, batchId: number): Promise<SubmitOutcome> {
  const log = deps.log.child({ batchId, provider: api.provider });
  const res = await withLease(deps, batchId, async (row): Promise<SubmitOutcome> => {
    if (row.state !== "preparing" && row.state !== "uploaded" && row.state !== "submitting") return "not_pending";
    try {
      // A cancel asked before the provider has the batch: nothing to cancel there, the items are
      // released as "cancelled" (an attempt, like a cancel at the provider). "submitting" may
      // already exist at the provider: it is looked up first, then cancelled by the poller.
      if (row.cancelRequested && row.state !== "submitting") {
        const n = await abandon(deps, row, { countAttempt: true, reason: "cancelled before it was submitted" });
        log.info({ items: n }, "batch cancelled before submit; items released");
        return "abandoned";
      }
      if (row.state === "submitting") {
        const found = await api.findCreated(batchRefOf(row), (ids) => knownProviderBatchIds(deps.db, api.provider, ids));
        if (found) {
          await updateBatch(deps.db, row.id, { state: "submitted", providerBatchId: found, submittedAt: new Date(), lastError: null });
          log.warn({ providerBatchId: found }, "adopted a provider batch whose create was not recorded (crash during submit)");
          return "submitted";
        }
        if (row.cancelRequested) {
          await abandon(deps, row, { countAttempt: true, reason: "cancelled before it was submitted" });
          return "abandoned";
        }
      }
      if (row.state === "preparing" && api.upload) {
        const up = await api.upload(batchRefOf(row), inputOf(deps, api, row));
        await updateBatch(deps.db, row.id, { state: "uploaded", inputFileId: up.fileId, inputBytes: up.bytes });
        row = { ...row, state: "uploaded", inputFileId: up.fileId };
        log.debug({ fileId: up.fileId, bytes: up.bytes }, "batch input uploaded");
      }
      const submittingAt = new Date();
      await updateBatch(deps.db, row.id, { state: "submitting", submittingAt });
      row = { ...row, state: "submitting", submittingAt };
      const providerBatchId = await api.create(batchRefOf(row), inputOf(deps, api, row));
      await updateBatch(deps.db, row.id, { state: "submitted", providerBatchId, submittedAt: new Date(), providerStatus: "submitted", lastError: null });
      log.info({ providerBatchId, requests: row.requestCount, items: row.itemCount }, "provider batch submitted");
      return "submitted";
    } catch (e) {
      const err = e instanceof ProviderError ? e : toProviderError(api.provider, e, {});
      const message = `${api.provider}: ${err.message}`.slice(0, 2000);
      const creating = row.state === "submitting";
      if (err.kind === "client" || err.kind === "rate_limited") {
        // The provider answered, with a refusal: the create did not happen.
        if (isCapacityError(err.status, err.message)) {
          deps.backoffUntil.set(api.provider, Date.now() + capacityBackoffMs(deps.env));
          const n = await abandon(deps, row, { countAttempt: false, reason: `provider at capacity: ${message}` });
          if ((await laneLoad(deps.db, api.provider)).openBatches === 0) {
            // Nothing else of ours is open there: this batch alone is over the limit. Smaller ones next.
            deps.capacityHint.set(api.provider, Math.max(1_000, Math.floor(row.estInputTokens / 2)));
          }
          log.info({ items: n, err: message, hint: deps.capacityHint.get(api.provider) }, "provider at capacity (enqueued tokens / open batches): items keep waiting");
          return "at_capacity";
        }
        const n = await abandon(deps, row, { countAttempt: true, reason: message });
        log.warn({ items: n, err: message, creating }, "provider refused the batch; items released (attempt counted)");
        return "abandoned";
      }
      await updateBatch(deps.db, row.id, { lastError: message });
      log.warn({ err: message, state: row.state }, "submit interrupted; the poller resumes it");
      return "deferred";
    }
  });
  if (res === "busy") return "busy";
  return res;
}
