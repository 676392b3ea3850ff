/**
 * The LLM side of bench/quality.ts: Sieve's own OpenAI provider client talking to the provider
 * SIMULATOR in reference mode (gold labels as its answers, with noise). Three ways to answer a
 * stream: one call per item, packed calls of maxItems, and packed calls whose maxItems is run by
 * the live re-check controller (apps/workers/src/quality/controller.ts) on a simulated clock.
 */
import { validateResults, type TaskParams } from "@sieve/shared";
import { createProvider } from "../../apps/workers/src/providers/index.js";
import type { LlmProvider } from "../../apps/workers/src/providers/types.js";
import { initialState, observe, sampleForRecheck, type ControllerConfig } from "../../apps/workers/src/quality/controller.js";
import { shuffleInPlace } from "../../apps/workers/src/quality/shuffle.js";
import { ReferenceAnswers, startSimulator, type ReferenceNoise, type Simulator } from "../../tools/simulator/src/index.js";
import { rng } from "./pipeline-util.js";

export interface LlmHarness {
  sim: Simulator;
  provider: LlmProvider;
  model: string;
  close(): Promise<void>;
}

export async function startReferenceLlm(gold: Array<{ text: string; label: string }>, noise: ReferenceNoise): Promise<LlmHarness> {
  const ref = new ReferenceAnswers(noise);
  for (const g of gold) ref.addLabel(g.text, g.label);
  const sim = await startSimulator({ answers: ref });
  const model = "gpt-4.1-mini";
  const provider = createProvider({ provider: "openai", baseURL: `${sim.url}/v1`, apiKey: "sk-simulator", defaultModel: model, simulated: true });
  return { sim, provider, model, close: () => sim.close() };
}

/** One structured call; returns the label per text (undefined when the answer was invalid). */
export async function classifyCall(llm: LlmHarness, params: TaskParams, texts: string[], seed: number): Promise<Array<string | undefined>> {
  // Items are shuffled within a call, as the aggregator does, and mapped back by id.
  const order = texts.map((_, i) => i);
  shuffleInPlace(order, rng(seed));
  const ids = order.map((_, k) => `i${k + 1}`);
  const res = await llm.provider.callStructured({
    model: llm.model,
    params,
    items: order.map((idx, k) => ({ id: ids[k]!, text: texts[idx]! })),
    timeoutMs: 60_000,
  });
  const v = res.answer === undefined ? undefined : validateResults(params, ids, res.answer);
  const out = new Array<string | undefined>(texts.length);
  order.forEach((idx, k) => {
    const o = v?.ok.get(ids[k]!) as { label: string } | undefined;
    out[idx] = o?.label;
  });
  return out;
}

/** Runs `fn` over `jobs` with at most `concurrency` at once, keeping order. */
export async function pool<T, R>(jobs: readonly T[], concurrency: number, fn: (job: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await fn(jobs[i]!, i);
      }
    }),
  );
  return out;
}

export interface AnswerRun {
  labels: Array<string | undefined>;
  calls: number;
  accuracy: number;
}

function accuracyOf(labels: Array<string | undefined>, gold: readonly string[]): number {
  let right = 0;
  labels.forEach((l, i) => {
    if (l === gold[i]) right++;
  });
  return right / gold.length;
}

export async function singleCalls(llm: LlmHarness, params: TaskParams, texts: string[], gold: string[]): Promise<AnswerRun> {
  const labels = (await pool(texts, 16, (t, i) => classifyCall(llm, params, [t], i))).map((r) => r[0]);
  return { labels, calls: texts.length, accuracy: accuracyOf(labels, gold) };
}

export async function packedCalls(llm: LlmHarness, params: TaskParams, texts: string[], gold: string[], maxItems: number): Promise<AnswerRun> {
  const chunks: number[][] = [];
  for (let i = 0; i < texts.length; i += maxItems) chunks.push(texts.slice(i, i + maxItems).map((_, k) => i + k));
  const res = await pool(chunks, 8, (idx, c) => classifyCall(llm, params, idx.map((i) => texts[i]!), 1_000 + c));
  const labels = new Array<string | undefined>(texts.length);
  chunks.forEach((idx, c) => idx.forEach((i, k) => (labels[i] = res[c]![k])));
  return { labels, calls: chunks.length, accuracy: accuracyOf(labels, gold) };
}

export interface ControlledRun extends AnswerRun {
  rechecks: number;
  agreement: number | null;
  /** maxItems over the stream: [item index where it took effect, value]. */
  trace: Array<[number, number]>;
  finalMaxItems: number;
}

/**
 * Packed calls in stream order, one at a time (the controller must see each call's re-checks
 * before the next call is cut). A sample of each call's items is asked again alone; agreement
 * feeds the controller; the simulated clock advances `secondsPerCall` per call.
 */
export async function controlledCalls(
  llm: LlmHarness,
  params: TaskParams,
  texts: string[],
  gold: string[],
  cfg: ControllerConfig & { rate: number; secondsPerCall: number; seed: number },
): Promise<ControlledRun> {
  let state = initialState(cfg);
  const rand = rng(cfg.seed);
  const labels = new Array<string | undefined>(texts.length);
  const trace: Array<[number, number]> = [[0, state.maxItems]];
  let now = 0;
  let calls = 0;
  let rechecks = 0;
  let agreed = 0;
  for (let i = 0; i < texts.length; ) {
    const n = Math.min(state.maxItems, texts.length - i);
    const idx = Array.from({ length: n }, (_, k) => i + k);
    const out = await classifyCall(llm, params, idx.map((j) => texts[j]!), 5_000 + calls);
    calls++;
    idx.forEach((j, k) => (labels[j] = out[k]));
    const sample = idx.filter((_, k) => out[k] !== undefined && sampleForRecheck(n, cfg.rate, rand));
    if (sample.length > 0) {
      const alone = await pool(sample, 8, (j, s) => classifyCall(llm, params, [texts[j]!], 9_000_000 + j + s));
      let a = 0;
      sample.forEach((j, s) => {
        if (alone[s]![0] === labels[j]) a++;
      });
      rechecks += sample.length;
      calls += sample.length;
      agreed += a;
      const before = state.maxItems;
      state = observe(cfg, state, { agreed: a, total: sample.length, callItems: n }, now * 1000).state;
      if (state.maxItems !== before) trace.push([i + n, state.maxItems]);
    }
    now += cfg.secondsPerCall;
    i += n;
  }
  return { labels, calls, accuracy: accuracyOf(labels, gold), rechecks, agreement: rechecks ? agreed / rechecks : null, trace, finalMaxItems: state.maxItems };
}
