/**
 * Circuit breakers shared by every worker process (docs/gpu-lane.md, "Outages"): when one
 * worker's breaker for a cloud provider opens, it writes `{prefix}:breaker:{provider}` (the time it
 * half-opens, expiring then), and every worker reads those keys every BREAKER_SYNC_MS and opens
 * its own breaker until then. So a fleet stops calling a provider one worker found down, instead of
 * each worker spending its own five failed calls (times its concurrency) to learn it.
 *
 * Each worker still counts its own failures, sends its own trial call once the shared period
 * ends, and closes on its own success (which deletes the key). The key is only a hint: if Redis
 * loses it or cannot be read, breakers are simply per process again until the next opening.
 *
 * The GPU lane ("vllm") is not shared: its engines are per worker configuration (often a GPU on
 * the worker's own host), and one worker's dead engine says nothing about another's; gpu/pool.ts
 * drains and fails over per engine.
 */
import type { Redis } from "ioredis";
import type { Logger, ProviderName } from "@sieve/shared";
import type { CircuitBreaker } from "./outage.js";

/** How often a worker reads the shared breaker keys, ms. @defaultValue 500 */
export const BREAKER_SYNC_MS = 500;

export class SharedBreakers {
  private readonly breakers = new Map<ProviderName, CircuitBreaker>();
  private timer: NodeJS.Timeout | undefined;
  private warned = false;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  key(p: ProviderName): string {
    return `${this.prefix}:breaker:${p}`;
  }

  /** Shares `b`'s openings for provider `p` (not for the GPU lane: see above). */
  attach(p: ProviderName, b: CircuitBreaker): void {
    if (p === "vllm") return;
    this.breakers.set(p, b);
    b.onOpen = (untilMs) => void this.publish(p, untilMs);
    b.onClose = () => void this.redis.del(this.key(p)).catch((e) => this.trouble(e));
  }

  async publish(p: ProviderName, untilMs: number): Promise<void> {
    const ms = Math.ceil(untilMs - this.now());
    if (ms <= 0) return;
    await this.redis.set(this.key(p), String(untilMs), "PX", ms).catch((e) => this.trouble(e));
  }

  /** Opens local breakers that another worker found open. False when Redis could not be read. */
  async sync(): Promise<boolean> {
    const providers = [...this.breakers.keys()];
    if (providers.length === 0) return true;
    let values: Array<string | null>;
    try {
      values = await this.redis.mget(...providers.map((p) => this.key(p)));
    } catch (e) {
      this.trouble(e);
      return false;
    }
    const now = this.now();
    providers.forEach((p, i) => {
      const until = Number(values[i]);
      if (values[i] && Number.isFinite(until) && until > now) this.breakers.get(p)!.tripUntil(now, until);
    });
    return true;
  }

  start(everyMs = BREAKER_SYNC_MS): void {
    this.timer = setInterval(() => void this.sync(), everyMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private trouble(e: unknown): void {
    // During a Redis outage breakers work per process; one line, not one per tick.
    if (this.warned) return;
    this.warned = true;
    this.log.warn({ err: e instanceof Error ? e.message : String(e) }, "shared circuit breakers unavailable (Redis): breakers are per process until it answers");
  }
}
