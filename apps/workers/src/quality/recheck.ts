/**
 * Packed answers checked live (docs/quality.md). After a multi-item call lands, a sample of its
 * answered items (SIEVE_RECHECK_RATE) goes on the `quality-recheck` queue; this worker asks each
 * of them again ALONE (same provider and model, a single-item call), records whether the two
 * answers agree (`quality_checks`, metrics), and feeds the outcome to the batch key's maxItems
 * controller (limits.ts). The result the caller got is never changed: the re-check only measures.
 * Every re-check call is an `llm_calls` row (lane "recheck"), so its spend is visible.
 */
import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { isDeepStrictEqual } from "node:util";
import { sql } from "drizzle-orm";
import {
  RECHECK_QUEUE,
  RecheckJob,
  coerceError,
  observeLlmCall,
  qualityMetrics,
  queryRows,
  validateResults,
  type Db,
  type DependencyMonitor,
  type Env,
  type Logger,
  type NewResult,
  type PriceTable,
  type ProviderName,
  type TaskParams,
  batchPolicy,
} from "@sieve/shared";
import { qualityChecks } from "@sieve/shared/db/schema/quality";
import type { LlmProvider } from "../providers/types.js";
import { sampleForRecheck, type ControllerConfig } from "./controller.js";
import { recordOutcomes } from "./limits.js";
import { completeSideCall, sendSideCall } from "../providers/sideCall.js";

/** What a landed multi-item call hands to the re-check sampler. */
export interface AnsweredCall {
  batchKey: string;
  tenantId: string;
  provider: ProviderName;
  model: string;
  params: TaskParams;
  callItems: number;
  rows: NewResult[];
  textOf: (itemId: number) => string | undefined;
}

export function controllerConfig(env: Env, task: TaskParams["task"]): ControllerConfig {
  return {
    ceiling: batchPolicy(env, task).maxItems,
    minItems: 1,
    floor: env.SIEVE_RECHECK_FLOOR,
    recover: env.SIEVE_RECHECK_RECOVER,
    minSamples: env.SIEVE_RECHECK_MIN_SAMPLES,
    cooldownMs: env.SIEVE_RECHECK_COOLDOWN_MS,
  };
}

/** Samples a landed call's answers and queues them; never throws (the results are already saved). */
export function createRecheckSampler(queue: Queue, rate: number, log: Logger, rand: () => number = Math.random, report: (e: unknown) => boolean = () => false) {
  return async (call: AnsweredCall): Promise<void> => {
    const items = call.rows
      .filter((r) => r.status === "ok" && sampleForRecheck(call.callItems, rate, rand))
      .flatMap((r) => {
        const text = call.textOf(r.itemId);
        return text === undefined ? [] : [{ itemId: r.itemId, jobId: r.jobId, text, packedOutput: r.output }];
      });
    if (items.length === 0) return;
    // One job per tenant: its re-check calls are that tenant's spend (tenants can share a call with SIEVE_MIX_TENANTS).
    const tenantOf = new Map(call.rows.map((r) => [r.itemId, r.tenantId]));
    const byTenant = new Map<string, typeof items>();
    for (const it of items) {
      const t = tenantOf.get(it.itemId) ?? call.tenantId;
      byTenant.set(t, [...(byTenant.get(t) ?? []), it]);
    }
    try {
      for (const [tenantId, its] of byTenant) {
        const job: RecheckJob = { batchKey: call.batchKey, tenantId, provider: call.provider, model: call.model, params: call.params, itemsPerCall: call.callItems, items: its };
        await queue.add("recheck", job, { attempts: 3, backoff: { type: "exponential", delay: 5_000 }, removeOnComplete: { age: 3_600, count: 1_000 }, removeOnFail: { age: 86_400 } });
      }
    } catch (e) {
      // A Redis outage is logged once by the dependency monitor, not once per answered call.
      if (!report(e)) log.warn({ err: coerceError(e).message, batchKey: call.batchKey }, "could not queue re-checks");
    }
  };
}

export interface RecheckWorkerOptions {
  db: Db;
  env: Env;
  connection: Redis;
  prefix: string;
  providers: Map<ProviderName, LlmProvider>;
  prices: PriceTable;
  log: Logger;
  /** Clock for the controller (tests). @defaultValue Date.now */
  now?: () => number;
  /** Outages of Redis and Postgres: the worker's errors are logged once per outage there. */
  monitor?: DependencyMonitor;
}

/** Asks one re-check job's items alone and records the outcome. Exported for tests. */
export async function processRecheck(opts: RecheckWorkerOptions, data: RecheckJob): Promise<{ agreed: number; total: number }> {
  const provider = opts.providers.get(data.provider);
  if (!provider) return { agreed: 0, total: 0 };
  // Items already re-checked (a retried job) are not asked again.
  const done = new Set(
    (await queryRows<{ item_id: number }>(opts.db, sql`select item_id::int as item_id from quality_checks where item_id = any(${sql.param(data.items.map((i) => i.itemId))}::bigint[])`)).map((r) => r.item_id),
  );
  let agreed = 0;
  let total = 0;
  for (const it of data.items.filter((i) => !done.has(i.itemId))) {
    const { res, call: answered } = await sendSideCall(opts.db, opts.prices, provider, {
      tenantId: data.tenantId,
      provider: data.provider,
      model: data.model,
      lane: "recheck",
      batchKey: data.batchKey,
      params: data.params,
      items: [{ id: "i1", text: it.text }],
      timeoutMs: opts.env.SIEVE_CALL_TIMEOUT_MS,
    });
    const v = res.answer === undefined ? undefined : validateResults(data.params, ["i1"], res.answer);
    const single = v?.ok.get("i1");
    const agree = single === undefined ? null : isDeepStrictEqual(single, it.packedOutput);
    const call = await opts.db.transaction(async (tx) => {
      const completed = await completeSideCall(tx as unknown as Db, answered, { outcome: single === undefined ? "invalid_output" : "ok", validCount: single === undefined ? 0 : 1 });
      await tx
        .insert(qualityChecks)
        .values({
          itemId: it.itemId,
          jobId: it.jobId,
          tenantId: data.tenantId,
          batchKey: data.batchKey,
          task: data.params.task,
          provider: data.provider,
          model: data.model,
          itemsPerCall: data.itemsPerCall,
          packedOutput: it.packedOutput as object,
          singleOutput: (single ?? null) as object | null,
          agree,
          llmCallId: completed.id,
        })
        .onConflictDoNothing();
      return completed;
    });
    observeLlmCall(call);
    const labels = { task: data.params.task, model: data.model, items_per_call: String(data.itemsPerCall) };
    qualityMetrics.rechecks.inc({ ...labels, agree: agree === null ? "none" : String(agree) });
    if (agree === null) continue;
    total++;
    if (agree) agreed++;
  }
  if (total > 0) {
    await recordOutcomes(opts.db, controllerConfig(opts.env, data.params.task), { batchKey: data.batchKey, task: data.params.task, model: data.model, agreed, total, callItems: data.itemsPerCall }, (opts.now ?? Date.now)());
    await refreshAgreementGauge(opts.db, data.params.task, data.model, data.itemsPerCall);
  }
  return { agreed, total };
}

async function refreshAgreementGauge(db: Db, task: string, model: string, itemsPerCall: number): Promise<void> {
  const [row] = await queryRows<{ agreement: number | null }>(
    db,
    sql`select avg(case when agree then 1.0 else 0.0 end)::float8 as agreement from (
          select agree from quality_checks where task = ${task} and model = ${model} and items_per_call = ${itemsPerCall} and agree is not null
          order by created_at desc limit 1000) q`,
  );
  if (row?.agreement !== null && row?.agreement !== undefined) qualityMetrics.agreement.set({ task, model, items_per_call: String(itemsPerCall) }, row.agreement);
}

export function startRecheckWorker(opts: RecheckWorkerOptions): Worker {
  const worker = new Worker(
    RECHECK_QUEUE,
    async (job) => {
      const parsed = RecheckJob.safeParse(job.data);
      if (!parsed.success) {
        opts.log.error({ jobId: job.id }, "poison re-check payload dropped");
        return;
      }
      return processRecheck(opts, parsed.data);
    },
    // Off the hot path and low volume: one at a time per process keeps it out of the calls' way.
    { connection: opts.connection, prefix: opts.prefix, concurrency: 1 },
  );
  if (opts.monitor) opts.monitor.watch(worker, "re-check worker");
  else worker.on("error", (e) => opts.log.warn({ err: coerceError(e).message }, "re-check worker error"));
  return worker;
}
