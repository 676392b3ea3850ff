/**
 * The simulated vLLM engine: a scheduler with `--max-num-seqs` slots (requests beyond it wait),
 * a KV cache whose use is the tokens of the running requests, and the counters `/metrics`
 * exposes in vLLM's Prometheus names.
 */

/** vLLM knobs. */
export interface VllmOptions {
  /** The served model name (`--served-model-name`). @defaultValue "Qwen/Qwen2.5-7B-Instruct-AWQ" */
  model?: string;
  /** Requests running at once (`--max-num-seqs`); more wait. @defaultValue 256 */
  maxNumSeqs?: number;
  /** KV cache capacity, in tokens; `vllm:kv_cache_usage_perc` = running tokens / this. @defaultValue 65536 */
  kvCacheTokens?: number;
  /** Required bearer token (`--api-key`); unset = no auth, as vLLM by default. @defaultValue undefined */
  apiKey?: string;
  /**
   * Requests using the `guided_*` fields removed in vLLM v0.12.0. Real vLLM accepts them and
   * silently ignores them (HTTP 200, unconstrained output); `reject` (the default) answers 400 so
   * the mistake is loud in tests; `ignore` imitates vLLM and answers plain text.
   * @defaultValue "reject"
   */
  legacyGuided?: "reject" | "ignore";
}

export const DEFAULT_VLLM_MODEL = "Qwen/Qwen2.5-7B-Instruct-AWQ";

/** vLLM's buckets for `vllm:time_to_first_token_seconds`. */
export const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560,
];

export class VllmEngine {
  readonly model: string;
  readonly maxNumSeqs: number;
  readonly kvCacheTokens: number;
  readonly apiKey: string | undefined;
  readonly legacyGuided: "reject" | "ignore";

  running = 0;
  private kvTokens = 0;
  private readonly queue: Array<() => void> = [];
  private c = VllmEngine.zeroCounters();

  constructor(opts: VllmOptions = {}) {
    this.model = opts.model ?? DEFAULT_VLLM_MODEL;
    this.maxNumSeqs = opts.maxNumSeqs ?? 256;
    this.kvCacheTokens = opts.kvCacheTokens ?? 65_536;
    this.apiKey = opts.apiKey;
    this.legacyGuided = opts.legacyGuided ?? "reject";
  }

  private static zeroCounters() {
    return {
      prefixHits: 0,
      prefixQueries: 0,
      promptTokens: 0,
      generationTokens: 0,
      success: { stop: 0, length: 0 } as Record<"stop" | "length", number>,
      ttftBuckets: TTFT_BUCKETS.map(() => 0),
      ttftSum: 0,
      ttftCount: 0,
    };
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Runs `fn` in a scheduler slot holding `tokens` of KV cache; undefined when aborted while waiting. */
  async run<T>(signal: AbortSignal, tokens: number, fn: () => Promise<T>): Promise<T | undefined> {
    if (!(await this.acquire(signal))) return undefined;
    this.kvTokens += tokens;
    try {
      return await fn();
    } finally {
      this.kvTokens -= tokens;
      this.release();
    }
  }

  private acquire(signal: AbortSignal): Promise<boolean> {
    if (this.running < this.maxNumSeqs) {
      this.running++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const onAbort = () => {
        const i = this.queue.indexOf(start);
        if (i >= 0) this.queue.splice(i, 1);
        resolve(false);
      };
      const start = () => {
        signal.removeEventListener("abort", onAbort);
        this.running++;
        resolve(true);
      };
      this.queue.push(start);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private release(): void {
    this.running--;
    this.queue.shift()?.();
  }

  /** One finished request: its prefix-cache lookup, tokens, finish reason and time to first token. */
  record(r: { promptTokens: number; cachedTokens: number; completionTokens: number; finish: "stop" | "length"; ttftS: number }): void {
    const c = this.c;
    c.prefixQueries += r.promptTokens;
    c.prefixHits += r.cachedTokens;
    c.promptTokens += r.promptTokens;
    c.generationTokens += r.completionTokens;
    c.success[r.finish]++;
    TTFT_BUCKETS.forEach((le, i) => {
      if (r.ttftS <= le) c.ttftBuckets[i]!++;
    });
    c.ttftSum += r.ttftS;
    c.ttftCount++;
  }

  /** Counters back to zero (as after a vLLM restart); gauges keep reflecting live requests. */
  resetCounters(): void {
    this.c = VllmEngine.zeroCounters();
  }

  /** Prometheus text exposition format, vLLM metric names. */
  metrics(): string {
    const l = `engine="0",model_name="${this.model.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
    const c = this.c;
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", [
      `vllm:num_requests_running{${l}} ${this.running}`,
    ]);
    metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", [
      `vllm:num_requests_waiting{${l}} ${this.waiting}`,
    ]);
    metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", [
      `vllm:kv_cache_usage_perc{${l}} ${Math.min(1, this.kvTokens / this.kvCacheTokens)}`,
    ]);
    metric("vllm:prefix_cache_queries_total", "counter", "Prefix cache queries, in terms of number of queried tokens.", [
      `vllm:prefix_cache_queries_total{${l}} ${c.prefixQueries}`,
    ]);
    metric("vllm:prefix_cache_hits_total", "counter", "Prefix cache hits, in terms of number of cached tokens.", [
      `vllm:prefix_cache_hits_total{${l}} ${c.prefixHits}`,
    ]);
    metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", [
      `vllm:prompt_tokens_total{${l}} ${c.promptTokens}`,
    ]);
    metric("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", [
      `vllm:generation_tokens_total{${l}} ${c.generationTokens}`,
    ]);
    metric("vllm:request_success_total", "counter", "Count of successfully processed requests.", [
      `vllm:request_success_total{${l},finished_reason="stop"} ${c.success.stop}`,
      `vllm:request_success_total{${l},finished_reason="length"} ${c.success.length}`,
    ]);
    metric("vllm:time_to_first_token_seconds", "histogram", "Histogram of time to first token in seconds.", [
      ...TTFT_BUCKETS.map((le, i) => `vllm:time_to_first_token_seconds_bucket{${l},le="${le}"} ${c.ttftBuckets[i]}`),
      `vllm:time_to_first_token_seconds_bucket{${l},le="+Inf"} ${c.ttftCount}`,
      `vllm:time_to_first_token_seconds_sum{${l}} ${c.ttftSum}`,
      `vllm:time_to_first_token_seconds_count{${l}} ${c.ttftCount}`,
    ]);
    return out.join("\n") + "\n";
  }
}
