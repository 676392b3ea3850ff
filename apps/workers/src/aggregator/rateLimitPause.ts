/**
 * A provider's 429 pauses its realtime queue: BullMQ hands out no parcel of it until Retry-After
 * has passed (`queue.rateLimit`), and this process starts no call before then either
 * (docs/providers.md#bullmq). The parcels that met the 429 are delayed by the same time
 * (parcelRetry.ts).
 */
import { Queue } from "bullmq";
import type { DependencyMonitor } from "@sieve/shared";
import type { Redis } from "ioredis";

export class RateLimitPause {
  private until = 0;
  private readonly queue: Queue;

  constructor(o: { queueName: string; connection: Redis; prefix: string; monitor: DependencyMonitor }) {
    this.queue = new Queue(o.queueName, { connection: o.connection, prefix: o.prefix });
    // An emitter without an 'error' listener prints raw stacks (BullMQ falls back to console.error).
    o.monitor.watch(this.queue, "aggregator queue");
  }

  /** Ms left of the pause; 0 or less: not paused. */
  leftMs(): number {
    return this.until - Date.now();
  }

  /** Pauses the queue for `ms` (a pause already longer stays). */
  async pause(ms: number): Promise<void> {
    this.until = Math.max(this.until, Date.now() + ms);
    await this.queue.rateLimit(ms).catch(() => {});
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => {});
  }
}
