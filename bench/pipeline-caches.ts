/**
 * `npm run bench:pipeline-caches`: what dedup costs on the submit path. Same Redis, Postgres and
 * simulator (0 ms), same items, in one run, three configurations, every item a cache MISS (texts
 * made unique per phase), so this measures the lookups' overhead, not hits:
 *   caches off | exact cache + coalescing | exact + semantic (USE-lite embeddings, pgvector in PGlite).
 * Hit rates and the false-hit trade-off are bench:cache's subject.
 */
import { writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import { agNewsItems } from "../test/support/datasets.js";
import { startSimProcess } from "./lib/pipeline-sim.js";
import { runThroughput, startSieve, warmUp } from "./lib/pipeline-sieve.js";

const quick = process.argv.includes("--quick");
const N = quick ? 600 : 3_000;
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const base = agNewsItems(N);
const sim = await startSimProcess();
const configs: Array<{ label: string; env: Record<string, string> }> = [
  { label: "caches off", env: { SIEVE_CACHE_ENABLED: "false", SIEVE_SEMANTIC_CACHE: "off" } },
  { label: "exact cache + coalescing", env: { SIEVE_CACHE_ENABLED: "true", SIEVE_SEMANTIC_CACHE: "off" } },
  { label: "exact + semantic (USE-lite, pgvector)", env: { SIEVE_CACHE_ENABLED: "true", SIEVE_SEMANTIC_CACHE: "pgvector" } },
];
const rows: Array<{ label: string; items: number; itemsPerS: number; acceptedItemsPerS: number; submitP50: number; submitP99: number; llmCallsPer1000Items: number }> = [];
try {
  for (const [k, c] of configs.entries()) {
    const s = await startSieve({ label: c.label, redisUrl, simUrl: sim.url, env: c.env });
    try {
      const items = base.map((it, i) => ({ id: `${k}-${i}`, text: `${it.text} (${k}-${i})`, label: it.label }));
      await warmUp(s, items.slice(0, 40).map((it) => ({ ...it, text: `warm ${it.text}` })));
      const r = await runThroughput(s, items, { clients: 16, minItems: 20, maxItems: 40, seed: 3, timeoutMs: 600_000 });
      rows.push({ label: c.label, items: r.items, itemsPerS: Math.round(r.itemsPerS), acceptedItemsPerS: Math.round(r.acceptedItemsPerS), submitP50: Math.round(r.submitLatencyMs.p50), submitP99: Math.round(r.submitLatencyMs.p99), llmCallsPer1000Items: Math.round(r.llmCallsPer1000Items * 10) / 10 });
    } finally {
      await s.close();
    }
  }
} finally {
  await sim.close();
}
const off = rows[0]!.itemsPerS;
console.log("| configuration | items | items/s end to end | vs caches off | accepted items/s | submit p50 / p99 ms |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of rows) console.log(`| ${r.label} | ${r.items} | ${r.itemsPerS} | ${(r.itemsPerS / off).toFixed(2)} | ${r.acceptedItemsPerS} | ${r.submitP50} / ${r.submitP99} |`);
const out = { benchmark: "pipeline-caches", date: new Date().toISOString(), quick, machine: { cpus: os.cpus().length, node: process.version, loadavg: os.loadavg() }, note: "every item is a cache miss: this is lookup overhead", rows };
mkdirSync("bench/results", { recursive: true });
const day = new Date().toISOString().slice(0, 10);
const name = quick ? "pipeline-caches-quick" : "pipeline-caches";
writeFileSync(`bench/results/${name}-${day}.json`, JSON.stringify(out, null, 2));
writeFileSync(`bench/results/${name}-latest.json`, JSON.stringify(out, null, 2));
