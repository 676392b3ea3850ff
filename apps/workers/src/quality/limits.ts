/**
 * Where the maxItems controller's decisions live: `batch_limits` in Postgres, one row per batch
 * key, updated under a row lock so several worker processes feeding re-checks never lose an
 * update. Aggregators read the limits through `BatchLimits`, refreshed every few seconds (a
 * stale limit for a few seconds only means a few calls at the previous size).
 */
import { eq, sql } from "drizzle-orm";
import { coerceError, qualityMetrics, type Db, type Logger } from "@sieve/shared";
import { batchLimits } from "@sieve/shared/db/schema/index";
import { initialState, observe, type ControllerConfig, type ControllerState } from "./controller.js";

export interface LimitUpdate {
  batchKey: string;
  task: string;
  model: string;
  agreed: number;
  total: number;
  callItems: number;
}

/** Feeds one batch of re-check outcomes to the key's controller; returns the limit in force after. */
export async function recordOutcomes(db: Db, cfg: ControllerConfig, u: LimitUpdate, now = Date.now()): Promise<number> {
  return db.transaction(async (tx) => {
    // Create the row first (no-op when it exists) so the row lock below always has a row to lock.
    await tx
      .insert(batchLimits)
      .values({ batchKey: u.batchKey, task: u.task, model: u.model, maxItems: cfg.ceiling, state: initialState(cfg) })
      .onConflictDoNothing();
    const [row] = await tx.select().from(batchLimits).where(eq(batchLimits.batchKey, u.batchKey)).for("update");
    const before = (row?.state as ControllerState | undefined) ?? initialState(cfg);
    const { state, event } = observe(cfg, before, { agreed: u.agreed, total: u.total, callItems: u.callItems }, now);
    await tx.update(batchLimits).set({ maxItems: state.maxItems, state, updatedAt: sql`now()` }).where(eq(batchLimits.batchKey, u.batchKey));
    if (event) qualityMetrics.limitChanges.inc({ task: u.task, model: u.model, direction: event });
    return state.maxItems;
  });
}

/** The limits in force, as aggregators see them: a snapshot of `batch_limits` refreshed every `refreshMs`. */
export class BatchLimits {
  private limits = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly refreshMs = 5_000,
    /** Reports an outage (true: it was one, already logged once by the dependency monitor). */
    private readonly report: (e: unknown) => boolean = () => false,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  async refresh(): Promise<void> {
    try {
      const rows = await this.db.select({ batchKey: batchLimits.batchKey, maxItems: batchLimits.maxItems }).from(batchLimits);
      this.limits = new Map(rows.map((r) => [r.batchKey, r.maxItems]));
    } catch (e) {
      // Keep the last snapshot: the limits only ever lower the configured maxItems. During a
      // Postgres outage the monitor has logged it once; a line every 5 s would say nothing new.
      if (!this.report(e)) this.log.warn({ err: coerceError(e).message }, "could not refresh batch limits");
    }
  }

  /** The controller's maxItems for a batch key, when it has set one. */
  get(batchKey: string): number | undefined {
    return this.limits.get(batchKey);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
