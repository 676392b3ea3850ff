/**
 * The aggregator: one per provider queue per worker process. It wires the parts of the realtime
 * lane's consumer together:
 *
 * - parcelLease.ts fetches parcels from BullMQ one at a time and holds their locks until each
 *   parcel is settled, exactly once; parcelRetry.ts then retries a parcel whose items met a
 *   transient failure (429: after Retry-After, not counted as an attempt; 5xx/timeout: BullMQ's
 *   backoff), or, out of attempts, ends its unanswered items with error rows;
 * - bins.ts packs the items of parcels that share a batch key into calls (items, tokens, max wait,
 *   per task);
 * - callSlots.ts decides when a call may start (concurrency, an open circuit breaker, a 429 pause
 *   of the queue: rateLimitPause.ts);
 * - answerOrSplit.ts makes the call and asks again, in halves, the items whose answers fail
 *   validation.
 */
import type { Redis } from "ioredis";
import {
  Parcel,
  ProviderError,
  coerceError,
  countTokens,
  safeErrorMessage,
  realtimeQueueName,
  type BatchPolicy,
  type Db,
  type Logger,
  type PriceTable,
  type ProviderName,
  type NewResult,
  type DependencyMonitor,
} from "@sieve/shared";
import type { FinishedJob } from "@sieve/shared/db/ops/results";
import type { LlmProvider } from "../providers/types.js";
import { answerOrSplit, type BatchItem } from "./answerOrSplit.js";
import type { LandedResult } from "../dedup/afterResults.js";
import { ParcelLeases, type Held } from "./parcelLease.js";
import type { ParcelRetryDeps } from "./parcelRetry.js";
import { Bins, perTaskPolicy, systemClock } from "./bins.js";
import { CallSlots } from "./callSlots.js";
import { RateLimitPause } from "./rateLimitPause.js";

export interface AggregatorOptions {
  db: Db;
  /** A connection with maxRetriesPerRequest: null (BullMQ workers). */
  connection: Redis;
  prefix: string;
  provider: LlmProvider;
  prices: PriceTable;
  /** Batch policy per task. */
  policies: Record<"classify" | "translate", BatchPolicy>;
  /** LLM calls in flight at once; a function when it adapts (the GPU lane's limiters, gpu/pool.ts). */
  concurrency: number | (() => number);
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
  /** Up/down state of Redis and Postgres: outages are logged once and waited out (docs/operations.md#outages). */
  monitor: DependencyMonitor;
  /** A batch key's maxItems as the re-check controller set it (docs/quality.md); undefined: the task's. */
  maxItemsFor?: (batchKey: string) => number | undefined;
  /** Valid answers of each multi-item call (re-check sampling, docs/quality.md). */
  onCallAnswered?: (info: { parcel: Parcel; callItems: number; rows: NewResult[]; textOf: (itemId: number) => string | undefined }) => void | Promise<void>;
  /** Outage policy (router/outageHook.ts): ms to wait before the next call may be sent (a provider's open circuit breaker). */
  gate?: () => number;
  /** Outage policy: while gated, true when the waiting items should be handed over (another route can take them). */
  shedWhenGated?: () => boolean;
  /** Outage policy: every call's outcome (false: a 5xx or timeout). */
  onCallResult?: (ok: boolean) => void;
  /** Outage policy for a parcel whose items hit a transient failure (not a 429): see parcelRetry.ts. */
  onTransient?: ParcelRetryDeps["onTransient"];
}

interface PendingItem extends BatchItem {
  held: Held;
  tokens: number;
}

export class Aggregator {
  private readonly leases: ParcelLeases;
  private readonly pause: RateLimitPause;
  private readonly slots: CallSlots;
  private readonly bins: Bins<PendingItem, Parcel>;
  private heldItems = 0;
  private readonly abort = new AbortController();
  private readonly calls = new Set<Promise<void>>();
  readonly queueName: string;

  constructor(private readonly opts: AggregatorOptions) {
    this.queueName = realtimeQueueName(opts.provider.name);
    this.leases = new ParcelLeases({
      queueName: this.queueName,
      connection: opts.connection,
      prefix: opts.prefix,
      db: opts.db,
      log: opts.log,
      monitor: opts.monitor,
      lockMs: opts.lockDurationMs ?? 30_000,
      ...(opts.maxRateLimitRetries !== undefined ? { maxRateLimitRetries: opts.maxRateLimitRetries } : {}),
      ...(opts.onJobsFinished ? { onJobsFinished: opts.onJobsFinished } : {}),
      ...(opts.afterResults ? { afterResults: opts.afterResults } : {}),
      ...(opts.onTransient ? { onTransient: opts.onTransient } : {}),
    });
    this.pause = new RateLimitPause({ queueName: this.queueName, connection: opts.connection, prefix: opts.prefix, monitor: opts.monitor });
    this.slots = new CallSlots({
      concurrency: opts.concurrency,
      pausedForMs: () => this.pause.leftMs(),
      ...(opts.gate ? { gate: opts.gate } : {}),
      ...(opts.shedWhenGated ? { shedWhenGated: opts.shedWhenGated } : {}),
    });
    this.bins = new Bins({
      clock: systemClock,
      tokensOf: (it) => it.tokens,
      policyOf: perTaskPolicy<Parcel>(opts.policies, opts.maxItemsFor),
      launch: (first, items) => this.launch(first, items),
    });
  }

  /** Most items held (waiting in bins or for a call slot) before fetching pauses. */
  private get maxHeldItems(): number {
    const maxItems = Math.max(this.opts.policies.classify.maxItems, this.opts.policies.translate.maxItems);
    return maxItems * Math.max(1, this.slots.limit()) * 2;
  }

  async start(): Promise<void> {
    await this.leases.start({
      full: () => this.heldItems >= this.maxHeldItems,
      released: () => this.slots.released(),
      pausedForMs: () => this.pause.leftMs(),
      onItems: (held, items) => {
        const parcel = held.parcel;
        this.heldItems += items.length;
        this.bins.add(
          parcel.batchKey,
          parcel,
          items.map((it) => ({ itemId: it.itemId, jobId: parcel.jobId, tenantId: parcel.tenantId, text: it.text, held, tokens: it.tokens || countTokens(it.text) })),
        );
      },
    });
  }

  /** One call's worth of items left a bin: run the call. */
  private launch(rep: Parcel, items: PendingItem[]): void {
    // runCall handles its own failures; this catch only keeps a bug from becoming an unhandled rejection.
    const p = this.runCall(rep, items)
      .catch((e: unknown) => this.opts.log.error({ err: safeErrorMessage(e) }, "call bookkeeping failed; the parcels' locks lapse and BullMQ hands them back"))
      .finally(() => this.calls.delete(p));
    this.calls.add(p);
  }

  private async runCall(rep: Parcel, items: PendingItem[]): Promise<void> {
    if (!(await this.slots.acquire())) {
      this.heldItems -= items.length;
      this.slots.wake();
      const error = new ProviderError({ provider: this.opts.provider.name, kind: "server", message: "circuit breaker open: the provider keeps failing" });
      await this.leases.release(items, { itemIds: items.map((i) => i.itemId), error });
      return;
    }
    let final = new Set<number>();
    let transient: { itemIds: number[]; error: ProviderError } | undefined;
    try {
      const res = await answerOrSplit(
        {
          db: this.opts.db,
          provider: this.opts.provider,
          model: rep.model,
          params: rep.params,
          batchKey: rep.batchKey,
          lane: rep.tier === "flex" ? "flex" : "realtime",
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
      this.opts.onCallResult?.(!transient || transient.error.kind === "rate_limited" || transient.error.kind === "client");
      this.opts.onCall?.({ provider: this.opts.provider.name, model: rep.model, items: items.length, calls: res.calls });
    } catch (e) {
      const err = coerceError(e);
      if (this.opts.monitor.report(e, "aggregator call")) {
        // Postgres (or Redis) went away under the call: the parcels are retried once it is back,
        // without using one of their provider attempts.
        for (const it of items) it.held.infraError = true;
      } else {
        // A bug: treat like a transient failure; BullMQ retries the parcels with back-off.
        const message = safeErrorMessage(err);
        this.opts.log.error({ err: message, batchKey: rep.batchKey }, "batch execution failed");
        transient = { itemIds: items.filter((i) => !final.has(i.itemId)).map((i) => i.itemId), error: new ProviderError({ provider: this.opts.provider.name, kind: "server", message: `internal: ${message}`, cause: e }) };
      }
    } finally {
      this.slots.release();
      this.heldItems -= items.length;
      this.slots.wake();
    }
    if (transient?.error.kind === "rate_limited") {
      await this.pause.pause(transient.error.retryAfterMs ?? 1_000);
    }
    await this.leases.release(items, transient);
  }

  private landed(items: PendingItem[], rows: NewResult[], inserted: Set<number>): LandedResult[] {
    const byId = new Map(items.map((i) => [i.itemId, i]));
    const out: LandedResult[] = [];
    for (const row of rows) {
      if (!inserted.has(row.itemId)) continue;
      const p = byId.get(row.itemId);
      const item = p?.held.parcel.items.find((x) => x.itemId === row.itemId);
      if (p && item) out.push({ row, item, parcel: p.held.parcel, callItems: items.length });
    }
    return out;
  }

  /** Counts for metrics and tests. */
  stats(): { heldParcels: number; heldItems: number; inFlight: number; bins: number } {
    return { heldParcels: this.leases.size, heldItems: this.heldItems, inFlight: this.slots.inFlight, bins: this.bins.size };
  }

  /**
   * Graceful stop: no new parcels; items waiting in bins are flushed now; in-flight calls get
   * `graceMs` to finish, then are aborted (their parcels go back to BullMQ via the stalled check
   * or the retry path; nothing is lost).
   */
  async close(graceMs = 10_000): Promise<void> {
    this.leases.stopFetching();
    this.slots.wake();
    this.bins.drain();
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
    await this.leases.close();
    await this.pause.close();
  }
}
