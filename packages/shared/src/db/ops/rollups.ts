/**
 * Rollup writes for the operator console (docs/console.md). `rollupOutcome` runs as the LAST
 * statement of recordOutcome's transaction, so a rollup row moves exactly when the results and
 * the llm_calls row it counts are committed, and only by the rows actually inserted (a re-run
 * call that inserts nothing adds nothing). Rows are upserted in key order and after every job
 * row lock, so two writers cannot deadlock on them.
 */
import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../client.js";
import { queryRows } from "../client.js";
import { LATENCY_BUCKETS_MS } from "../schema/console.js";
import { TaskParams } from "../../tasks/params.js";
import { systemPrompt } from "../../prompts/index.js";
import { countChatTokens } from "../../tokens.js";
import type { NewLlmCall, NewResult } from "./rows.js";

interface Delta {
  tenantId: string;
  provider: string;
  model: string;
  lane: string;
  itemsOk: number;
  itemsFailed: number;
  hits: { exact: number; semantic: number; coalesced: number; learned: number };
  saved: { exact: number; semantic: number; coalesced: number; learned: number };
  calls: number;
  callsFailed: number;
  itemsSent: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  costUsd: number;
  packingTokens: number;
  latencyMs: number;
  buckets: number[];
}

const NONE = "-";

function emptyDelta(tenantId: string, provider: string, model: string, lane: string): Delta {
  return {
    tenantId, provider, model, lane,
    itemsOk: 0, itemsFailed: 0,
    hits: { exact: 0, semantic: 0, coalesced: 0, learned: 0 },
    saved: { exact: 0, semantic: 0, coalesced: 0, learned: 0 },
    calls: 0, callsFailed: 0, itemsSent: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0,
    costUsd: 0, packingTokens: 0, latencyMs: 0, buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0),
  };
}

/** Index of the latency bucket of `ms`. */
export function latencyBucket(ms: number): number {
  const i = LATENCY_BUCKETS_MS.findIndex((b) => ms <= b);
  return i < 0 ? LATENCY_BUCKETS_MS.length : i;
}

/** System-prompt tokens per batch key: what each extra single-item call would have sent again. */
const prefixTokens = new Map<string, number>();

async function prefixTokensOf(tx: Db, batchKey: string, jobId: string): Promise<number> {
  const known = prefixTokens.get(batchKey);
  if (known !== undefined) return known;
  const rows = await queryRows<{ params: unknown }>(tx, sql`select params from jobs where id = ${jobId}`);
  const parsed = TaskParams.safeParse(rows[0]?.params);
  const n = parsed.success ? countChatTokens([{ role: "system", content: systemPrompt(parsed.data) }]) : 0;
  if (prefixTokens.size > 2_000) prefixTokens.clear();
  prefixTokens.set(batchKey, n);
  return n;
}

/**
 * Rollup deltas collected over several recordOutcome calls of ONE transaction and written once by
 * `flush` at its end (the batch lane's settle chunk): row locks on rollups are then taken after
 * every job row lock of that transaction.
 */
export class RollupBatch {
  readonly deltas = new Map<string, Delta>();
  readonly errors = new Map<string, { d: Delta; code: string; n: number }>();

  get(tenantId: string, provider: string, model: string, lane: string): Delta {
    const k = JSON.stringify([tenantId, provider, model, lane]);
    let d = this.deltas.get(k);
    if (!d) this.deltas.set(k, (d = emptyDelta(tenantId, provider, model, lane)));
    return d;
  }

  /** Counts one call (if any) and the results it inserted. */
  async add(tx: Db, call: NewLlmCall | null, inserted: NewResult[], laneOf: Map<string, string>): Promise<void> {
    for (const r of inserted) {
      const d = this.get(r.tenantId, r.provider ?? NONE, r.model ?? NONE, laneOf.get(r.jobId) ?? call?.lane ?? "realtime");
      if (r.status === "ok") d.itemsOk++;
      else {
        d.itemsFailed++;
        const code = r.errorCode ?? "unknown";
        const k = JSON.stringify([d.tenantId, d.provider, d.model, d.lane, code]);
        const e = this.errors.get(k) ?? { d, code, n: 0 };
        e.n++;
        this.errors.set(k, e);
      }
      if (r.cache) {
        d.hits[r.cache]++;
        // Rounded as results.saved_usd stores it, so the rollup equals the sum of those rows.
        d.saved[r.cache] += Number((r.savedUsd ?? 0).toFixed(8));
      }
    }
    if (!call) return;
    const d = this.get(call.tenantId, call.provider, call.model, call.lane);
    d.calls++;
    if (call.outcome !== "ok" && call.outcome !== "partial") d.callsFailed++;
    d.itemsSent += call.itemCount;
    d.inputTokens += call.inputTokens ?? 0;
    d.outputTokens += call.outputTokens ?? 0;
    d.cachedInputTokens += call.cachedInputTokens ?? 0;
    d.costUsd += Number(call.costUsd ?? 0);
    const ms = call.latencyMs ?? 0;
    d.latencyMs += ms;
    d.buckets[latencyBucket(ms)]!++;
    const first = inserted.find((r) => !r.cache);
    if (call.itemCount > 1 && (call.outcome === "ok" || call.outcome === "partial") && first) {
      d.packingTokens += (call.itemCount - 1) * (await prefixTokensOf(tx, call.batchKey, first.jobId));
    }
  }

  /** Upserts everything collected, in key order; then starts empty again. */
  async flush(tx: Db): Promise<void> {
    if (this.deltas.size === 0) return;
    const byKey = <T>(m: Map<string, T>) => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, v]) => v);
    await upsertMinute(tx, byKey(this.deltas), sql`date_trunc('minute', now())`);
    if (this.errors.size > 0) await upsertErrors(tx, byKey(this.errors).map((e) => ({ ...e.d, code: e.code, n: e.n })), sql`date_trunc('minute', now())`);
    this.deltas.clear();
    this.errors.clear();
  }
}

/** Adds one recordOutcome's call and inserted results to the rollups (into `batch` when given, else written now). */
export async function rollupOutcome(tx: Db, call: NewLlmCall | null, inserted: NewResult[], laneOf: Map<string, string>, batch?: RollupBatch): Promise<void> {
  const b = batch ?? new RollupBatch();
  await b.add(tx, call, inserted, laneOf);
  if (!batch) await b.flush(tx);
}

async function upsertMinute(tx: Db, rows: Delta[], minute: SQL): Promise<void> {
  const values = sql.join(
    rows.map(
      (d) => sql`(${minute}, ${d.tenantId}, ${d.provider}, ${d.model}, ${d.lane}, ${d.itemsOk}, ${d.itemsFailed},
        ${d.hits.exact}, ${d.hits.semantic}, ${d.hits.coalesced}, ${d.saved.exact.toFixed(8)}::numeric, ${d.saved.semantic.toFixed(8)}::numeric,
        ${d.saved.coalesced.toFixed(8)}::numeric, ${d.calls}, ${d.callsFailed}, ${d.itemsSent}, ${d.inputTokens}::bigint, ${d.outputTokens}::bigint,
        ${d.cachedInputTokens}::bigint, ${d.costUsd.toFixed(8)}::numeric, ${d.packingTokens}::bigint, ${d.latencyMs}::bigint,
        ${`{${d.buckets.join(",")}}`}::int[], ${d.hits.learned}, ${d.saved.learned.toFixed(8)}::numeric)`,
    ),
    sql`, `,
  );
  await tx.execute(sql`insert into rollup_minute (minute, tenant_id, provider, model, lane, items_ok, items_failed, hits_exact, hits_semantic,
      hits_coalesced, saved_exact_usd, saved_semantic_usd, saved_coalesced_usd, calls, calls_failed, items_sent, input_tokens, output_tokens,
      cached_input_tokens, cost_usd, packing_tokens, latency_ms_sum, lat_buckets, hits_learned, saved_learned_usd)
    values ${values}
    on conflict (minute, tenant_id, provider, model, lane) do update set
      items_ok = rollup_minute.items_ok + excluded.items_ok,
      items_failed = rollup_minute.items_failed + excluded.items_failed,
      hits_exact = rollup_minute.hits_exact + excluded.hits_exact,
      hits_semantic = rollup_minute.hits_semantic + excluded.hits_semantic,
      hits_coalesced = rollup_minute.hits_coalesced + excluded.hits_coalesced,
      hits_learned = rollup_minute.hits_learned + excluded.hits_learned,
      saved_learned_usd = rollup_minute.saved_learned_usd + excluded.saved_learned_usd,
      saved_exact_usd = rollup_minute.saved_exact_usd + excluded.saved_exact_usd,
      saved_semantic_usd = rollup_minute.saved_semantic_usd + excluded.saved_semantic_usd,
      saved_coalesced_usd = rollup_minute.saved_coalesced_usd + excluded.saved_coalesced_usd,
      calls = rollup_minute.calls + excluded.calls,
      calls_failed = rollup_minute.calls_failed + excluded.calls_failed,
      items_sent = rollup_minute.items_sent + excluded.items_sent,
      input_tokens = rollup_minute.input_tokens + excluded.input_tokens,
      output_tokens = rollup_minute.output_tokens + excluded.output_tokens,
      cached_input_tokens = rollup_minute.cached_input_tokens + excluded.cached_input_tokens,
      cost_usd = rollup_minute.cost_usd + excluded.cost_usd,
      packing_tokens = rollup_minute.packing_tokens + excluded.packing_tokens,
      latency_ms_sum = rollup_minute.latency_ms_sum + excluded.latency_ms_sum,
      lat_buckets = (select array_agg(a + b order by i) from unnest(rollup_minute.lat_buckets, excluded.lat_buckets) with ordinality as u(a, b, i))`);
}

async function upsertErrors(tx: Db, rows: Array<{ tenantId: string; provider: string; model: string; lane: string; code: string; n: number }>, minute: SQL): Promise<void> {
  const values = sql.join(rows.map((e) => sql`(${minute}, ${e.tenantId}, ${e.provider}, ${e.model}, ${e.lane}, ${e.code}, ${e.n})`), sql`, `);
  await tx.execute(sql`insert into rollup_errors (minute, tenant_id, provider, model, lane, code, n) values ${values}
    on conflict (minute, tenant_id, provider, model, lane, code) do update set n = rollup_errors.n + excluded.n`);
}

/**
 * Takes failed results back out of the rollups (an operator retried them: their error rows were
 * deleted, so /v1/usage no longer counts them either). Each row is subtracted from the minute it
 * was counted in.
 */
export async function unrollFailed(tx: Db, removed: Array<{ createdAt: string; tenantId: string; provider: string | null; model: string | null; lane: string; code: string | null }>): Promise<void> {
  const per = new Map<string, { minute: string; tenantId: string; provider: string; model: string; lane: string; code: string; n: number }>();
  for (const r of removed) {
    const row = { minute: r.createdAt, tenantId: r.tenantId, provider: r.provider ?? NONE, model: r.model ?? NONE, lane: r.lane, code: r.code ?? "unknown", n: 0 };
    const k = JSON.stringify([row.minute, row.tenantId, row.provider, row.model, row.lane, row.code]);
    const e = per.get(k) ?? row;
    e.n++;
    per.set(k, e);
  }
  for (const [, e] of [...per.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const key = sql`minute = date_trunc('minute', ${e.minute}::timestamptz) and tenant_id = ${e.tenantId} and provider = ${e.provider} and model = ${e.model} and lane = ${e.lane}`;
    await tx.execute(sql`update rollup_minute set items_failed = greatest(0, items_failed - ${e.n}) where ${key}`);
    await tx.execute(sql`update rollup_errors set n = greatest(0, n - ${e.n}) where ${key} and code = ${e.code}`);
  }
}
