/**
 * Bins and their flush policy: the items of parcels that share a batch key wait together in one
 * bin until it holds a call's worth (`maxItems` items, or `maxTokens` estimated tokens once it
 * holds two items or more) or its oldest item has waited `maxWaitMs`. Items leave in arrival order,
 * one call's worth at a time; a call may take items from several parcels, and a parcel's items may
 * span calls. The limits are per task (`SIEVE_CLASSIFY_*` / `SIEVE_TRANSLATE_*` in the README),
 * and the re-check controller may lower a batch key's `maxItems` (docs/quality.md).
 *
 * No I/O here: time and timers come from an injected clock, and each call's items are handed to
 * the caller's `launch`, synchronously and in flush order.
 */
import type { BatchPolicy, TaskName } from "@sieve/shared";

export interface Clock {
  now(): number;
  /** Runs `fn` once after `ms`; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** A task's policy with a batch key's item limit (from the re-check controller) applied: never above the task's, never below 1. */
export function withItemLimit(policy: BatchPolicy, limit: number | undefined): BatchPolicy {
  return limit === undefined ? policy : { ...policy, maxItems: Math.max(1, Math.min(policy.maxItems, limit)) };
}

/** The policy of a bin: its task's, with its batch key's item limit when there is one. */
export function perTaskPolicy<R extends { params: { task: TaskName } }>(
  policies: Record<TaskName, BatchPolicy>,
  maxItemsFor?: (batchKey: string) => number | undefined,
): (batchKey: string, first: R) => BatchPolicy {
  return (batchKey, first) => withItemLimit(policies[first.params.task], maxItemsFor?.(batchKey));
}

/** Full: a call's worth of items, or of tokens with at least two items (one item over the token budget waits for its time, then goes alone). */
export function isFull(items: number, tokens: number, policy: BatchPolicy): boolean {
  return items >= policy.maxItems || (items > 1 && tokens >= policy.maxTokens);
}

/**
 * How many of a bin's items (oldest first) go into the next call: up to
 * `maxItems`, and only while their tokens stay within `maxTokens`; the first item always goes,
 * even when it alone is over the budget.
 */
export function nextCallSize(items: readonly { tokens: number }[], policy: BatchPolicy): number {
  let n = 0;
  let sum = 0;
  while (n < items.length && n < policy.maxItems) {
    const next = items[n]!.tokens;
    if (n > 0 && sum + next > policy.maxTokens) break;
    sum += next;
    n++;
  }
  return n;
}

/** Ms until a bin whose oldest item arrived at `oldestAt` is due (0: now). */
export function dueInMs(oldestAt: number, now: number, policy: BatchPolicy): number {
  return Math.max(0, policy.maxWaitMs - (now - oldestAt));
}

export interface BinsOptions<T, R> {
  clock: Clock;
  /** Estimated tokens of an item. */
  tokensOf: (item: T) => number;
  /** The policy of a bin, read at every decision: a batch key's item limit may change while its bin waits. */
  policyOf: (batchKey: string, first: R) => BatchPolicy;
  /** One call's worth of items, with the bin's first parcel (same params, model and provider for the whole bin). */
  launch: (first: R, items: T[]) => void;
}

interface Waiting<T> {
  item: T;
  tokens: number;
  arrivedAt: number;
}

interface Bin<T, R> {
  key: string;
  first: R;
  items: Waiting<T>[];
  tokens: number;
  cancelTimer?: () => void;
}

export class Bins<T, R> {
  private readonly bins = new Map<string, Bin<T, R>>();
  private draining = false;

  constructor(private readonly o: BinsOptions<T, R>) {}

  /** Bins with waiting items. */
  get size(): number {
    return this.bins.size;
  }

  /** Items of one parcel arrive (`first` stands for the bin when it is new); full bins are flushed at once. */
  add(batchKey: string, first: R, items: readonly T[]): void {
    if (items.length === 0) return;
    let bin = this.bins.get(batchKey);
    if (!bin) {
      bin = { key: batchKey, first, items: [], tokens: 0 };
      this.bins.set(batchKey, bin);
    }
    const now = this.o.clock.now();
    for (const item of items) {
      const tokens = this.o.tokensOf(item);
      bin.items.push({ item, tokens, arrivedAt: now });
      bin.tokens += tokens;
    }
    this.maybeFlush(bin);
  }

  /** Shutting down: every waiting item leaves now; from here on a flush no longer re-checks its bin. */
  drain(): void {
    this.draining = true;
    for (const bin of [...this.bins.values()]) while (bin.items.length > 0) this.flush(bin);
  }

  private policyOf(bin: Bin<T, R>): BatchPolicy {
    return this.o.policyOf(bin.key, bin.first);
  }

  /** Flushes while the bin is full; then, if items remain, a timer for when its oldest item is due. */
  private maybeFlush(bin: Bin<T, R>): void {
    const policy = this.policyOf(bin);
    while (isFull(bin.items.length, bin.tokens, policy)) this.flush(bin);
    if (bin.items.length > 0 && !bin.cancelTimer) {
      bin.cancelTimer = this.o.clock.setTimer(() => {
        bin.cancelTimer = undefined;
        if (bin.items.length > 0) this.flush(bin);
        if (bin.items.length > 0) this.maybeFlush(bin);
      }, dueInMs(bin.items[0]!.arrivedAt, this.o.clock.now(), policy));
    }
  }

  /** Takes one call's worth of items from the front of the bin and launches it. */
  private flush(bin: Bin<T, R>): void {
    const n = nextCallSize(bin.items, this.policyOf(bin));
    const take = bin.items.splice(0, n);
    for (const w of take) bin.tokens -= w.tokens;
    bin.cancelTimer?.();
    bin.cancelTimer = undefined;
    if (bin.items.length === 0) this.bins.delete(bin.key);
    this.o.launch(bin.first, take.map((w) => w.item));
    if (bin.items.length > 0 && !this.draining) this.maybeFlush(bin);
  }
}
