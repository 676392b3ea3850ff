/**
 * CLI: runs the provider simulator (a TEST TOOL) until SIGINT/SIGTERM.
 *   npx tsx tools/simulator/src/main.ts --port 4010 --rate-429 0.1 --latency-ms 200
 */
import { parseArgs } from "node:util";
import { createLogger } from "@sieve/shared/logger";
import { startSimulator } from "./server.js";
import { SimulatorFaults } from "./faults.js";
import { ReferenceAnswers, parseNoiseSpec } from "./reference.js";

const HELP = `Sieve provider SIMULATOR: a local TEST TOOL that speaks the OpenAI, Anthropic and vLLM
wire protocols with synthetic answers and injectable faults. Not a real provider.

Usage: npx tsx tools/simulator/src/main.ts [options]

  --port N                 port (default 4010; 0 = any free port)
  --host H                 interface (default 127.0.0.1)
  --latency-ms N           latency added to every generation request, ms
  --jitter-ms N            extra uniform random latency 0..N, ms
  --rate-429 P             probability of a 429 (with retry-after)
  --retry-after-s N        retry-after of injected 429s, seconds (default 1)
  --rate-5xx P             probability of a 500 (OpenAI/vLLM) / 529 overloaded (Anthropic)
  --rate-timeout P         probability of never answering (until the client aborts)
  --rate-truncated P       probability of JSON cut in half (finish_reason "length")
  --rate-drop-item P       probability of one result entry dropped
  --rate-duplicate-item P  probability of one result entry duplicated
  --rate-bad-value P       probability of one invalid value (label not in enum / empty translation)
  --seed N                 seed for the fault PRNG (reproducible runs)
  --answers FILE           reference mode: answer from a JSONL file of known answers
                           ({"text","label"} / {"text","targetLanguage","translation"}) with noise
  --noise SPEC             noise of reference answers, e.g. base:0.97,perItem:0.002,position:0.03,min:0.5,seed:7
                           (default: those values, seed 0; "base:1,perItem:0,position:0" = no noise)
  --vllm-model NAME        model served under /vllm (default Qwen/Qwen2.5-7B-Instruct-AWQ)
  --vllm-max-num-seqs N    concurrent vLLM requests before queueing (default 256)
  --vllm-kv-cache-tokens N KV cache capacity of the simulated engine, tokens (default 65536)
  --vllm-realistic         continuous-batching timing (calibrated to one H100, Llama-3.1-8B FP8)
  --vllm-time-scale X      with --vllm-realistic: simulated time runs X times faster (default 1)
  --help                   this text

Rates are probabilities 0..1 per request. Items whose text contains SIM_POISON are never answered.
Control API: GET /_sim, GET|POST /_sim/faults, GET /_sim/stats, POST /_sim/reset, POST /_sim/clear-caches,
GET|POST /_sim/vllm ({"restart":{"loadingS":30}}, {"crash":{"downS":5,"loadingS":30}}, {"slowdown":3}).`;

const FAULT_FLAGS: Record<string, keyof SimulatorFaults> = {
  "latency-ms": "latencyMs",
  "jitter-ms": "latencyJitterMs",
  "rate-429": "rate429",
  "retry-after-s": "retryAfterS",
  "rate-5xx": "rate5xx",
  "rate-timeout": "rateTimeout",
  "rate-truncated": "rateTruncated",
  "rate-drop-item": "rateDropItem",
  "rate-duplicate-item": "rateDuplicateItem",
  "rate-bad-value": "rateBadValue",
  seed: "seed",
};

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) {
    console.error(`--${flag} must be a number (got "${v}")`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string" },
    "vllm-model": { type: "string" },
    "vllm-max-num-seqs": { type: "string" },
    "vllm-kv-cache-tokens": { type: "string" },
    "vllm-realistic": { type: "boolean" },
    "vllm-time-scale": { type: "string" },
    answers: { type: "string" },
    noise: { type: "string" },
    help: { type: "boolean" },
    ...Object.fromEntries(Object.keys(FAULT_FLAGS).map((k) => [k, { type: "string" as const }])),
  },
  strict: true,
});
const flags = values as Record<string, string | boolean | undefined>;

if (flags.help) {
  console.log(HELP);
  process.exit(0);
}

const rawFaults: Record<string, number> = {};
for (const [flag, key] of Object.entries(FAULT_FLAGS)) {
  const v = num(flag, flags[flag] as string | undefined);
  if (v !== undefined) rawFaults[key] = v;
}
const faults = SimulatorFaults.safeParse(rawFaults);
if (!faults.success) {
  console.error(`invalid fault flags: ${faults.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`).join("; ")}`);
  process.exit(2);
}

let answers: ReferenceAnswers | undefined;
try {
  if (flags.answers) answers = ReferenceAnswers.load(flags.answers as string, parseNoiseSpec((flags.noise as string | undefined) ?? ""));
  else if (flags.noise) throw new Error("--noise needs --answers FILE");
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(2);
}

const logger = createLogger({ name: "sieve-simulator" });
const maxNumSeqs = num("vllm-max-num-seqs", flags["vllm-max-num-seqs"] as string | undefined);
const kvCacheTokens = num("vllm-kv-cache-tokens", flags["vllm-kv-cache-tokens"] as string | undefined);
const timeScale = num("vllm-time-scale", flags["vllm-time-scale"] as string | undefined);
const sim = await startSimulator({
  port: num("port", flags.port as string | undefined) ?? 4010,
  host: (flags.host as string | undefined) ?? "127.0.0.1",
  faults: faults.data,
  logger,
  ...(answers ? { answers } : {}),
  vllm: {
    ...(flags["vllm-model"] ? { model: flags["vllm-model"] as string } : {}),
    ...(maxNumSeqs !== undefined ? { maxNumSeqs } : {}),
    ...(kvCacheTokens !== undefined ? { kvCacheTokens } : {}),
    ...(flags["vllm-realistic"] ? { perf: timeScale !== undefined ? { timeScale } : {} } : {}),
  },
});
console.log(
  [
    `Sieve provider SIMULATOR (test tool, not a real provider) on ${sim.url}`,
    `  OpenAI     baseURL ${sim.url}/v1        (any Bearer key)`,
    `  Anthropic  baseURL ${sim.url}           (any x-api-key)`,
    `  vLLM       baseURL ${sim.url}/vllm/v1   (/vllm/health, /vllm/metrics)`,
    `  control    ${sim.url}/_sim/faults, ${sim.url}/_sim/stats`,
    ...(answers ? [`  reference  ${JSON.stringify(answers.size())} known answers, noise ${JSON.stringify(answers.noise)}`] : []),
  ].join("\n"),
);

let closing = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    void sim.close().then(() => process.exit(0));
  });
}
