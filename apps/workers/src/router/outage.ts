/**
 * Provider outages cost time, not items (docs/gpu-lane.md, "Outages"):
 *
 * - A circuit breaker per provider (Nygard, "Release It!", and
 *   https://martinfowler.com/bliki/CircuitBreaker.html): after `failureThreshold` transient
 *   failures in a row it opens, and calls wait instead of hammering the provider; after a cooldown
 *   (doubling up to `maxCooldownMs`) one trial call goes through (half-open); a success closes it.
 * - Retrying is bounded by time, not by a count: until the item's deadline, or for items without
 *   one `windowMs` (at least 10 minutes) after the first failure.
 * - While the provider's breaker is open, items move to the next route (another provider) that
 *   can still answer before their deadline.
 *
 * Pure and clocked from outside; aggregator wiring is in outageHook.ts.
 */

export interface BreakerOptions {
  /** Transient failures in a row that open the breaker. @defaultValue 5 */
  failureThreshold?: number;
  /** First open period, ms. @defaultValue 5000 */
  cooldownMs?: number;
  /** Longest open period, ms. @defaultValue 60000 */
  maxCooldownMs?: number;
}

export type BreakerState = "closed" | "open" | "half-open";

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private cooldown: number;
  private trialInFlight = false;
  private opened = false;
  private readonly o: Required<BreakerOptions>;
  /** Called when this breaker opens (or opens again after a failed trial), with when it half-opens (sharedBreakers.ts). */
  onOpen?: (untilMs: number) => void;
  /** Called when a success closes an open breaker. */
  onClose?: () => void;

  constructor(opts: BreakerOptions = {}) {
    this.o = { failureThreshold: 5, cooldownMs: 5_000, maxCooldownMs: 60_000, ...opts };
    this.cooldown = this.o.cooldownMs;
  }

  state(now: number): BreakerState {
    if (!this.opened) return "closed";
    return now - this.openedAt >= this.cooldown ? "half-open" : "open";
  }

  /** Ms to wait before a call may be sent (0: send now). In half-open state one trial call is let through. */
  waitMs(now: number): number {
    const s = this.state(now);
    if (s === "closed") return 0;
    if (s === "half-open" && !this.trialInFlight) {
      this.trialInFlight = true;
      return 0;
    }
    return s === "open" ? this.cooldown - (now - this.openedAt) : 250;
  }

  /**
   * Another worker found the provider down: open until `untilMs` (then half-open: one trial),
   * unless this breaker is already open for longer. Does not call onOpen (nothing new to share).
   */
  tripUntil(now: number, untilMs: number): void {
    if (untilMs <= now) return;
    if (this.opened && this.openedAt + this.cooldown >= untilMs) return;
    this.opened = true;
    this.trialInFlight = false;
    this.openedAt = now;
    this.cooldown = untilMs - now;
  }

  onSuccess(): void {
    const wasOpen = this.opened;
    this.failures = 0;
    this.opened = false;
    this.trialInFlight = false;
    this.cooldown = this.o.cooldownMs;
    if (wasOpen) this.onClose?.();
  }

  onFailure(now: number): void {
    this.failures++;
    if (this.opened) {
      // The trial call failed: open again, for longer.
      if (this.trialInFlight) {
        this.trialInFlight = false;
        this.cooldown = Math.min(this.o.maxCooldownMs, Math.max(this.cooldown, this.o.cooldownMs) * 2);
        this.openedAt = now;
        this.onOpen?.(now + this.cooldown);
      }
      return;
    }
    if (this.failures >= this.o.failureThreshold) {
      this.opened = true;
      this.openedAt = now;
      this.onOpen?.(now + this.cooldown);
    }
  }
}

export type OutageDecision = { kind: "retry"; delayMs: number } | { kind: "reroute" } | { kind: "fail"; reason: string };

export interface OutageInput {
  now: number;
  /** When this parcel first failed transiently. */
  firstFailedAt: number;
  /** Transient failures of this parcel so far (this one included). */
  failures: number;
  /** The caller's deadline, ms since epoch. */
  deadlineAt?: number | undefined;
  /** Retry window for items without a deadline, ms (at least 10 minutes). */
  windowMs: number;
  /** First retry delay, ms; doubles per failure up to 30 s. */
  baseDelayMs: number;
  /** The provider's breaker is open: it is down, not just unlucky. */
  providerDown: boolean;
  /** Typical answer time of the next route, when there is one whose provider is up. */
  alternativeEtaMs?: number | undefined;
}

/** Longest wait between two tries of one parcel, ms. @defaultValue 30000 */
export const MAX_RETRY_DELAY_MS = 30_000;

export function outageDecision(i: OutageInput): OutageDecision {
  const until = i.deadlineAt ?? i.firstFailedAt + i.windowMs;
  if (i.providerDown && i.alternativeEtaMs !== undefined && i.now + i.alternativeEtaMs <= until) return { kind: "reroute" };
  const left = until - i.now;
  if (left <= 0) {
    return { kind: "fail", reason: i.deadlineAt !== undefined ? "the item's deadline passed while its provider kept failing" : `its provider kept failing for ${Math.round(i.windowMs / 60_000)} min` };
  }
  const backoff = Math.min(MAX_RETRY_DELAY_MS, i.baseDelayMs * 2 ** Math.max(0, i.failures - 1));
  return { kind: "retry", delayMs: Math.max(1, Math.min(backoff, left)) };
}
