/**
 * Job schedulers live in Redis; Postgres is the source of truth and Redis may lose everything
 * (no persistence, a failover to a lagging replica). A scheduler registered only at start-up would
 * then be gone until someone restarts a process. The keeper re-asserts every schedule it owns:
 * at start, after every reconnect of its connection, and every SIEVE_SCHEDULE_CHECK_MS
 * (docs/operations.md#outages). Re-creating a scheduler that another process re-created first is
 * harmless: `upsertJobScheduler` is idempotent per scheduler id.
 */
import type { Queue, RepeatOptions } from "bullmq";
import type { Redis } from "ioredis";
import { coerceError } from "./errors.js";
import type { Logger } from "./logger.js";
import type { DependencyMonitor } from "./outages.js";

interface Schedule {
  queue: Queue;
  id: string;
  repeat: Omit<RepeatOptions, "key">;
  template: { name: string; data: unknown; opts?: Record<string, unknown> };
}

export class ScheduleKeeper {
  private readonly schedules: Schedule[] = [];
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private closed = false;
  private readonly onReady = () => void this.ensure();

  constructor(
    private readonly opts: {
      /** The connection whose reconnects trigger a check. */
      connection: Redis;
      log: Logger;
      everyMs: number;
      monitor?: DependencyMonitor;
    },
  ) {}

  /** Registers a schedule and creates it now. */
  async add(queue: Queue, id: string, repeat: Omit<RepeatOptions, "key">, template: Schedule["template"]): Promise<void> {
    const s: Schedule = { queue, id, repeat, template };
    this.schedules.push(s);
    await queue.upsertJobScheduler(id, repeat, template as never);
  }

  /** Starts the periodic and on-reconnect checks. */
  start(): void {
    this.opts.connection.on("ready", this.onReady);
    this.timer = setInterval(() => void this.ensure(), this.opts.everyMs);
  }

  /** Re-creates every registered schedule that Redis no longer has. */
  ensure(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.running ??= this.check().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async check(): Promise<void> {
    for (const s of this.schedules) {
      if (this.closed) return;
      try {
        const existing = await s.queue.getJobScheduler(s.id);
        if (existing) continue;
        await s.queue.upsertJobScheduler(s.id, s.repeat, s.template as never);
        this.opts.log.warn({ scheduler: s.id, queue: s.queue.name }, "job scheduler was missing in Redis (Redis lost its data?): re-created");
      } catch (e) {
        // Redis unreachable: the monitor logs the outage once; the next check or reconnect retries.
        if (!this.opts.monitor?.report(e, "schedules")) this.opts.log.warn({ scheduler: s.id, err: coerceError(e).message }, "could not check job scheduler");
        return;
      }
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.opts.connection.off("ready", this.onReady);
  }
}

/** Redis key of a recovery component's heartbeat (the sweeper writes one per run). */
export function heartbeatKey(prefix: string, name: "sweeper"): string {
  return `${prefix}:heartbeat:${name}`;
}

/** Records that `name` ran now (milliseconds since the epoch), kept for a day. */
export async function writeHeartbeat(redis: Redis, prefix: string, name: "sweeper"): Promise<void> {
  await redis.set(heartbeatKey(prefix, name), String(Date.now()), "EX", 86_400);
}

/** When `name` last ran (ms since the epoch), or undefined when Redis has no record. */
export async function readHeartbeat(redis: Redis, prefix: string, name: "sweeper"): Promise<number | undefined> {
  const v = await redis.get(heartbeatKey(prefix, name));
  return v ? Number(v) : undefined;
}
