/**
 * The safety net for "nothing lost": finds jobs still pending after `staleAfterMs` whose items no
 * queue message will ever answer (the producer died between the database commit and the enqueue,
 * or a parcel ended up failed/removed in Redis), and enqueues a repair parcel with exactly the
 * items that still have no result. Safe to run anywhere and often: results are idempotent.
 */
import type { Queue } from "bullmq";
import { TaskParams, batchKeyFor, buildParcel, parcelJobId, repairParcelId, repairParcelJobOptions, type Db, type Env, type Logger, type ProviderName } from "@sieve/shared";
import { markEnqueued, pendingItemsOfJob, staleJobs, type JobRow } from "@sieve/shared/db/ops/jobs";
import { purgeIdempotencyKeys } from "@sieve/shared/db/ops/idempotency";
import { interruptStaleCalls } from "@sieve/shared/db/ops/results";
import type { ExactCache } from "@sieve/shared/dedup/exact";

const LIVE_STATES = new Set(["waiting", "active", "delayed", "prioritized", "waiting-children"]);

export interface SweepOptions {
  db: Db;
  env: Env;
  queues: Map<ProviderName, Queue>;
  log: Logger;
  /**
   * Jobs never marked enqueued (the producer may still be enqueueing them) younger than this are
   * left alone. @defaultValue 60000
   */
  staleAfterMs?: number;
  /**
   * Enqueued jobs younger than this are left alone; older ones are repaired when none of their
   * parcels is live in Redis (Redis lost them). @defaultValue min(staleAfterMs, 15000)
   */
  orphanAfterMs?: number;
  /** Most jobs looked at in one sweep (paged 100 at a time). @defaultValue 5000 */
  maxJobsPerSweep?: number;
  /**
   * The exact cache, when on: items coalesced with an identical item in flight wait for their
   * leader (however long its lane takes, e.g. flex) until its claim expires, instead of being sent again.
   */
  exact?: Pick<ExactCache, "inFlight">;
}

export async function sweepOnce(opts: SweepOptions): Promise<{ repaired: number; items: number }> {
  // Idempotency keys past their retention (README, "Idempotency-Key"): one indexed delete per tick.
  await purgeIdempotencyKeys(opts.db, opts.env.SIEVE_IDEMPOTENCY_TTL_HOURS);
  await markInterruptedCalls(opts);
  const staleAfterMs = opts.staleAfterMs ?? 60_000;
  const orphanAfterMs = Math.min(staleAfterMs, opts.orphanAfterMs ?? 15_000);
  const now = Date.now();
  let repaired = 0;
  let itemsRequeued = 0;
  for await (const job of pagesOfStaleJobs(opts.db, new Date(now - orphanAfterMs), opts.maxJobsPerSweep ?? 5_000)) {
    // Not yet marked enqueued: the producer may be enqueueing it right now; give it the longer wait.
    if (!job.enqueued && job.createdAt.getTime() > now - staleAfterMs) continue;
    const queue = opts.queues.get(job.provider as ProviderName);
    if (!queue) continue;
    // A lane-router job (lane auto) has parcels on several provider queues, numbered across them.
    const queues = job.lane === "auto" ? [...opts.queues.values()] : [queue];
    if (job.enqueued) {
      const states = await Promise.all(
        Array.from({ length: job.parcelCount }, (_, i) => Promise.all(queues.map((q) => q.getJobState(parcelJobId(job.id, i))))),
      );
      if (states.flat().some((s) => LIVE_STATES.has(s))) continue;
      const repairStates = await Promise.all(queues.map((q) => q.getJobState(repairParcelId(job.id))));
      if (repairStates.some((s) => LIVE_STATES.has(s))) continue;
    }
    let pending = await pendingItemsOfJob(opts.db, job.id, { skipBatchLane: job.lane === "auto" });
    // A leader that lost its parcel is sent again still leading, so its answer releases its followers.
    let leading = new Set<number>();
    if (opts.exact && pending.some((it) => it.cacheKey)) {
      const f = await opts.exact.inFlight(pending.filter((it) => it.cacheKey).map((it) => ({ key: it.cacheKey!, itemId: it.id })));
      pending = pending.filter((it) => !f.waiting.has(it.id));
      leading = f.leading;
    }
    if (pending.length === 0) continue;
    const params = TaskParams.parse(job.params);
    // One repair parcel per route with every pending item: the aggregator packs it maxItems at a time.
    const byRoute = new Map<string, typeof pending>();
    for (const it of pending) {
      const r = it.route && job.lane === "auto" ? it.route : `${job.provider}:${job.model}`;
      byRoute.set(r, [...(byRoute.get(r) ?? []), it]);
    }
    for (const [routeText, items] of byRoute) {
      const [provider, ...rest] = routeText.split(":");
      const tier = rest.at(-1) === "flex" ? "flex" : undefined;
      const model = (tier ? rest.slice(0, -1) : rest).join(":");
      const q = opts.queues.get(provider as ProviderName);
      if (!q) continue;
      const route = { provider: provider as ProviderName, model };
      const sameAsJob = provider === job.provider && model === job.model && !tier;
      // No cache policy: a repair parcel's answers are not written to the caches; a leader's still releases its followers.
      const parcel = buildParcel(
        {
          jobId: job.id,
          tenantId: job.tenantId,
          batchKey: sameAsJob && job.lane !== "auto" ? job.batchKey : batchKeyFor(opts.env, { tenantId: job.tenantId, params }, route, tier ?? "realtime"),
          route,
          params,
          tier,
          deadlineAt: job.deadlineAt ? job.deadlineAt.getTime() : undefined,
        },
        items.map((it) => ({ id: it.id, text: it.text, ...(leading.has(it.id) ? { cacheKey: it.cacheKey!, lead: true } : {}) })),
      );
      // Remove a finished repair parcel of an earlier sweep so its id can be reused.
      await q.remove(repairParcelId(job.id)).catch(() => 0);
      await q.add("parcel", parcel, repairParcelJobOptions(opts.env, job.id));
    }
    if (!job.enqueued) await markEnqueued(opts.db, job.id, 0);
    repaired++;
    itemsRequeued += pending.length;
    opts.log.warn({ jobId: job.id, items: pending.length, wasEnqueued: job.enqueued }, "sweeper re-enqueued items no queue message would answer");
  }
  return { repaired, items: itemsRequeued };
}

/** Stale jobs oldest first, a page at a time, at most `max` in all. */
async function* pagesOfStaleJobs(db: Db, olderThan: Date, max: number): AsyncGenerator<JobRow> {
  let after: { createdAt: Date; id: string } | undefined;
  let seen = 0;
  while (seen < max) {
    const page = await staleJobs(db, olderThan, Math.min(100, max - seen), after);
    for (const job of page) yield job;
    seen += page.length;
    if (page.length < 100) return;
    const last = page[page.length - 1]!;
    after = { createdAt: last.createdAt, id: last.id };
  }
}

/**
 * A call still "sent" well past SIEVE_CALL_TIMEOUT_MS lost its worker (a call never outlives its
 * timeout): it becomes "interrupted" with its estimate, so its spend stays in /v1/usage.
 */
export async function markInterruptedCalls(opts: Pick<SweepOptions, "db" | "env" | "log">): Promise<number> {
  const n = await interruptStaleCalls(opts.db, new Date(Date.now() - opts.env.SIEVE_CALL_TIMEOUT_MS - INTERRUPT_GRACE_MS));
  if (n > 0) opts.log.warn({ calls: n }, "provider calls without an answer marked interrupted (their worker stopped mid-call)");
  return n;
}

/** Slack after the call timeout for the answer's write to land before a call counts as cut off. */
const INTERRUPT_GRACE_MS = 10_000;
