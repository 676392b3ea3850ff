/**
 * The aggregator: one per provider queue per worker process.
 *
 * Open-source BullMQ has no batch consumption, so this uses manual processing (PROVIDER-NOTES.md):
 * `worker.getNextJob(token)` pulls parcels one by one; their locks are held (and extended) while
 * the parcels wait in a bin for neighbours with the same batch key. A bin is flushed as soon as it
 * holds `maxItems` items or `maxTokens` estimated tokens, or when its oldest item has waited
 * `maxWaitMs`. A call may take items from several parcels, and a parcel's items may span calls.
 *
 * Crash safety: a parcel is only completed after all its items are persisted. If this process
 * dies, the locks expire and BullMQ's stalled check hands the parcels to another worker, which
 * skips items that already have a result (the results table's primary key makes writes idempotent).
 *
 * Retries: 429 -> queue.rateLimit(Retry-After) + parcel delayed by Retry-After (not counted as an
 * attempt, up to `maxRateLimitRetries`); 5xx/timeout -> job.moveToFailed so BullMQ's exponential
 * backoff applies; on the last attempt the remaining items end with an explicit error instead.
 */
import { randomUUID } from "node:crypto";
import { Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import {
  Parcel,
  ProviderError,
  coerceError,
  countTokens,
  realtimeQueueName,
  type BatchPolicy,
  type Db,
  type Logger,
  type PriceTable,
  type ProviderName,
  type NewResult,
} from "@sieve/shared";
import { itemsWithResults, recordOutcome, type FinishedJob } from "@sieve/shared/db/ops/results";
import type { LlmProvider } from "../providers/types.js";
import { executeBatch, type BatchItem } from "./execute.js";
import type { LandedResult } from "../dedup/afterResults.js";

export interface AggregatorOptions {
  db: Db;
  /** A connection with maxRetriesPerRequest: null (BullMQ workers). */
  connection: Redis;
  prefix: string;
  provider: LlmProvider;
  prices: PriceTable;
  /** Batch policy per task. */
  policies: Record<"classify" | "translate", BatchPolicy>;
  /** LLM calls in flight at once. */
  concurrency: number;
  callTimeoutMs: number;
  /** BullMQ lock duration for held parcels, in ms. @defaultValue 30000 */
  lockDurationMs?: number;
  /** 429s a parcel may meet before they count as attempts. @defaultValue 50 */
  maxRateLimitRetries?: number;
  log: Logger;
  /** Jobs finished by a write: the caller publishes events. */
  onJobsFinished?: (jobs: FinishedJob[]) => void;
  onCall?: (info: { provider: ProviderName; model: string; items: number; calls: number }) => void;
  /** Results that were inserted (cache writes, coalesced followers). */
  afterResults?: (landed: LandedResult[]) => Promise<void>;
  /** A batch key's maxItems as the re-check controller set it (docs/quality.md); undefined: the task's. */
  maxItemsFor?: (batchKey: string) => number | undefined;
  /** Valid answers of each multi-item call (re-check sampling, docs/quality.md). */
  onCallAnswered?: (info: { parcel: Parcel; callItems: number; rows: NewResult[]; textOf: (itemId: number) => string | undefined }) => void | Promise<void>;
}

interface Held {
  job: Job;
  token: string;
  parcel: Parcel;
  /** Items of this parcel not yet settled (final or transient-failed). */
  outstanding: number;
  transientError?: ProviderError;
}

interface PendingItem extends BatchItem {
  held: Held;
  tokens: number;
  arrivedAt: number;
}

interface Bin {
  key: string;
  parcel: Parcel; // a representative (same params/model/provider for the whole bin)
  items: PendingItem[];
  tokens: number;
  timer?: NodeJS.Timeout;
}

export class Aggregator {
  private readonly worker: Worker;
  private readonly queue: Queue;
  private readonly bins = new Map<string, Bin>();
  private readonly held = new Map<string, Held>();
  private heldItems = 0;
  private inFlight = 0;
  private readonly waiters: Array<() => void> = [];
  private stopping = false;
  private loop?: Promise<void>;
  private lockTimer?: NodeJS.Timeout;
  private pausedUntil = 0;
  private readonly abort = new AbortController();
  private readonly calls = new Set<Promise<void>>();
  readonly queueName: string;
  private readonly lockMs: number;

  constructor(private readonly opts: AggregatorOptions) {
    this.queueName = realtimeQueueName(opts.provider.name);
    this.lockMs = opts.lockDurationMs ?? 30_000;
    this.worker = new Worker(this.queueName, null, {
      connection: opts.connection,
      prefix: opts.prefix,
      lockDuration: this.lockMs,
      stalledInterval: Math.max(1_000, Math.floor(this.lockMs / 2)),
      // A parcel can stall each time a worker dies while holding it; it must never end "failed"
      // for that reason alone (the sweeper would still rescue its items, but slower).
      maxStalledCount: 1_000,
      autorun: false,
    });
    this.worker.on("error", (err) => opts.log.warn({ err: coerceError(err).message }, "worker connection error"));
    this.queue = new Queue(this.queueName, { connection: opts.connection, prefix: opts.prefix });
  }

  /** Most items held (waiting in bins or for a call slot) before fetching pauses. */
  private get maxHeldItems(): number {
    const maxItems = Math.max(this.opts.policies.classify.maxItems, this.opts.policies.translate.maxItems);
    return maxItems * this.opts.concurrency * 2;
  }

  async start(): Promise<void> {
    await this.worker.waitUntilReady();
    await this.worker.startStalledCheckTimer();
    this.lockTimer = setInterval(() => void this.extendLocks(), Math.floor(this.lockMs / 3));
    this.loop = this.fetchLoop();
  }

  private async fetchLoop(): Promise<void> {
    while (!this.stopping) {
      if (this.heldItems >= this.maxHeldItems) {
        await new Promise<void>((r) => this.waiters.push(r));
        continue;
      }
      const token = `${this.worker.id}:${randomUUID()}`;
      let job: Job | undefined;
      const asked = Date.now();
      try {
        job = (await this.worker.getNextJob(token, { block: true })) ?? undefined;
      } catch (e) {
        if (this.stopping) break;
        this.opts.log.warn({ err: coerceError(e).message }, "getNextJob failed; retrying");
        await sleep(500);
        continue;
      }
      if (!job) {
        // getNextJob returns at once while the queue is rate-limited: do not spin.
        if (Date.now() - asked < 10) await sleep(Math.min(1_000, Math.max(50, this.pausedUntil - Date.now())));
        continue;
      }
      if (this.stopping) {
        await job.moveToWait(token).catch(() => {});
        break;
      }
      await this.accept(job, token);
    }
  }

  private async accept(job: Job, token: string): Promise<void> {
    const parsed = Parcel.safeParse(job.data);
    if (!parsed.success) {
      // A payload that does not parse will never parse: fail it without retry.
      this.opts.log.error({ jobId: job.id, issues: parsed.error.issues.slice(0, 3) }, "poison parcel payload");
      await job.moveToFailed(new UnrecoverableError(`invalid parcel payload: ${parsed.error.message}`), token).catch(() => {});
      return;
    }
    const parcel = parsed.data;
    // On a retry or after a crash some items already have results: send only the others.
    const done = await itemsWithResults(this.opts.db, parcel.items.map((i) => i.itemId));
    const todo = parcel.items.filter((i) => !done.has(i.itemId));
    const held: Held = { job, token, parcel, outstanding: todo.length };
    if (todo.length === 0) {
      await this.settleParcel(held);
      return;
    }
    this.held.set(job.id!, held);
    const bin = this.binFor(parcel);
    const now = Date.now();
    for (const it of todo) {
      const tokens = it.tokens || countTokens(it.text);
      bin.items.push({ itemId: it.itemId, jobId: parcel.jobId, tenantId: parcel.tenantId, text: it.text, held, tokens, arrivedAt: now });
      bin.tokens += tokens;
      this.heldItems++;
    }
    this.maybeFlush(bin);
  }

  private binFor(parcel: Parcel): Bin {
    let bin = this.bins.get(parcel.batchKey);
    if (!bin) {
      bin = { key: parcel.batchKey, parcel, items: [], tokens: 0 };
      this.bins.set(parcel.batchKey, bin);
    }
    return bin;
  }

  private policyOf(bin: Bin): BatchPolicy {
    const policy = this.opts.policies[bin.parcel.params.task];
    const limit = this.opts.maxItemsFor?.(bin.key);
    return limit === undefined ? policy : { ...policy, maxItems: Math.max(1, Math.min(policy.maxItems, limit)) };
  }

  private maybeFlush(bin: Bin): void {
    const policy = this.policyOf(bin);
    while (bin.items.length >= policy.maxItems || (bin.items.length > 1 && bin.tokens >= policy.maxTokens)) {
      this.flush(bin);
    }
    if (bin.items.length > 0 && !bin.timer) {
      const waited = Date.now() - bin.items[0]!.arrivedAt;
      bin.timer = setTimeout(() => {
        bin.timer = undefined;
        if (bin.items.length > 0) this.flush(bin);
        if (bin.items.length > 0) this.maybeFlush(bin);
      }, Math.max(0, policy.maxWaitMs - waited));
    }
  }

  /** Takes up to maxItems / maxTokens items from the bin and launches one call. */
  private flush(bin: Bin): void {
    const policy = this.policyOf(bin);
    const take: PendingItem[] = [];
    let tokens = 0;
    while (bin.items.length > 0 && take.length < policy.maxItems) {
      const next = bin.items[0]!;
      if (take.length > 0 && tokens + next.tokens > policy.maxTokens) break;
      take.push(bin.items.shift()!);
      tokens += next.tokens;
    }
    bin.tokens -= tokens;
    if (bin.timer) {
      clearTimeout(bin.timer);
      bin.timer = undefined;
    }
    if (bin.items.length === 0) this.bins.delete(bin.key);
    const p = this.runCall(bin.parcel, take).finally(() => this.calls.delete(p));
    this.calls.add(p);
    if (bin.items.length > 0 && !this.stopping) this.maybeFlush(bin);
  }

  private async acquireSlot(): Promise<void> {
    while (this.inFlight >= this.opts.concurrency || Date.now() < this.pausedUntil) {
      const wait = this.pausedUntil - Date.now();
      if (wait > 0) await sleep(Math.min(wait, 1_000));
      else await new Promise<void>((r) => this.waiters.push(r));
    }
    this.inFlight++;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async runCall(rep: Parcel, items: PendingItem[]): Promise<void> {
    await this.acquireSlot();
    let final = new Set<number>();
    let transient: { itemIds: number[]; error: ProviderError } | undefined;
    try {
      const res = await executeBatch(
        {
          db: this.opts.db,
          provider: this.opts.provider,
          model: rep.model,
          params: rep.params,
          batchKey: rep.batchKey,
          lane: "realtime",
          prices: this.opts.prices,
          timeoutMs: this.opts.callTimeoutMs,
          signal: this.abort.signal,
          log: this.opts.log,
          onPersisted: async (info) => {
            // Cache writes first, then "job finished": a caller that resubmits the same text right
            // after its long-poll returns should find it in the cache.
            if (this.opts.afterResults) await this.opts.afterResults(this.landed(items, info.rows, info.inserted));
            if (info.finishedJobs.length > 0) this.opts.onJobsFinished?.(info.finishedJobs);
          },
          ...(this.opts.onCallAnswered
            ? {
                // Not awaited: sampling for re-checks must not delay the parcels (docs/quality.md).
                onCallAnswered: (info: { callItems: number; rows: NewResult[] }) =>
                  void this.opts.onCallAnswered!({ ...info, parcel: rep, textOf: (id: number) => items.find((i) => i.itemId === id)?.text }),
              }
            : {}),
        },
        items,
      );
      final = res.final;
      transient = res.transient;
      this.opts.onCall?.({ provider: this.opts.provider.name, model: rep.model, items: items.length, calls: res.calls });
    } catch (e) {
      // Database unreachable or a bug: treat like a transient failure; BullMQ retries the parcels.
      const err = coerceError(e);
      this.opts.log.error({ err: err.message, batchKey: rep.batchKey }, "batch execution failed");
      transient = { itemIds: items.filter((i) => !final.has(i.itemId)).map((i) => i.itemId), error: new ProviderError({ provider: this.opts.provider.name, kind: "server", message: `internal: ${err.message}`, cause: e }) };
    } finally {
      this.inFlight--;
      this.heldItems -= items.length;
      this.wake();
    }
    if (transient?.error.kind === "rate_limited") {
      const ms = transient.error.retryAfterMs ?? 1_000;
      this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
      await this.queue.rateLimit(ms).catch(() => {});
    }
    const transientIds = new Set(transient?.itemIds ?? []);
    const touched = new Set<Held>();
    for (const it of items) {
      it.held.outstanding--;
      if (transientIds.has(it.itemId)) it.held.transientError = transient!.error;
      touched.add(it.held);
    }
    for (const h of touched) if (h.outstanding === 0) await this.settleParcel(h);
  }

  private landed(items: PendingItem[], rows: NewResult[], inserted: Set<number>): LandedResult[] {
    const byId = new Map(items.map((i) => [i.itemId, i]));
    const out: LandedResult[] = [];
    for (const row of rows) {
      if (!inserted.has(row.itemId)) continue;
      const p = byId.get(row.itemId);
      const item = p?.held.parcel.items.find((x) => x.itemId === row.itemId);
      if (p && item) out.push({ row, item, parcel: p.held.parcel });
    }
    return out;
  }

  /** All items of a parcel are settled: complete it, or hand it back to BullMQ for a retry. */
  private async settleParcel(h: Held): Promise<void> {
    this.held.delete(h.job.id!);
    const { job, token } = h;
    try {
      if (!h.transientError) {
        await job.moveToCompleted({ items: h.parcel.items.length }, token, false);
        return;
      }
      const err = h.transientError;
      const rl = (job.data as { rateLimited?: number }).rateLimited ?? 0;
      if (err.kind === "rate_limited" && rl < (this.opts.maxRateLimitRetries ?? 50)) {
        await job.updateData({ ...h.parcel, rateLimited: rl + 1 });
        await job.moveToDelayed(Date.now() + (err.retryAfterMs ?? 1_000), token);
        return;
      }
      const attempts = job.opts.attempts ?? 1;
      if (job.attemptsMade + 1 < attempts) {
        await job.moveToFailed(new Error(`${err.provider} ${err.kind}: ${err.message}`), token);
        return;
      }
      // Out of attempts: every item still without a result ends with an explicit error.
      const done = await itemsWithResults(this.opts.db, h.parcel.items.map((i) => i.itemId));
      const rows = h.parcel.items
        .filter((i) => !done.has(i.itemId))
        .map((i) => ({
          itemId: i.itemId,
          jobId: h.parcel.jobId,
          tenantId: h.parcel.tenantId,
          status: "error" as const,
          errorCode: "provider_unavailable",
          errorMessage: `${err.provider} failed ${attempts} times (${err.kind}${err.status ? ` ${err.status}` : ""}): ${err.message}`.slice(0, 2000),
          provider: h.parcel.provider,
          model: h.parcel.model,
        }));
      const out = await recordOutcome(this.opts.db, null, rows);
      if (this.opts.afterResults) {
        const inserted = new Set(out.inserted);
        const byId = new Map(h.parcel.items.map((i) => [i.itemId, i]));
        await this.opts.afterResults(rows.filter((r) => inserted.has(r.itemId)).map((r) => ({ row: r, item: byId.get(r.itemId)!, parcel: h.parcel })));
      }
      if (out.finishedJobs.length > 0) this.opts.onJobsFinished?.(out.finishedJobs);
      await job.moveToCompleted({ items: h.parcel.items.length, exhausted: true }, token, false);
    } catch (e) {
      // Lost the lock (another worker took the parcel after a stall) or Redis hiccup: the parcel
      // will be re-run elsewhere; persisted results make that safe.
      this.opts.log.warn({ jobId: job.id, err: coerceError(e).message }, "could not settle parcel");
    }
  }

  private async extendLocks(): Promise<void> {
    for (const h of this.held.values()) {
      try {
        await h.job.extendLock(h.token, this.lockMs);
      } catch (e) {
        this.opts.log.warn({ jobId: h.job.id, err: coerceError(e).message }, "could not extend parcel lock");
      }
    }
  }

  /** Counts for metrics and tests. */
  stats(): { heldParcels: number; heldItems: number; inFlight: number; bins: number } {
    return { heldParcels: this.held.size, heldItems: this.heldItems, inFlight: this.inFlight, bins: this.bins.size };
  }

  /**
   * Graceful stop: no new parcels; items waiting in bins are flushed now; in-flight calls get
   * `graceMs` to finish, then are aborted (their parcels go back to BullMQ via the stalled check
   * or the retry path; nothing is lost).
   */
  async close(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.wake();
    for (const bin of [...this.bins.values()]) while (bin.items.length > 0) this.flush(bin);
    const all = Promise.allSettled([...this.calls]);
    let graceTimer: NodeJS.Timeout | undefined;
    const grace = new Promise<boolean>((resolve) => {
      graceTimer = setTimeout(() => resolve(true), graceMs);
    });
    const timedOut = await Promise.race([all.then(() => false), grace]);
    // The losing timer would keep the process alive for graceMs after everything else closed.
    clearTimeout(graceTimer);
    if (timedOut) {
      this.abort.abort();
      await all;
    }
    if (this.lockTimer) clearInterval(this.lockTimer);
    // The fetch loop may be blocked in getNextJob; closing the worker releases it.
    await this.worker.close(true).catch(() => {});
    await this.loop?.catch(() => {});
    await this.queue.close().catch(() => {});
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
