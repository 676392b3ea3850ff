/**
 * The parcels an aggregator leases from its provider's BullMQ queue: fetched one at a time with a
 * token (open-source BullMQ has no batch consumption: docs/providers.md#bullmq), their locks
 * extended while their items wait in bins or calls, and each one settled exactly once, when all
 * its items are settled (docs/operations.md#outages for what an outage does to them).
 *
 * Crash safety: a parcel is only completed after all its items are persisted. If this process
 * dies, the locks expire and BullMQ's stalled check hands the parcels to another worker, which
 * skips items that already have a result (the results table's primary key makes writes idempotent).
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { UnrecoverableError, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import { Parcel, safeErrorMessage, type Db, type DependencyMonitor, type Logger, type ProviderError } from "@sieve/shared";
import { itemsWithResults, resultCounts } from "@sieve/shared/db/ops/results";
import { retryOrEndWithErrors, type ParcelRetryDeps } from "./parcelRetry.js";

/** Delay before a parcel set back by an outage is offered again, in ms. */
export const OUTAGE_DELAY_MS = 2_000;

export interface Held {
  job: Job;
  token: string;
  parcel: Parcel;
  /** Items of this parcel not yet settled (final or transient-failed). */
  outstanding: number;
  transientError?: ProviderError;
  /** A call of this parcel could not be persisted (Postgres unreachable): retry without using an attempt. */
  infraError?: boolean;
  /** Our lock is gone (another worker owns the parcel, or Redis lost it): never settle it from here. */
  lockLost?: boolean;
}

export interface ParcelLeasesDeps extends ParcelRetryDeps {
  queueName: string;
  /** A connection with maxRetriesPerRequest: null (BullMQ workers). */
  connection: Redis;
  prefix: string;
  db: Db;
  log: Logger;
  monitor: DependencyMonitor;
  /** BullMQ lock duration of held parcels, in ms. */
  lockMs: number;
}

/** What the fetch loop asks of the aggregator. */
export interface FetchHooks {
  /** True while as many items are held as may be: fetching waits for `released()`. */
  full(): boolean;
  /** Resolves when held items were released (or on close). */
  released(): Promise<void>;
  /** Ms left of a 429 pause (rateLimitPause.ts). */
  pausedForMs(): number;
  /** A fetched parcel's items that still need an answer (never none); each must come back through `release`. */
  onItems(held: Held, items: Parcel["items"]): void;
}

export class ParcelLeases {
  private readonly worker: Worker;
  private readonly map = new Map<string, Held>();
  private extending = false;
  private stopping = false;
  private loop?: Promise<void>;
  private lockTimer?: NodeJS.Timeout;

  constructor(private readonly deps: ParcelLeasesDeps) {
    this.worker = new Worker(deps.queueName, null, {
      connection: deps.connection,
      prefix: deps.prefix,
      lockDuration: deps.lockMs,
      stalledInterval: Math.max(1_000, Math.floor(deps.lockMs / 2)),
      // A parcel can stall each time a worker dies while holding it; it must never end "failed"
      // for that reason alone (the sweeper would still rescue its items, but slower).
      maxStalledCount: 1_000,
      autorun: false,
    });
    // An emitter without an 'error' listener prints raw stacks (BullMQ falls back to console.error).
    deps.monitor.watch(this.worker, "aggregator worker");
  }

  /** Parcels held. */
  get size(): number {
    return this.map.size;
  }

  async start(hooks: FetchHooks): Promise<void> {
    await this.worker.waitUntilReady();
    await this.worker.startStalledCheckTimer();
    this.lockTimer = setInterval(() => void this.extendLocks(), Math.floor(this.deps.lockMs / 3));
    this.loop = this.fetchLoop(hooks);
  }

  /** No new parcels: a parcel fetched meanwhile goes back to the queue. */
  stopFetching(): void {
    this.stopping = true;
  }

  /** Stops extending locks and closes the worker (held parcels' locks lapse: BullMQ hands them back). */
  async close(): Promise<void> {
    if (this.lockTimer) clearInterval(this.lockTimer);
    // The fetch loop may be blocked in getNextJob; closing the worker releases it.
    await this.worker.close(true).catch(() => {});
    await this.loop?.catch(() => {});
  }

  /** Reports an error to the monitor; returns the dependency when it is an outage. */
  private outage(e: unknown, component: string) {
    return this.deps.monitor.report(e, component);
  }

  /**
   * Pulls parcels until close(). Nothing in here may end the loop but close(): an outage of Redis
   * or Postgres is waited out with back-off (docs/operations.md#outages), and any other failure
   * is logged and the loop goes on (an unhandled rejection here once killed every worker process).
   */
  private async fetchLoop(hooks: FetchHooks): Promise<void> {
    let backoff = 250;
    while (!this.stopping) {
      try {
        if (hooks.full()) {
          await hooks.released();
          continue;
        }
        // Parcels fetched now could not be checked against Postgres: leave them in the queue.
        if (!this.deps.monitor.isUp("postgres")) {
          await this.deps.monitor.waitUp("postgres", 5_000);
          continue;
        }
        const token = `${this.worker.id}:${randomUUID()}`;
        let job: Job | undefined;
        const asked = Date.now();
        try {
          job = (await this.worker.getNextJob(token, { block: true })) ?? undefined;
        } catch (e) {
          if (this.stopping) break;
          if (!this.outage(e, "aggregator fetch")) this.deps.log.warn({ err: safeErrorMessage(e) }, "getNextJob failed; retrying");
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 5_000);
          continue;
        }
        backoff = 250;
        if (!job) {
          // getNextJob returns at once while the queue is rate-limited: do not spin.
          if (Date.now() - asked < 10) await sleep(Math.min(1_000, Math.max(50, hooks.pausedForMs())));
          continue;
        }
        if (this.stopping) {
          await job.moveToWait(token).catch(() => {});
          break;
        }
        await this.accept(job, token, hooks);
      } catch (e) {
        if (this.stopping) break;
        if (!this.outage(e, "aggregator")) this.deps.log.error({ err: safeErrorMessage(e) }, "aggregator fetch loop error; continuing");
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  }

  private async accept(job: Job, token: string, hooks: FetchHooks): Promise<void> {
    const parsed = Parcel.safeParse(job.data);
    if (!parsed.success) {
      // A payload that does not parse will never parse: fail it without retry.
      this.deps.log.error({ jobId: job.id, issues: parsed.error.issues.slice(0, 3) }, "poison parcel payload");
      await job.moveToFailed(new UnrecoverableError(`invalid parcel payload: ${parsed.error.message}`), token).catch(() => {});
      return;
    }
    const parcel = parsed.data;
    const again = this.map.get(job.id!);
    if (again) {
      // The same parcel delivered to us a second time: our lock lapsed (a stalled check ran while
      // the event loop was busy, or Redis lost the lock) and BullMQ handed it back to this process.
      // Its items are already in our bins or calls: adopt the new lock and settle it ONCE with it,
      // instead of holding it twice (two settles, the second failing with "Missing lock").
      again.job = job;
      again.token = token;
      again.lockLost = false;
      return;
    }
    // On a retry or after a crash some items already have results: send only the others.
    let done: Set<number>;
    try {
      done = await itemsWithResults(this.deps.db, parcel.items.map((i) => i.itemId));
    } catch (e) {
      if (!this.outage(e, "aggregator")) throw e;
      // Postgres is away: hand the parcel back (not counted as an attempt) and wait.
      await job.moveToDelayed(Date.now() + OUTAGE_DELAY_MS, token).catch(() => {});
      return;
    }
    const todo = parcel.items.filter((i) => !done.has(i.itemId));
    const held: Held = { job, token, parcel, outstanding: todo.length };
    if (todo.length === 0) {
      await this.settle(held);
      return;
    }
    this.map.set(job.id!, held);
    hooks.onItems(held, todo);
  }

  /**
   * Items of held parcels are settled: final (persisted) or, for the ones in `transient`, hit by
   * a transient failure. A parcel whose items are all settled is settled.
   */
  async release(items: ReadonlyArray<{ held: Held; itemId: number }>, transient: { itemIds: number[]; error: ProviderError } | undefined): Promise<void> {
    const transientIds = new Set(transient?.itemIds ?? []);
    const touched = new Set<Held>();
    for (const it of items) {
      it.held.outstanding--;
      if (transientIds.has(it.itemId)) it.held.transientError = transient!.error;
      touched.add(it.held);
    }
    for (const h of touched) if (h.outstanding === 0) await this.settle(h);
  }

  /** All items of a parcel are settled: complete it, or hand it back to BullMQ for a retry. */
  private async settle(h: Held): Promise<void> {
    this.map.delete(h.job.id!);
    const { job, token } = h;
    if (h.lockLost) {
      // Another worker owns it now (or Redis lost it): its items are persisted or will be re-run
      // there; settling with our stale token could only fail.
      this.deps.log.debug({ jobId: job.id }, "parcel lock lost; not settling it here");
      return;
    }
    try {
      if (h.infraError) {
        await job.moveToDelayed(Date.now() + OUTAGE_DELAY_MS, token);
        return;
      }
      if (!h.transientError) {
        await this.finish(h, false);
        return;
      }
      if ((await retryOrEndWithErrors({ job, token, parcel: h.parcel, error: h.transientError }, this.deps)) === "ended") await this.finish(h, true);
    } catch (e) {
      const dep = this.deps.monitor.report(e, "aggregator settle");
      if (dep === "postgres") {
        // The out-of-attempts path could not read or write results: offer the parcel again later.
        await job.moveToDelayed(Date.now() + OUTAGE_DELAY_MS, token).catch(() => {});
        return;
      }
      // Redis away: the lock lapses and BullMQ's stalled check hands the parcel back. Lost lock
      // (another worker took the parcel after a stall): it is re-run there. Persisted results
      // make both safe.
      if (!dep) this.deps.log.warn({ jobId: job.id, err: safeErrorMessage(e) }, "could not settle parcel");
    }
  }

  /**
   * Ends a parcel whose items all have a result. Its return value counts ok and failed items; a
   * parcel with failed items ends FAILED (without retry: each failed item already has its final
   * error result) so Bull Board does not show it as a clean success (docs/console.md).
   */
  private async finish(h: Held, exhausted: boolean): Promise<void> {
    const counts = await resultCounts(this.deps.db, h.parcel.items.map((i) => i.itemId));
    const value = { items: h.parcel.items.length, ok: counts.ok, failed: counts.failed, ...(exhausted ? { exhausted: true } : {}) };
    if (counts.failed === 0) {
      await h.job.moveToCompleted(value, h.token, false);
      return;
    }
    const codes = Object.entries(counts.codes).map(([c, n]) => `${c} x${n}`).join(", ");
    await h.job.updateData({ ...h.parcel, outcome: value } as Parcel);
    const err = new UnrecoverableError(`${counts.failed} of ${value.items} items failed (${codes}); their errors are their final results: retry them from /admin/jobs/${h.parcel.jobId}`);
    err.stack = `${err.name}: ${err.message}`; // a verdict on items, not a crash: no stack trace in Bull Board
    await h.job.moveToFailed(err, h.token, false);
  }

  /** Extends the lock of every held parcel; notes the ones that are no longer ours. */
  private async extendLocks(): Promise<void> {
    // During a Redis outage a pass waits for the reconnect: never stack passes behind it.
    if (this.extending) return;
    this.extending = true;
    try {
      await this.extendLocksOnce();
    } finally {
      this.extending = false;
    }
  }

  private async extendLocksOnce(): Promise<void> {
    let lost = 0;
    for (const h of this.map.values()) {
      if (h.lockLost) continue;
      try {
        // 0: the lock is no longer ours (it lapsed and BullMQ's stalled check took the parcel back).
        if ((await h.job.extendLock(h.token, this.deps.lockMs)) === 0) {
          h.lockLost = true;
          lost++;
        }
      } catch (e) {
        if (this.deps.monitor.report(e, "aggregator locks")) return; // Redis away: logged once by the monitor
        this.deps.log.warn({ jobId: h.job.id, err: safeErrorMessage(e) }, "could not extend parcel lock");
      }
    }
    // One line per pass, not one per parcel: after Redis lost its data every lock is gone at once.
    if (lost > 0) this.deps.log.warn({ parcels: lost }, "lost the lock of held parcels; their items are finished by whoever holds them now, or by the sweeper");
  }
}
