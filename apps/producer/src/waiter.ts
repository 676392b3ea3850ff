/**
 * Long-poll support: waits until a job is finished. Workers PUBLISH on a Redis channel when a
 * write finishes a job; this subscribes once per process. A DB check before waiting and a slow
 * poll while waiting cover events missed during a reconnect.
 */
import type { Redis } from "ioredis";
import { jobEventsChannel, coerceError, type Logger } from "@sieve/shared";

export class JobWaiter {
  private readonly waiting = new Map<string, Set<() => void>>();
  private ready: Promise<unknown>;

  constructor(
    private readonly sub: Redis,
    prefix: string,
    private readonly log: Logger,
  ) {
    const channel = jobEventsChannel(prefix);
    this.ready = sub.subscribe(channel).catch((e) => log.warn({ err: coerceError(e).message }, "job event subscription failed"));
    sub.on("message", (ch: string, msg: string) => {
      if (ch !== channel) return;
      try {
        const { id } = JSON.parse(msg) as { id: string };
        const set = this.waiting.get(id);
        if (set) for (const fn of set) fn();
      } catch {
        /* ignore malformed events */
      }
    });
  }

  /**
   * Resolves true when `isDone()` holds, false after `timeoutMs`. `isDone` is checked first, on
   * every event for the job, and every `pollMs`.
   */
  async wait(jobId: string, timeoutMs: number, isDone: () => Promise<boolean>, pollMs = 2_000): Promise<boolean> {
    // While Redis is away the subscription may not be in place: the poll below still sees the job finish.
    let readyTimer: NodeJS.Timeout | undefined;
    await Promise.race([this.ready, new Promise((r) => (readyTimer = setTimeout(r, Math.min(timeoutMs, pollMs))))]);
    clearTimeout(readyTimer);
    let wake: () => void = () => {};
    const set = this.waiting.get(jobId) ?? new Set();
    this.waiting.set(jobId, set);
    const signal = () => wake();
    set.add(signal);
    const deadline = Date.now() + timeoutMs;
    try {
      while (true) {
        if (await isDone()) return true;
        const left = deadline - Date.now();
        if (left <= 0) return false;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, pollMs));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    } finally {
      set.delete(signal);
      if (set.size === 0) this.waiting.delete(jobId);
    }
  }

  async close(): Promise<void> {
    for (const set of this.waiting.values()) for (const fn of set) fn();
    await this.sub.quit().catch(() => {});
  }
}
