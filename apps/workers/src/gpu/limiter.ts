/**
 * Adaptive concurrency for one vLLM engine: how many calls Sieve keeps in flight there.
 *
 * The method is TCP's congestion control applied to an inference server, as Netflix's
 * concurrency-limits library does for services (https://github.com/Netflix/concurrency-limits,
 * `AIMDLimit`, `Gradient2Limit`):
 *
 * - **Slow start, then additive increase** (RFC 5681, https://www.rfc-editor.org/rfc/rfc5681):
 *   the limit starts low (2) and grows by one per successful call until the first congestion
 *   signal (doubling per round trip), then by one per round trip (`1/limit` per call).
 * - **Multiplicative decrease** (Chiu & Jain 1989, the AIMD result TCP relies on): on a congestion
 *   signal the limit is multiplied by `backoff` (0.9, concurrency-limits' default), or cut by
 *   the queue's excess when that is larger (at most halved, as TCP leaving slow start), at most
 *   once per round trip so one queue spike is not punished several times.
 * - **Only grow a limit that is used** (RFC 7661, https://www.rfc-editor.org/rfc/rfc7661): calls
 *   that finish while fewer than `limit - 1` were in flight do not grow it.
 *
 * Congestion signals come from the engine itself (vLLM's `/metrics`,
 * https://docs.vllm.ai/en/latest/usage/metrics.html), polled by the monitor:
 * `vllm:num_requests_waiting` above `waitingHigh` (requests queue inside vLLM: more concurrency
 * only adds latency) is a decrease; `vllm:kv_cache_usage_perc` above `kvHigh` with requests
 * already waiting stops growth (the next call would queue). A failed call (timeout, 5xx, reset)
 * is a decrease, as packet loss is in TCP.
 *
 * When the gauges are stale (older than `staleMs`: the engine's /metrics does not answer), the
 * limit does not grow, and the latency Sieve observes takes over as in `Gradient2Limit`: the
 * limit is scaled by min(1, longLatency / shortLatency) (never below half), so a slowing engine
 * sheds load without gauges.
 *
 * Pure and clocked from outside (`now` arguments): unit-tested without waiting.
 */

export interface LimiterOptions {
  /** @defaultValue 2 */
  initial?: number;
  /** @defaultValue 1 */
  min?: number;
  /** @defaultValue 256 */
  max?: number;
  /** Multiplicative decrease factor. @defaultValue 0.9 */
  backoff?: number;
  /** `vllm:num_requests_waiting` above this is congestion. @defaultValue 5 */
  waitingHigh?: number;
  /** `vllm:kv_cache_usage_perc` above this (with requests waiting) stops growth. @defaultValue 0.8 */
  kvHigh?: number;
  /** Gauges older than this count as stale, in ms. @defaultValue 1000 */
  staleMs?: number;
}

export interface EngineGauges {
  running: number;
  waiting: number;
  /** 0..1, undefined when the server does not report it. */
  kvUsage: number | undefined;
}

export type LimiterSignal = "grow" | "hold" | "congested" | "stale";

export class AdaptiveLimiter {
  private value: number;
  private slowStart = true;
  private lastDecreaseAt = -Infinity;
  private gauges: (EngineGauges & { at: number }) | undefined;
  /** EWMA of call latency: short (recent) and long (baseline), in ms. */
  private shortLatency = 0;
  private longLatency = 0;
  private readonly o: Required<LimiterOptions>;
  /** Last decision, for metrics and logs. */
  signal: LimiterSignal = "grow";

  constructor(opts: LimiterOptions = {}) {
    this.o = { initial: 2, min: 1, max: 256, backoff: 0.9, waitingHigh: 5, kvHigh: 0.8, staleMs: 1_000, ...opts };
    this.value = this.o.initial;
  }

  /** Calls allowed in flight now. */
  get limit(): number {
    return Math.max(this.o.min, Math.floor(this.value));
  }

  /** The last gauges and their age. */
  lastGauges(): (EngineGauges & { at: number }) | undefined {
    return this.gauges;
  }

  isStale(now: number): boolean {
    return !this.gauges || now - this.gauges.at > this.o.staleMs;
  }

  /** A fresh /metrics reading. */
  onGauges(g: EngineGauges, now: number): void {
    this.gauges = { ...g, at: now };
    if (g.waiting > this.o.waitingHigh) {
      this.decrease(now, g.waiting - this.o.waitingHigh);
      this.signal = "congested";
    } else if (g.kvUsage !== undefined && g.kvUsage > this.o.kvHigh && g.waiting > 0) {
      this.signal = "hold";
    } else {
      this.signal = "grow";
    }
  }

  /** A call ended well after `latencyMs`, with `inFlight` calls (itself included) in flight when it started. */
  onSuccess(latencyMs: number, inFlight: number, now: number): void {
    this.observeLatency(latencyMs);
    if (this.isStale(now)) {
      this.signal = "stale";
      // Gradient2Limit: shrink in proportion to how much slower calls got than the baseline.
      const gradient = Math.max(0.5, Math.min(1, this.longLatency / Math.max(1, this.shortLatency)));
      if (gradient < 0.9 && now - this.lastDecreaseAt > this.shortLatency) {
        this.value = Math.max(this.o.min, this.value * gradient);
        this.lastDecreaseAt = now;
      }
      return;
    }
    if (this.signal !== "grow") return;
    if (inFlight < this.limit - 1) return; // app-limited: the limit was not the constraint
    this.value = Math.min(this.o.max, this.value + (this.slowStart ? 1 : 1 / this.value));
  }

  /** A call failed in a way that says the engine is overloaded or sick (timeout, 5xx, reset). */
  onFailure(now: number): void {
    this.decrease(now);
    this.signal = "congested";
  }

  /**
   * `excess`: requests queued beyond the threshold. A large queue (typically the overshoot of
   * slow start) is shed at once, down to half the limit as TCP does on leaving slow start;
   * otherwise the usual `backoff` factor applies.
   */
  private decrease(now: number, excess = 0): void {
    this.slowStart = false;
    // Once per round trip: the calls already in flight were sent before the signal.
    const rtt = Math.max(200, this.shortLatency);
    if (now - this.lastDecreaseAt < rtt) return;
    this.lastDecreaseAt = now;
    const target = Math.max(this.value * 0.5, Math.min(this.value * this.o.backoff, this.value - excess));
    this.value = Math.max(this.o.min, target);
  }

  private observeLatency(ms: number): void {
    if (this.longLatency === 0) {
      this.shortLatency = this.longLatency = ms;
      return;
    }
    this.shortLatency = this.shortLatency * 0.8 + ms * 0.2;
    this.longLatency = this.longLatency * 0.98 + ms * 0.02;
  }
}
