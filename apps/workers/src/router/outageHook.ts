/**
 * Wires the outage policy (outage.ts) into the aggregators: one circuit breaker per provider,
 * time-bounded retries (parcel delayed, not failed), and moving a down provider's parcels to the
 * next route. docs/gpu-lane.md, "Outages".
 */
import type { Job, Queue } from "bullmq";
import { sql } from "drizzle-orm";
import { batchKeyFor, coerceError, type Db, type Env, type Logger, type Parcel, type ProviderError, type ProviderName, type Route } from "@sieve/shared";
import { CircuitBreaker, outageDecision } from "./outage.js";
import type { SharedBreakers } from "./sharedBreakers.js";

export interface OutagePolicyOptions {
  env: Env;
  db: Db;
  /** Realtime queue per provider (where moved parcels go). */
  queues: Map<ProviderName, Queue>;
  /** Routes to move to, in order of preference (SIEVE_FALLBACK_ROUTES). */
  fallbackRoutes: Route[];
  log: Logger;
  now?: () => number;
  /** Shares breaker openings between worker processes through Redis (sharedBreakers.ts). */
  shared?: SharedBreakers;
}

export class OutagePolicy {
  readonly breakers = new Map<ProviderName, CircuitBreaker>();
  private readonly now: () => number;
  constructor(private readonly o: OutagePolicyOptions) {
    this.now = o.now ?? Date.now;
  }

  breaker(p: ProviderName): CircuitBreaker {
    let b = this.breakers.get(p);
    if (!b) {
      this.breakers.set(p, (b = new CircuitBreaker()));
      this.o.shared?.attach(p, b);
    }
    return b;
  }

  /** The aggregator options for provider `p`. */
  forProvider(p: ProviderName) {
    const b = this.breaker(p);
    return {
      gate: () => b.waitMs(this.now()),
      shedWhenGated: () => p !== "vllm" && b.state(this.now()) === "open" && this.alternative({ provider: p } as Parcel) !== undefined,
      onCallResult: (ok: boolean) => (ok ? b.onSuccess() : b.onFailure(this.now())),
      onTransient: (x: { job: Job; token: string; parcel: Parcel; error: ProviderError }) => this.onTransient(x),
    };
  }

  private alternative(parcel: Parcel): Route | undefined {
    // The GPU lane fails over inside its pool (gpu/pool.ts); cloud parcels move between providers.
    if (parcel.provider === "vllm") return undefined;
    return this.o.fallbackRoutes.find((r) => r.provider !== parcel.provider && this.o.queues.has(r.provider) && this.breaker(r.provider).state(this.now()) === "closed");
  }

  async onTransient({ job, token, parcel, error }: { job: Job; token: string; parcel: Parcel; error: ProviderError }): Promise<"handled" | "exhausted"> {
    const now = this.now();
    const outage = { firstFailedAt: parcel.outage?.firstFailedAt ?? now, failures: (parcel.outage?.failures ?? 0) + 1 };
    const alt = this.alternative(parcel);
    const d = outageDecision({
      now,
      ...outage,
      deadlineAt: parcel.deadlineAt,
      windowMs: this.o.env.SIEVE_RETRY_WINDOW_MS,
      baseDelayMs: this.o.env.SIEVE_RETRY_BASE_MS,
      providerDown: this.breaker(parcel.provider).state(now) !== "closed",
      alternativeEtaMs: alt ? this.o.env.SIEVE_ROUTER_REALTIME_MS : undefined,
    });
    if (d.kind === "fail") return "exhausted";
    if (d.kind === "retry") {
      await job.updateData({ ...parcel, outage });
      await job.moveToDelayed(now + d.delayMs, token);
      return "handled";
    }
    const route = alt!;
    const moved: Parcel = {
      ...parcel,
      provider: route.provider,
      model: route.model,
      batchKey: batchKeyFor(this.o.env, parcel, route, "realtime"),
      outage,
    };
    delete moved.tier;
    // Same BullMQ id on the other queue: the sweeper looks for a job's parcels on every queue.
    await this.o.queues.get(route.provider)!.add("parcel", moved, { ...job.opts, jobId: job.id!, delay: 0 });
    const ids = parcel.items.map((i) => i.itemId);
    const note = ` -> moved to ${route.provider}:${route.model}: ${parcel.provider} is down (${error.kind})`;
    await this.o.db
      .execute(sql`update items set route = ${`${route.provider}:${route.model}`}, lane_reason = left(coalesce(lane_reason, 'requested') || ${note}, 1000) where id = any(${sql.param(ids)}::bigint[])`)
      .catch((e) => this.o.log.warn({ err: coerceError(e).message }, "could not note a moved parcel on its items"));
    await job.moveToCompleted({ items: parcel.items.length, movedTo: route.provider }, token, false);
    this.o.log.warn({ jobId: parcel.jobId, items: ids.length, from: parcel.provider, to: route.provider }, "provider down: parcel moved to the next route");
    return "handled";
  }
}

/** SIEVE_FALLBACK_ROUTES, or every configured cloud provider's default model. */
export function fallbackRoutes(env: Env, defaults: Array<{ provider: ProviderName; defaultModel: string }>): Route[] {
  if (env.SIEVE_FALLBACK_ROUTES) {
    return env.SIEVE_FALLBACK_ROUTES.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
      const i = s.indexOf(":");
      return { provider: s.slice(0, i) as ProviderName, model: s.slice(i + 1) };
    });
  }
  return defaults.filter((d) => d.provider !== "vllm").map((d) => ({ provider: d.provider, model: d.defaultModel }));
}
