/**
 * Answer-quality benchmark (docs/quality.md):
 *   npm run bench:quality [-- --ag-news 2000 --banking 3080 --workers 2 --fresh-embeddings]
 *
 * The provider SIMULATOR in reference mode answers with the datasets' gold labels plus noise
 * (tools/simulator/src/reference.ts: accuracy falls with items per call and position). Streams in
 * a fixed shuffled order: AG News (4 topics) and BANKING77 (77 intents).
 * (a) Accuracy against gold of: one call per item; packed calls (maxItems 25, the classify
 *     default); packed calls with the live re-check and the automatic maxItems controller.
 * (b) The learned cache fed with the LLM's (packed + controller) answers: share answered without
 *     an LLM call and error against gold, whole stream and second half, in the default
 *     configuration (hybrid model, bound 1%) and the best measured one (adjudicated, bound 5%);
 *     next to the exact + semantic cache at its default threshold (0.97) fed with the same
 *     answers. Details also feed it one-call-per-item answers and gold labels, with bounds of 1%
 *     and 5%, for the three models (kNN vote, class means, hybrid), and calibration variants; and
 *     the tightest error bound any calibration could certify for each model (10-fold cross-fitting).
 * Writes bench/results/quality-latest.json (the keys docs/quality.md lists) and
 * quality-details-latest.json (everything else: every model and variant, noise-free labels, traces).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { normaliseText } from "@sieve/shared/batchKey";
import type { TaskParams } from "@sieve/shared";
import { DEFAULT_REFERENCE_NOISE } from "../tools/simulator/src/reference.js";
import { loadAgNewsStream, loadBankingStream, type StreamItem } from "./lib/cache-datasets.js";
import { embedWithPool } from "./lib/cache-embed-pool.js";
import { controlledCalls, packedCalls, singleCalls, startReferenceLlm } from "./lib/quality-llm.js";
import { crossFitBounds, hindsightCeiling, replayLearned, replaySemantic, type ReplayItem } from "./lib/quality-cache.js";
import { machineInfo, round } from "./lib/pipeline-util.js";

const { values: args } = parseArgs({
  options: {
    "ag-news": { type: "string", default: "2000" },
    banking: { type: "string", default: "3080" },
    workers: { type: "string", default: String(Math.max(1, Math.min(2, os.cpus().length))) },
    "fresh-embeddings": { type: "boolean", default: false },
    /** Reuse the LLM answers of an earlier run with the same stream and noise (for iterating on the cache replays). */
    "cached-llm": { type: "boolean", default: false },
    /** Only the learned-cache variants whose name matches this regular expression; writes no results (for iterating). */
    only: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log("npm run bench:quality [-- --ag-news N (default 2000; docs use 3000) --banking N --workers N --fresh-embeddings --cached-llm --only REGEX]");
  process.exit(0);
}
const log = (m: string) => console.log(`[bench:quality] ${m}`);
const started = performance.now();

const MAX_ITEMS = 25;
const SEMANTIC_THRESHOLD = 0.97;
const LEARNED = { maxError: 0.01, minExamples: 300, auditRate: 0.05 };
const ADJUDICATED = "hybrid-llm-labels-bound-5pct-adjudicate-0.9-start-4";
const RECHECK = { rate: 0.1, floor: 0.9, recover: 0.97, minSamples: 40, cooldownMs: 60_000, secondsPerCall: 1 };
const noise = { ...DEFAULT_REFERENCE_NOISE, seed: 11 };

// ------------------------------------------------------------------ data + embeddings
const datasets: Array<{ name: string; stream: StreamItem[] }> = [
  { name: "ag_news", stream: loadAgNewsStream({ limit: Number(args["ag-news"]), exactShare: 0, paraphraseShare: 0 }) },
  { name: "banking77", stream: loadBankingStream(Number(args.banking)) },
];

async function embeddings(name: string, texts: string[]): Promise<{ vectors: Float32Array[]; seconds: number; fromDisk: boolean }> {
  const dir = path.resolve(import.meta.dirname, "../.sieve/bench-cache");
  const file = path.join(dir, `quality-use-lite-512-${name}-${createHash("sha256").update(texts.join("\u0000")).digest("hex").slice(0, 16)}`);
  if (!args["fresh-embeddings"] && existsSync(`${file}.f32`)) {
    const buf = readFileSync(`${file}.f32`);
    const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const meta = JSON.parse(readFileSync(`${file}.json`, "utf8")) as { seconds: number };
    return { vectors: texts.map((_, i) => all.subarray(i * 512, (i + 1) * 512)), seconds: meta.seconds, fromDisk: true };
  }
  const res = await embedWithPool(texts, { workers: Number(args.workers) });
  mkdirSync(dir, { recursive: true });
  const all = new Float32Array(texts.length * 512);
  res.vectors.forEach((v, i) => all.set(v, i * 512));
  writeFileSync(`${file}.f32`, Buffer.from(all.buffer));
  writeFileSync(`${file}.json`, JSON.stringify({ seconds: res.seconds }));
  return { vectors: res.vectors, seconds: res.seconds, fromDisk: false };
}

// ------------------------------------------------------------------ run
const results: unknown[] = [];
const details: unknown[] = [];
for (const ds of datasets) {
  const texts = ds.stream.map((s) => s.text);
  const gold = ds.stream.map((s) => s.label);
  const labels = [...new Set(gold)].sort();
  const params: TaskParams = { task: "classify", labels };
  log(`${ds.name}: ${texts.length} items, ${labels.length} labels`);

  const unique = [...new Set(texts.map(normaliseText))];
  const emb = await embeddings(ds.name, unique);
  const avgChars = Math.round(unique.reduce((a, t) => a + t.length, 0) / unique.length);
  log(`  embeddings: ${unique.length} texts (avg ${avgChars} chars) ${emb.fromDisk ? "read from disk; measured when computed:" : "computed:"} ${emb.seconds.toFixed(0)} s on ${args.workers} thread(s), ${(unique.length / emb.seconds).toFixed(0)} texts/s`);
  const vecOf = new Map(unique.map((t, i) => [t, emb.vectors[i]!]));

  const llmFile = path.resolve(import.meta.dirname, "../.sieve/bench-cache", `quality-llm-${ds.name}-${createHash("sha256").update(JSON.stringify([texts, noise, MAX_ITEMS, RECHECK])).digest("hex").slice(0, 16)}.json`);
  let single: Awaited<ReturnType<typeof singleCalls>>, packed: Awaited<ReturnType<typeof packedCalls>>, controlled: Awaited<ReturnType<typeof controlledCalls>>;
  if (args["cached-llm"] && existsSync(llmFile)) {
    // JSON writes a missing answer (undefined) as null: read it back as undefined.
    ({ single, packed, controlled } = JSON.parse(readFileSync(llmFile, "utf8"), (_k, v: unknown) => (v === null ? undefined : v)));
    log(`  (a) LLM answers read from ${path.basename(llmFile)} (--cached-llm)`);
  } else {
    const llm = await startReferenceLlm(ds.stream.map((s) => ({ text: s.text, label: s.label })), noise);
    try {
      single = await singleCalls(llm, params, texts, gold);
      log(`  (a) one call per item: accuracy ${(single.accuracy * 100).toFixed(1)}% (${single.calls} calls)`);
      packed = await packedCalls(llm, params, texts, gold, MAX_ITEMS);
      log(`  (a) packed, maxItems ${MAX_ITEMS}: accuracy ${(packed.accuracy * 100).toFixed(1)}% (${packed.calls} calls)`);
      controlled = await controlledCalls(llm, params, texts, gold, { ceiling: MAX_ITEMS, minItems: 1, ...RECHECK, seed: 5 });
      log(`  (a) packed + re-check + auto maxItems: accuracy ${(controlled.accuracy * 100).toFixed(1)}% (${controlled.calls} calls incl. ${controlled.rechecks} re-checks; agreement ${((controlled.agreement ?? 0) * 100).toFixed(1)}%; maxItems ${controlled.trace.map(([i, m]) => `${m}@${i}`).join(" -> ")})`);
    } finally {
      await llm.close();
    }
    writeFileSync(llmFile, JSON.stringify({ single, packed, controlled }));
  }

  // (b) caches learn from what the LLM answered in the live configuration (packed + controller).
  // `alone`: the item's answer asked alone (what audits and adjudications get).
  const replay = (llmLabels: Array<string | undefined>, alone: Array<string | undefined>): ReplayItem[] =>
    ds.stream.map((s, i) => ({ text: s.text, gold: s.label, llm: llmLabels[i], alone: alone[i], vector: vecOf.get(normaliseText(s.text))! }));
  const noisy = replay(controlled.labels, single.labels);
  const singleLabelled = replay(single.labels, single.labels);
  const clean = replay(gold, gold);
  type ReplayOpts = Parameters<typeof replayLearned>[1];
  const planned: Array<[string, ReplayItem[], ReplayOpts]> = [];
  for (const kind of ["knn", "centroid", "hybrid"] as const) {
    for (const [labelsName, items] of [["llm-labels", noisy], ["single-call-labels", singleLabelled], ["gold-labels", clean]] as const) {
      for (const maxError of [0.01, 0.05]) planned.push([`${kind}-${labelsName}-bound-${maxError * 100}pct`, items, { kind, ...LEARNED, maxError, seed: 21 }]);
    }
  }
  // Calibration variants (docs/quality.md): a window of recent points; adjudication of confident
  // disagreements with a packed label by the item's answer alone; a scan that starts at 4x the
  // points a zero-error sample needs (startFactor, fixed in advance).
  for (const kind of ["knn", "hybrid"] as const) {
    for (const maxError of [0.01, 0.05]) {
      const name = `${kind}-llm-labels-bound-${maxError * 100}pct`;
      const base = { kind, ...LEARNED, maxError, seed: 21 };
      planned.push([`${name}-window-2000`, noisy, { ...base, calibrationWindow: 2_000 }]);
      planned.push([`${name}-adjudicate-0.5`, noisy, { ...base, adjudicateAbove: 0.5 }]);
      planned.push([`${name}-adjudicate-0.5-start-4`, noisy, { ...base, adjudicateAbove: 0.5, startFactor: 4 }]);
      planned.push([`${name}-adjudicate-0.9-start-4`, noisy, { ...base, adjudicateAbove: 0.9, startFactor: 4 }]);
      planned.push([`${name}-adjudicate-0.97-start-4`, noisy, { ...base, adjudicateAbove: 0.97, startFactor: 4 }]);
      planned.push([`${name}-adjudicate-0.5-window-2000-start-4`, noisy, { ...base, adjudicateAbove: 0.5, calibrationWindow: 2_000, startFactor: 4 }]);
      planned.push([`${kind}-gold-labels-bound-${maxError * 100}pct-start-4`, clean, { ...base, startFactor: 4 }]);
    }
  }
  const only = args.only === undefined ? undefined : new RegExp(args.only);
  const variants: Record<string, ReturnType<typeof replayLearned>> = {};
  for (const [name, items, opts] of planned) if (!only || only.test(name)) variants[name] = replayLearned(items, opts);
  for (const [k, v] of Object.entries(variants)) {
    log(`  (b) learned ${k}: answered ${(v.answeredShare * 100).toFixed(1)}% (2nd half ${(v.answeredShareSecondHalf * 100).toFixed(1)}%), error vs gold ${v.errorRate === null ? "-" : (v.errorRate * 100).toFixed(2) + "%"} (2nd half ${v.errorRateSecondHalf === null ? "-" : (v.errorRateSecondHalf * 100).toFixed(2) + "%"}), threshold ${v.finalThreshold?.toFixed(3) ?? "none"}, first at ${v.firstAnswerAt}, adjudications ${v.adjudications} (${v.adjudicatedForModel} for the model), model ${v.modelSeconds.toFixed(1)} s`);
  }
  if (only) continue;
  const ceilings: Record<string, { share: number; shareSecondHalf: number }> = {};
  for (const kind of ["knn", "hybrid"] as const) {
    for (const label of ["llm", "gold"] as const) {
      const c = hindsightCeiling(noisy, { kind, label, maxError: 0.01, from: LEARNED.minExamples });
      ceilings[`${kind}-${label}-labels-1pct`] = { share: round(c.share, 4), shareSecondHalf: round(c.shareSecondHalf, 4) };
      log(`  (b) hindsight ceiling ${kind}, trained on ${label} labels, error <= 1% vs gold: ${(c.share * 100).toFixed(1)}% of the stream, ${(c.shareSecondHalf * 100).toFixed(1)}% of its second half`);
    }
  }
  // The most any valid certification could give this model (bench/lib/quality-cache.ts crossFitBounds).
  const crossFit: Record<string, ReturnType<typeof crossFitBounds>> = {};
  for (const kind of ["knn", "hybrid"] as const) {
    for (const label of ["llm", "gold"] as const) {
      const r = crossFitBounds(noisy, { kind, label, folds: 10, delta: 0.05, shares: [0.1, 0.2, 0.3, 0.4, 0.5] });
      crossFit[`${kind}-${label}-labels`] = { tightestBound: round(r.tightestBound, 4), tightestAtShare: round(r.tightestAtShare, 4), cuts: r.cuts.map((c) => ({ ...c, share: round(c.share, 4), errorRate: round(c.errorRate, 4), upperBound: round(c.upperBound, 4) })) };
      const at30 = r.cuts.find((c) => c.requested === 0.3)!;
      log(`  (b) cross-fitted ${kind}, trained on ${label} labels: tightest 95% bound over >= 10% of the stream ${(r.tightestBound * 100).toFixed(2)}% (at ${(r.tightestAtShare * 100).toFixed(1)}%); top 30%: ${at30.errors} wrong vs gold (${(at30.errorRate * 100).toFixed(2)}%, bound ${(at30.upperBound * 100).toFixed(2)}%)`);
    }
  }
  const semantic = await replaySemantic(noisy, SEMANTIC_THRESHOLD);
  log(`  (b) exact + semantic at ${SEMANTIC_THRESHOLD}: answered ${(semantic.answeredShare * 100).toFixed(1)}% (${semantic.exactHits} exact, ${semantic.semanticHits} semantic), error vs gold ${semantic.errorRate === null ? "-" : (semantic.errorRate * 100).toFixed(2) + "%"}`);

  // The default configuration (hybrid, bound 1%), and the best measured one (docs/quality.md).
  const primary = variants["hybrid-llm-labels-bound-1pct"]!;
  const adjudicated = variants[ADJUDICATED]!;
  const r4 = (x: number | null) => (x === null ? null : round(x, 4));
  results.push({
    name: ds.name,
    items: texts.length,
    packed: { accuracy: r4(packed.accuracy) },
    single: { accuracy: r4(single.accuracy) },
    learned: {
      answeredShare: r4(primary.answeredShare),
      errorRate: r4(primary.errorRate),
      answeredShareSecondHalf: r4(primary.answeredShareSecondHalf),
      errorRateSecondHalf: r4(primary.errorRateSecondHalf),
    },
    learnedAdjudicated: {
      variant: ADJUDICATED,
      answeredShare: r4(adjudicated.answeredShare),
      errorRate: r4(adjudicated.errorRate),
      answeredShareSecondHalf: r4(adjudicated.answeredShareSecondHalf),
      errorRateSecondHalf: r4(adjudicated.errorRateSecondHalf),
      adjudications: adjudicated.adjudications,
    },
    semantic: { answeredShare: r4(semantic.answeredShare), errorRate: r4(semantic.errorRate) },
  });
  details.push({
    name: ds.name,
    items: texts.length,
    labels: labels.length,
    embeddings: { texts: unique.length, avgChars, seconds: round(emb.seconds, 1), threads: Number(args.workers), textsPerSecond: round(unique.length / emb.seconds, 1), fromDisk: emb.fromDisk },
    single: { accuracy: r4(single.accuracy), calls: single.calls },
    packed: { accuracy: r4(packed.accuracy), calls: packed.calls, maxItems: MAX_ITEMS },
    packedWithRecheck: { accuracy: r4(controlled.accuracy), calls: controlled.calls, rechecks: controlled.rechecks, agreement: r4(controlled.agreement), maxItemsTrace: controlled.trace, finalMaxItems: controlled.finalMaxItems },
    hindsightCeiling: ceilings,
    crossFit,
    learned: Object.fromEntries(Object.entries(variants).map(([k, v]) => [k, { ...v, modelSeconds: round(v.modelSeconds, 2) }])),
    semantic: { threshold: SEMANTIC_THRESHOLD, ...semantic },
  });
}

if (args.only !== undefined) {
  log("--only: no results written");
  process.exit(0);
}
const out = { datasets: results };
const resultsDir = path.resolve(import.meta.dirname, "results");
mkdirSync(resultsDir, { recursive: true });
writeFileSync(path.join(resultsDir, "quality-latest.json"), JSON.stringify(out, null, 2) + "\n");
writeFileSync(
  path.join(resultsDir, "quality-details-latest.json"),
  JSON.stringify({ date: new Date().toISOString(), seconds: round((performance.now() - started) / 1000, 0), machine: machineInfo(), config: { noise, maxItems: MAX_ITEMS, recheck: RECHECK, learned: LEARNED, semanticThreshold: SEMANTIC_THRESHOLD }, datasets: details }, null, 2) + "\n",
);
console.log(JSON.stringify(out, null, 2));
log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s; wrote bench/results/quality-latest.json and quality-details-latest.json`);
