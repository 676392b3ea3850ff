/**
 * The packer: waiting items -> multi-item requests -> provider batches.
 *
 * One provider batch is prepared in ONE transaction: waiting items of one batch key are claimed
 * (FOR UPDATE SKIP LOCKED, so concurrent packers never share an item), grouped into requests of up
 * to maxItems items, rendered with the provider's pure transform (byte-identical to the realtime
 * body) to measure bytes and tokens, and the batch row ("preparing"), its requests (custom_id ->
 * item ids) and the items' state ("packed", attempts + 1) are committed together. Nothing has been
 * sent yet: if the process dies now, the poller finds the "preparing" row and submits it, rebuilt
 * from the database. Then the batch is submitted (submitBatch.ts).
 *
 * Limits: a batch stops growing at the provider's requests/bytes limit (or the lower
 * SIEVE_BATCH_MAX_REQUESTS / SIEVE_BATCH_MAX_BYTES) and at the provider's remaining enqueued-token
 * budget (admission, SIEVE_BATCH_MAX_ENQUEUED_TOKENS); SIEVE_BATCH_MAX_OPEN_BATCHES bounds how many
 * batches are open. What does not fit keeps waiting in Postgres, it never fails.
 *
 * Retried items (attempts > 0) are packed together, into requests half as large per earlier
 * attempt: an item that breaks its whole request (a provider 400 for one text) is isolated within a
 * few attempts instead of failing its neighbours every time.
 */
import { TaskParams, coerceError, countTokens, renderPrompt, type TaskParams as TaskParamsT } from "@sieve/shared";
import { deleteJob } from "@sieve/shared/db/ops/jobs";
import { abandonedIngests } from "@sieve/shared/db/ops/batchIngest";
import { enqueueJobItems, updateBatch } from "@sieve/shared/db/ops/batchLane";
import {
  claimWaitingPage,
  completePreparedBatch,
  insertPreparingBatch,
  insertRequestsAndPack,
  jobParams,
  laneLoad,
  orphanBatchJobs,
  waitingKeys,
  type NewBatchRequest,
  type WaitingItem,
  type WaitingKey,
} from "./db/packing.js";
import { removeBatchItems } from "./db/settlement.js";
import { asDb } from "./db/tx.js";
import { maxItemsPerRequest, type LaneDeps } from "./laneDeps.js";
import { callIds, customIdOf } from "./ids.js";
import { submitBatch } from "./submitBatch.js";
import type { BatchApi } from "../providers/batch-types.js";

/** Items claimed per query while a batch is prepared. */
const CLAIM_PAGE = 2_000;

export interface PackResult {
  batches: number[];
  adoptedJobs: number;
  reapedIngests: number;
}

class NothingToPack extends Error {}

/** Items of a request in the making. */
interface Draft {
  attempts: number;
  items: WaitingItem[];
  itemTokens: number;
}

/**
 * Prepares ONE batch of a batch key within `tokenBudget` estimated prompt tokens. Returns its id
 * and estimate, or undefined when nothing could be packed (no items, or the first request alone is
 * over the budget).
 */
export async function prepareBatch(deps: LaneDeps, api: BatchApi, key: WaitingKey, params: TaskParamsT, tokenBudget: number): Promise<{ id: number; estTokens: number; requests: number } | undefined> {
  const { env } = deps;
  const maxItems = maxItemsPerRequest(env, params.task);
  const maxRequests = Math.min(env.SIEVE_BATCH_MAX_REQUESTS, api.limits.maxRequests);
  const maxBytes = Math.min(env.SIEVE_BATCH_MAX_BYTES, api.limits.maxBytes);
  // The system prompt is the same for every request of a batch key: counted once.
  const systemTokens = countTokens(renderPrompt(params, []).system);
  try {
    return await deps.db.transaction(async (txRaw) => {
      const tx = asDb(txRaw);
      const batchId = await insertPreparingBatch(tx, {
        provider: api.provider,
        model: key.model,
        batchKey: key.batchKey,
        params,
        tenantId: "*",
        tenantIds: [],
      });
      const requests: NewBatchRequest[] = [];
      const tenants = new Set<string>();
      let bytes = api.envelopeBytes;
      let tokens = 0;
      let items = 0;
      let full = false;

      const close = (d: Draft): boolean => {
        const seq = requests.length;
        const customId = customIdOf(batchId, seq);
        const ids = callIds(d.items.length);
        const rendered = api.render({ customId, model: key.model, params, items: d.items.map((it, i) => ({ id: ids[i]!, text: it.text })) });
        // Prompt tokens: system + item texts + the JSON around each item line (~8) + chat overhead.
        const reqTokens = systemTokens + d.itemTokens + 8 * d.items.length + 16;
        if (seq + 1 > maxRequests || bytes + rendered.bytes > maxBytes || tokens + reqTokens > tokenBudget) return false;
        requests.push({ customId, seq, itemIds: d.items.map((i) => i.itemId), estInputTokens: reqTokens });
        bytes += rendered.bytes;
        tokens += reqTokens;
        items += d.items.length;
        for (const it of d.items) tenants.add(it.tenantId);
        return true;
      };

      let draft: Draft | undefined;
      let after: { attempts: number; itemId: number } | undefined;
      outer: for (;;) {
        const page = await claimWaitingPage(tx, { provider: api.provider, batchKey: key.batchKey, limit: CLAIM_PAGE, ...(after ? { after } : {}) });
        if (page.length === 0) break;
        const answered = page.filter((it) => it.answered).map((it) => it.itemId);
        if (answered.length > 0) await removeBatchItems(tx, answered);
        for (const it of page) {
          after = { attempts: it.attempts, itemId: it.itemId };
          if (it.answered) continue;
          const cap = Math.max(1, Math.floor(maxItems / 2 ** it.attempts));
          const t = countTokens(it.text);
          if (draft && (draft.attempts !== it.attempts || draft.items.length >= cap || draft.itemTokens + t > env.SIEVE_BATCH_MAX_REQUEST_TOKENS)) {
            if (!close(draft)) {
              full = true;
              draft = undefined;
              break outer;
            }
            draft = undefined;
          }
          draft ??= { attempts: it.attempts, items: [], itemTokens: 0 };
          draft.items.push(it);
          draft.itemTokens += t;
        }
        if (page.length < CLAIM_PAGE) break;
      }
      if (draft && !full) close(draft);
      if (requests.length === 0) throw new NothingToPack();
      await insertRequestsAndPack(tx, batchId, requests);
      await completePreparedBatch(tx, batchId, { requestCount: requests.length, itemCount: items, estInputTokens: tokens, inputBytes: bytes });
      const tenantList = [...tenants].sort();
      await updateBatch(tx, batchId, { tenantIds: tenantList, tenantId: tenantList.length === 1 ? tenantList[0]! : "*" });
      return { id: batchId, estTokens: tokens, requests: requests.length };
    });
  } catch (e) {
    if (e instanceof NothingToPack) return undefined;
    throw e;
  }
}

/** Queues batch-lane jobs whose API process died before queueing them, and deletes uploads that never finished. */
async function housekeeping(deps: LaneDeps): Promise<{ adopted: number; reaped: number }> {
  let adopted = 0;
  for (const jobId of await orphanBatchJobs(deps.db, new Date(Date.now() - 60_000))) {
    const n = await enqueueJobItems(deps.db, jobId);
    adopted++;
    deps.log.warn({ jobId, items: n }, "batch-lane job had no queued items (API died before queueing them): queued now");
  }
  let reaped = 0;
  for (const jobId of await abandonedIngests(deps.db, new Date(Date.now() - deps.env.SIEVE_BULK_TIMEOUT_MS))) {
    await deleteJob(deps.db, jobId);
    reaped++;
    deps.log.warn({ jobId }, "bulk upload never finished (its process died): job deleted");
  }
  return { adopted, reaped };
}

/** One packer run over every provider with a batch API. */
export async function packOnce(deps: LaneDeps): Promise<PackResult> {
  const { env, log } = deps;
  const out: PackResult = { batches: [], adoptedJobs: 0, reapedIngests: 0 };
  const hk = await housekeeping(deps);
  out.adoptedJobs = hk.adopted;
  out.reapedIngests = hk.reaped;
  for (const api of deps.apis.values()) {
    const plog = log.child({ provider: api.provider });
    if ((deps.backoffUntil.get(api.provider) ?? 0) > Date.now()) continue;
    const load = await laneLoad(deps.db, api.provider);
    let slots = env.SIEVE_BATCH_MAX_OPEN_BATCHES - load.openBatches;
    let budget = env.SIEVE_BATCH_MAX_ENQUEUED_TOKENS - load.enqueuedTokens;
    const hint = deps.capacityHint.get(api.provider);
    if (hint !== undefined) budget = Math.min(budget, Math.max(0, hint - load.enqueuedTokens));
    const keys = await waitingKeys(deps.db, api.provider);
    provider: for (const key of keys) {
      const params = TaskParams.parse(await jobParams(deps.db, key.jobId));
      while (slots > 0 && budget > 0) {
        const prepared = await prepareBatch(deps, api, key, params, budget);
        if (!prepared) break;
        slots--;
        budget -= prepared.estTokens;
        out.batches.push(prepared.id);
        plog.info({ batchId: prepared.id, batchKey: key.batchKey, requests: prepared.requests, estTokens: prepared.estTokens }, "provider batch prepared");
        const submitted = await submitBatch(deps, api, prepared.id).catch((e) => {
          plog.warn({ batchId: prepared.id, err: coerceError(e).message }, "submit failed; the poller retries it");
          return "deferred" as const;
        });
        if (submitted === "at_capacity") break provider;
      }
      if (slots <= 0 || budget <= 0) {
        plog.debug({ slots, budget }, "admission: items keep waiting (open batches or enqueued tokens at the limit)");
        break;
      }
    }
  }
  return out;
}
