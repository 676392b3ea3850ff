/**
 * Vector-store lookup latency with a large store (bench/cache.ts). The store is filled with
 * vectors made from a smaller set of real USE embeddings plus small Gaussian perturbations
 * (each real embedding yields ~4 siblings at cosine ~0.99 of each other)
 * (generating 100k real embeddings would take ~15 min on this machine); the lookups themselves
 * are real queries through the real store classes, timed one at a time.
 */
import { PGlite } from "@electric-sql/pglite";
import { vector as pgvector } from "@electric-sql/pglite-pgvector";
import { startQdrantStandin } from "@sieve/qdrant-standin";
import { PgVectorStore } from "../../packages/cache/src/vector/pgvector.js";
import { QdrantStore } from "../../packages/cache/src/vector/qdrant.js";
import type { CacheScope, VectorEntry, VectorStore } from "../../packages/cache/src/vector/types.js";
import { rng } from "./cache-paraphrase.js";
import { latencySummary, round } from "./cache-sweep.js";

export const BIG_SCOPE: CacheScope = {
  tenantId: "tenant-big",
  task: "classify",
  promptVersion: "classify-v1",
  schemaVersion: "s1",
  provider: "openai",
  model: "gpt-4.1-mini",
  paramsHash: "labels-bench",
  embedderId: "use-lite-512",
  namespace: "default",
};
export const SMALL_SCOPE: CacheScope = { ...BIG_SCOPE, tenantId: "tenant-small" };

function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** base + N(0, sigma^2) per component, unit-scaled. */
export function perturb(base: Float32Array, sigma: number, random: () => number): number[] {
  const v = new Array<number>(base.length);
  let sum = 0;
  for (let i = 0; i < base.length; i++) {
    const x = base[i]! + sigma * gaussian(random);
    v[i] = x;
    sum += x * x;
  }
  const norm = Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) v[i] = v[i]! / norm;
  return v;
}

export interface FillSpec {
  bigEntries: number;
  smallEntries: number;
  /** Per-component noise added to real embeddings. */
  sigma: number;
}

function* entries(bases: Float32Array[], spec: FillSpec, seed: number): Generator<VectorEntry[]> {
  const random = rng(seed);
  const total = spec.bigEntries + spec.smallEntries;
  const chunk = 5_000;
  for (let start = 0; start < total; start += chunk) {
    const batch: VectorEntry[] = [];
    for (let i = start; i < Math.min(total, start + chunk); i++) {
      const base = bases[i % bases.length]!;
      batch.push({
        id: `e${i}`,
        vector: perturb(base, spec.sigma, random),
        scope: i < spec.bigEntries ? BIG_SCOPE : SMALL_SCOPE,
        text: `entry ${i}`,
        output: { label: `l${i % 77}` },
        sourceItemId: i,
        createdAt: 1_700_000_000_000 + i,
        expiresAt: null,
      });
    }
    yield batch;
  }
}

/**
 * Query vectors: half as close to a stored entry as its siblings are (likely hits at the
 * thresholds used), half perturbed far (likely misses).
 */
export function queryVectors(bases: Float32Array[], n: number, seed: number, sigma: number): number[][] {
  const random = rng(seed);
  return Array.from({ length: n }, (_, k) => perturb(bases[Math.floor(random() * bases.length)]!, k % 2 === 0 ? sigma : 0.05, random));
}

async function timeQueries(store: VectorStore, queries: number[][], scope: CacheScope, minScore: number) {
  const ms: number[] = [];
  const top1: Array<string | null> = [];
  let hits = 0;
  // Warm-up (plans, caches) outside the measurement.
  for (const q of queries.slice(0, 5)) await store.query(q, scope, { limit: 5, minScore });
  for (const q of queries) {
    const t0 = performance.now();
    const res = await store.query(q, scope, { limit: 5, minScore });
    ms.push(performance.now() - t0);
    if (res.length > 0) hits++;
  }
  // Nearest entry whatever its score (minScore -1), to compare HNSW with an exact scan.
  for (const q of queries) top1.push((await store.query(q, scope, { limit: 1, minScore: -1 }))[0]?.entry.id ?? null);
  return { latency: latencySummary(ms), hits, top1 };
}

/** Share of queries (over the shorter list) whose top-1 entry is the same. */
function agreement(a: Array<string | null>, b: Array<string | null>): number {
  const n = Math.min(a.length, b.length);
  let same = 0;
  for (let i = 0; i < n; i++) same += a[i] === b[i] ? 1 : 0;
  return round(same / Math.max(1, n), 4);
}

interface ScopeLatency {
  /** The plan the HNSW-indexed store chose for this scope (small scopes are scanned exactly). */
  plan: "hnsw" | "exact";
  /** The HNSW-indexed store (with its plan choice). */
  hnsw: ReturnType<typeof latencySummary>;
  exact: ReturnType<typeof latencySummary>;
  /** Over the first `comparedQueries` queries: same nearest entry (any score) with HNSW as with an exact scan (recall@1). */
  top1AgreementHnswVsExact: number;
  /** Queries with at least one hit at the threshold (HNSW over all its queries, exact over its own). */
  hitsHnsw: number;
  hitsExact: number;
  comparedQueries: number;
}

export interface PgLatencyResult {
  entries: { big: number; small: number };
  fillSeconds: number;
  hnswBuildSeconds: number;
  insertIntoHnswRowsPerSecond: number;
  bigScope: ScopeLatency;
  smallScope: ScopeLatency;
}

export async function pgliteLatency(
  bases: Float32Array[],
  spec: FillSpec,
  nQueries: { hnsw: number; exact: number },
  minScore: number,
  log: (s: string) => void,
): Promise<PgLatencyResult> {
  const db = await PGlite.create("memory://", { extensions: { vector: pgvector } });
  try {
    const exact = new PgVectorStore({ pglite: db, dimensions: 512, table: "bench_exact", index: "none", writeBatch: 5_000 });
    await exact.init();
    let t0 = performance.now();
    let n = 0;
    for (const batch of entries(bases, spec, 1)) {
      await exact.upsert(batch);
      n += batch.length;
      if (n % 20_000 === 0) log(`  pglite: ${n} entries`);
    }
    const fillSeconds = (performance.now() - t0) / 1000;
    // Same rows in a second table that gets the HNSW index, built after the bulk load (faster than
    // growing it row by row) with enough maintenance memory to build the graph in memory.
    await db.exec(`create table bench_hnsw (like bench_exact including all); insert into bench_hnsw select * from bench_exact; set maintenance_work_mem = '512MB'`);
    const hnsw = new PgVectorStore({ pglite: db, dimensions: 512, table: "bench_hnsw", index: "hnsw", writeBatch: 5_000 });
    t0 = performance.now();
    await hnsw.init();
    const hnswBuildSeconds = (performance.now() - t0) / 1000;
    log(`  pglite: HNSW built in ${hnswBuildSeconds.toFixed(1)} s`);
    await db.exec("analyze bench_exact; analyze bench_hnsw");

    // Exact scans of the big scope take ~0.5 s each: fewer of them (the first ones of the same list).
    const queries = queryVectors(bases, nQueries.hnsw, 2, spec.sigma);
    const exactQueries = queries.slice(0, nQueries.exact);
    const planBig = (await hnsw.explainQuery(queries[0]!, BIG_SCOPE, { limit: 5, minScore })).plan;
    const planSmall = (await hnsw.explainQuery(queries[0]!, SMALL_SCOPE, { limit: 5, minScore })).plan;
    const bigH = await timeQueries(hnsw, queries, BIG_SCOPE, minScore);
    const bigE = await timeQueries(exact, exactQueries, BIG_SCOPE, minScore);
    const smallH = await timeQueries(hnsw, queries, SMALL_SCOPE, minScore);
    const smallE = await timeQueries(exact, queries, SMALL_SCOPE, minScore);

    // Write path with the index in place: 1,000 new entries in one upsert.
    const extra = [...entries(bases.slice(0, 1000), { bigEntries: 1000, smallEntries: 0, sigma: spec.sigma }, 3)][0]!.map((e) => ({ ...e, id: `x${e.id}` }));
    t0 = performance.now();
    await hnsw.upsert(extra);
    const insertIntoHnswRowsPerSecond = Math.round(extra.length / ((performance.now() - t0) / 1000));
    return {
      entries: { big: spec.bigEntries, small: spec.smallEntries },
      fillSeconds: round(fillSeconds, 1),
      hnswBuildSeconds: round(hnswBuildSeconds, 1),
      insertIntoHnswRowsPerSecond,
      bigScope: { plan: planBig, hnsw: bigH.latency, exact: bigE.latency, top1AgreementHnswVsExact: agreement(bigH.top1, bigE.top1), hitsHnsw: bigH.hits, hitsExact: bigE.hits, comparedQueries: exactQueries.length },
      smallScope: { plan: planSmall, hnsw: smallH.latency, exact: smallE.latency, top1AgreementHnswVsExact: agreement(smallH.top1, smallE.top1), hitsHnsw: smallH.hits, hitsExact: smallE.hits, comparedQueries: queries.length },
    };
  } finally {
    await db.close();
  }
}

export interface StandinLatencyResult {
  note: string;
  entries: { big: number; small: number };
  fillSeconds: number;
  bigScope: ReturnType<typeof latencySummary> & { hits: number };
  smallScope: ReturnType<typeof latencySummary> & { hits: number };
}

export async function standinLatency(bases: Float32Array[], spec: FillSpec, nQueries: number, minScore: number, log: (s: string) => void): Promise<StandinLatencyResult> {
  const standin = await startQdrantStandin();
  try {
    const store = new QdrantStore({ url: standin.url, dimensions: 512, collection: "bench", writeBatch: 500, timeoutMs: 300_000 });
    await store.init();
    const t0 = performance.now();
    let n = 0;
    for (const batch of entries(bases, spec, 1)) {
      await store.upsert(batch);
      n += batch.length;
      if (n % 20_000 === 0) log(`  qdrant stand-in: ${n} entries`);
    }
    const fillSeconds = (performance.now() - t0) / 1000;
    const queries = queryVectors(bases, nQueries, 2, spec.sigma);
    const big = await timeQueries(store, queries, BIG_SCOPE, minScore);
    const small = await timeQueries(store, queries, SMALL_SCOPE, minScore);
    return {
      note: "Qdrant TEST STAND-IN (tools/qdrant-standin: in-memory JS, exact scan, HTTP+JSON on loopback). NOT a Qdrant measurement.",
      entries: { big: spec.bigEntries, small: spec.smallEntries },
      fillSeconds: round(fillSeconds, 1),
      bigScope: { ...big.latency, hits: big.hits },
      smallScope: { ...small.latency, hits: small.hits },
    };
  } finally {
    await standin.close();
  }
}
