/**
 * When an aggregator's next call may start: at most `concurrency` calls in flight (a number, or a
 * function when the limit adapts, as the GPU lane's limiters do: gpu/pool.ts), none while a 429
 * pause lasts, and none while the provider's circuit breaker is open (router/outageHook.ts), whose
 * waiting items are shed to another route when there is one.
 *
 * Its wake-ups double as the aggregator's "items were released" signal: the fetch loop waits on
 * `released()` while it holds as many items as it may.
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface CallSlotsOptions {
  concurrency: number | (() => number);
  /** Ms left of a 429 pause (rateLimitPause.ts); 0 or less: none. */
  pausedForMs: () => number;
  /** Ms to wait before the next call may be sent (a provider's open circuit breaker). */
  gate?: () => number;
  /** While gated: true when the waiting items should be handed over (another route can take them). */
  shedWhenGated?: () => boolean;
}

export class CallSlots {
  private running = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly o: CallSlotsOptions) {}

  /** Calls in flight. */
  get inFlight(): number {
    return this.running;
  }

  /** Calls that may be in flight at once now. */
  limit(): number {
    const c = this.o.concurrency;
    return typeof c === "number" ? c : Math.max(1, c());
  }

  /** Waits for a slot and takes it; false: the provider is down and its items can move elsewhere (shed them without a call). */
  async acquire(): Promise<boolean> {
    for (;;) {
      // An open circuit breaker: wait instead of hammering a provider that is down, or hand the
      // items to the outage policy when another route can take them.
      const gated = this.o.gate?.() ?? 0;
      if (gated > 0) {
        if (this.o.shedWhenGated?.()) return false;
        await sleep(Math.min(gated, 1_000));
        continue;
      }
      if (!(this.running >= this.limit() || this.o.pausedForMs() > 0)) break;
      const wait = this.o.pausedForMs();
      if (wait > 0) await sleep(Math.min(wait, 1_000));
      // An adaptive limit can grow without any call ending: look again soon.
      else if (typeof this.o.concurrency === "function") await this.waitOrTimeout(50);
      else await this.released();
    }
    this.running++;
    return true;
  }

  /** A call ended: its slot is free (callers wake the waiters once their bookkeeping is done). */
  release(): void {
    this.running--;
  }

  /** Resolves at the next wake(). */
  released(): Promise<void> {
    return new Promise<void>((r) => this.waiters.push(r));
  }

  /** Wakes everyone waiting for a slot or for released items. */
  wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async waitOrTimeout(ms: number): Promise<void> {
    let waiter: (() => void) | undefined;
    await Promise.race([new Promise<void>((r) => this.waiters.push((waiter = r))), sleep(ms)]);
    const i = this.waiters.indexOf(waiter!);
    if (i >= 0) this.waiters.splice(i, 1);
  }
}
