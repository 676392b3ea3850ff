/**
 * Console figures from the rollups (docs/console.md). Every query here reads `rollup_minute` /
 * `rollup_errors` over a time range (their primary keys start with the minute), never `items`.
 */
import { sql, type SQL } from "drizzle-orm";
import { BATCH_DISCOUNT, costUsd, queryRows, type Db, type PriceTable } from "@sieve/shared";
import { LATENCY_BUCKETS_MS } from "@sieve/shared/db/schema/index";

export const RANGES = {
  hour: { ms: 3_600_000, bin: "1 minute", label: "last hour" },
  day: { ms: 86_400_000, bin: "15 minutes", label: "last day" },
  week: { ms: 7 * 86_400_000, bin: "1 hour", label: "last week" },
} as const;
export type RangeName = keyof typeof RANGES;

/** Start of a range: a whole minute, so rollup rows are either fully in or fully out. */
export function rangeStart(range: RangeName, now = Date.now()): Date {
  const t = now - RANGES[range].ms;
  return new Date(Math.floor(t / 60_000) * 60_000);
}

export interface RollupSums {
  itemsOk: number;
  itemsFailed: number;
  hitsExact: number;
  hitsSemantic: number;
  hitsCoalesced: number;
  savedExact: number;
  savedSemantic: number;
  savedCoalesced: number;
  hitsLearned: number;
  savedLearned: number;
  calls: number;
  callsFailed: number;
  itemsSent: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  cost: number;
  packingTokens: number;
}

const SUMS = sql`coalesce(sum(items_ok), 0)::float8 as "itemsOk", coalesce(sum(items_failed), 0)::float8 as "itemsFailed",
  coalesce(sum(hits_exact), 0)::float8 as "hitsExact", coalesce(sum(hits_semantic), 0)::float8 as "hitsSemantic",
  coalesce(sum(hits_coalesced), 0)::float8 as "hitsCoalesced", coalesce(sum(saved_exact_usd), 0)::float8 as "savedExact",
  coalesce(sum(saved_semantic_usd), 0)::float8 as "savedSemantic", coalesce(sum(saved_coalesced_usd), 0)::float8 as "savedCoalesced",
  coalesce(sum(hits_learned), 0)::float8 as "hitsLearned", coalesce(sum(saved_learned_usd), 0)::float8 as "savedLearned",
  coalesce(sum(calls), 0)::float8 as calls, coalesce(sum(calls_failed), 0)::float8 as "callsFailed", coalesce(sum(items_sent), 0)::float8 as "itemsSent",
  coalesce(sum(input_tokens), 0)::float8 as "inputTokens", coalesce(sum(output_tokens), 0)::float8 as "outputTokens",
  coalesce(sum(cached_input_tokens), 0)::float8 as "cachedInputTokens", coalesce(sum(cost_usd), 0)::float8 as cost,
  coalesce(sum(packing_tokens), 0)::float8 as "packingTokens"`;

function where(since: Date, tenant?: string): SQL {
  return tenant ? sql`minute >= ${since.toISOString()} and tenant_id = ${tenant}` : sql`minute >= ${since.toISOString()}`;
}

export interface Savings {
  exact: number;
  semantic: number;
  coalesced: number;
  /** Items the learned classification cache answered (docs/quality.md). */
  learned: number;
  packing: number;
  batchDiscount: number;
  localGpu: number;
  total: number;
}

const isLocal = (provider: string, lane: string) => provider === "vllm" || lane === "gpu";

/**
 * Dollars saved, by what saved them. Cache hits: the results' own saved_usd (the model's recent
 * average cost per item). Packing: system-prompt tokens not re-sent, at the model's input price.
 * Batch discount: what the batch-lane calls would have cost at realtime prices, minus what they
 * cost. Local GPU: the same tokens at the reference cloud model's price, minus the recorded cost.
 */
export function savingsOf(rows: Array<RollupSums & { provider: string; model: string; lane: string }>, prices: PriceTable, gpuReference: string): Savings {
  const s: Savings = { exact: 0, semantic: 0, coalesced: 0, learned: 0, packing: 0, batchDiscount: 0, localGpu: 0, total: 0 };
  for (const r of rows) {
    s.exact += r.savedExact;
    s.semantic += r.savedSemantic;
    s.coalesced += r.savedCoalesced;
    s.learned += r.savedLearned;
    const local = isLocal(r.provider, r.lane);
    const p = prices[local ? gpuReference : r.model];
    if (p && !local) s.packing += ((r.packingTokens * p.input) / 1e6) * (r.lane === "batch" ? BATCH_DISCOUNT : 1);
    if (r.lane === "batch") s.batchDiscount += r.cost * (1 / BATCH_DISCOUNT - 1);
    if (local) {
      const usage = { inputTokens: r.inputTokens, outputTokens: r.outputTokens, cachedInputTokens: r.cachedInputTokens };
      s.localGpu += Math.max(0, costUsd(prices, gpuReference, usage).usd - r.cost);
    }
  }
  s.total = s.exact + s.semantic + s.coalesced + s.learned + s.packing + s.batchDiscount + s.localGpu;
  return s;
}

export async function sumsByKey(db: Db, since: Date, tenant?: string): Promise<Array<RollupSums & { provider: string; model: string; lane: string }>> {
  return queryRows(db, sql`select provider, model, lane, ${SUMS} from rollup_minute where ${where(since, tenant)} group by provider, model, lane`);
}

export function total(rows: RollupSums[]): RollupSums {
  const t: RollupSums = { itemsOk: 0, itemsFailed: 0, hitsExact: 0, hitsSemantic: 0, hitsCoalesced: 0, savedExact: 0, savedSemantic: 0, savedCoalesced: 0, hitsLearned: 0, savedLearned: 0, calls: 0, callsFailed: 0, itemsSent: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cost: 0, packingTokens: 0 };
  for (const r of rows) for (const k of Object.keys(t) as Array<keyof RollupSums>) t[k] += r[k];
  return t;
}

export interface SeriesPoint {
  t: number;
  items: number;
  failed: number;
  calls: number;
  cost: number;
  savedCache: number;
  hitsExact: number;
  hitsSemantic: number;
  hitsCoalesced: number;
}

/** Time series binned for charts (1 min / 15 min / 1 h bins). */
export async function series(db: Db, range: RangeName, since: Date, tenant?: string): Promise<SeriesPoint[]> {
  const bin = RANGES[range].bin;
  return queryRows(
    db,
    sql`select extract(epoch from date_bin(${bin}::interval, minute, ${since.toISOString()}::timestamptz))::float8 as t,
          sum(items_ok + items_failed)::float8 as items, sum(items_failed)::float8 as failed, sum(calls)::float8 as calls,
          sum(cost_usd)::float8 as cost, sum(saved_exact_usd + saved_semantic_usd + saved_coalesced_usd + saved_learned_usd)::float8 as "savedCache",
          sum(hits_exact)::float8 as "hitsExact", sum(hits_semantic)::float8 as "hitsSemantic", sum(hits_coalesced)::float8 as "hitsCoalesced"
        from rollup_minute where ${where(since, tenant)} group by 1 order by 1`,
  );
}

export interface LatencyRow {
  lane: string;
  provider: string;
  calls: number;
  meanMs: number;
  p50: number | null;
  p95: number | null;
}

/** Quantile from bucket counts: the upper bound of the bucket that holds it (open bucket: "above the last bound"). */
export function quantile(buckets: number[], q: number): number | null {
  const n = buckets.reduce((a, b) => a + b, 0);
  if (n === 0) return null;
  const rank = Math.ceil(q * n);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank) return i < LATENCY_BUCKETS_MS.length ? LATENCY_BUCKETS_MS[i]! : Infinity;
  }
  return null;
}

export async function latency(db: Db, since: Date, tenant?: string): Promise<LatencyRow[]> {
  const rows = await queryRows<{ lane: string; provider: string; calls: number; ms: number; b: number[] }>(
    db,
    sql`select lane, provider, sum(calls)::float8 as calls, sum(latency_ms_sum)::float8 as ms,
          (select array_agg(s order by i) from (select i, sum(x)::int as s from rollup_minute r2, unnest(r2.lat_buckets) with ordinality u(x, i)
             where ${where(since, tenant)} and r2.lane = r.lane and r2.provider = r.provider group by i) q) as b
        from rollup_minute r where ${where(since, tenant)} and calls > 0 group by lane, provider order by lane, provider`,
  );
  return rows.map((r) => ({ lane: r.lane, provider: r.provider, calls: r.calls, meanMs: r.calls ? r.ms / r.calls : 0, p50: quantile(r.b ?? [], 0.5), p95: quantile(r.b ?? [], 0.95) }));
}

export async function errorsByCode(db: Db, since: Date, tenant?: string): Promise<Array<{ code: string; provider: string; lane: string; n: number }>> {
  return queryRows(
    db,
    sql`select code, provider, lane, sum(n)::int as n from rollup_errors where ${where(since, tenant)} group by code, provider, lane having sum(n) > 0 order by n desc limit 50`,
  );
}

/** The live false-hit rate: semantic hits re-checked by the LLM (cache_audits, indexed by task and time). */
export async function audits(db: Db, since: Date): Promise<Array<{ task: string; audited: number; agreed: number }>> {
  return queryRows(
    db,
    sql`select task, count(*) filter (where agree is not null)::int as audited, count(*) filter (where agree)::int as agreed
        from cache_audits where created_at >= ${since.toISOString()} group by task order by task`,
  );
}

export type KeyedSums = RollupSums & { tenantId: string; provider: string; model: string; lane: string };

/** Sums per UTC day x tenant x provider x model x lane (savings need the model and lane). */
export async function tenantDays(db: Db, since: Date): Promise<Array<KeyedSums & { day: string }>> {
  return queryRows(
    db,
    sql`select to_char(date_trunc('day', minute at time zone 'UTC'), 'YYYY-MM-DD') as day, tenant_id as "tenantId", provider, model, lane, ${SUMS}
        from rollup_minute where minute >= ${since.toISOString()} group by 1, 2, 3, 4, 5`,
  );
}

export async function tenantSums(db: Db, since: Date): Promise<KeyedSums[]> {
  return queryRows(db, sql`select tenant_id as "tenantId", provider, model, lane, ${SUMS} from rollup_minute where minute >= ${since.toISOString()} group by tenant_id, provider, model, lane`);
}
