/**
 * The simulated vLLM engine: a continuous-batching scheduler (batching.ts) with `--max-num-seqs`
 * slots and a KV cache (requests beyond them wait), the counters `/metrics` exposes in vLLM's
 * Prometheus names, and lifecycle knobs: a restart (`/health` 503 while loading), a crash
 * (in-flight requests cut, then down, then loading) and a slowdown.
 */
import { BatchScheduler, type PerfModel } from "./batching.js";

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
  /**
   * Continuous-batching timing (batching.ts): requests take the time a GPU would need, and
   * throughput saturates. Unset: answers come at once (functional tests), only slots and KV
   * reservations are modelled. @defaultValue undefined
   */
  perf?: PerfModel;
  /** KV tokens reserved for the output of a request that sends no max_tokens. @defaultValue 512 */
  defaultMaxTokens?: number;
}

/** Lifecycle of the simulated server process. */
export type EngineState = "ready" | "down" | "loading" | "hung";

/** What a request's answer costs the engine, known once the answer is written. */
export interface GenerationWork {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  /** Set by the engine when perf timing is on: when the first token was produced (performance.now()). */
  firstTokenAt?: number;
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

  readonly scheduler: BatchScheduler;
  readonly timed: boolean;
  readonly defaultMaxTokens: number;
  private c = VllmEngine.zeroCounters();
  private lifecycle: { state: EngineState; until: number; loadingMs: number } = { state: "ready", until: 0, loadingMs: 0 };

  constructor(opts: VllmOptions = {}) {
    this.model = opts.model ?? DEFAULT_VLLM_MODEL;
    this.maxNumSeqs = opts.maxNumSeqs ?? 256;
    this.kvCacheTokens = opts.kvCacheTokens ?? 65_536;
    this.apiKey = opts.apiKey;
    this.legacyGuided = opts.legacyGuided ?? "reject";
    this.timed = opts.perf !== undefined;
    this.defaultMaxTokens = opts.defaultMaxTokens ?? 512;
    this.scheduler = new BatchScheduler({ maxNumSeqs: this.maxNumSeqs, kvCacheTokens: this.kvCacheTokens }, opts.perf);
  }

  get running(): number {
    return this.scheduler.numRunning;
  }

  /** "ready", "down" (the process is gone: connections are reset) or "loading" (HTTP 503). */
  get state(): EngineState {
    const now = Date.now();
    if (this.lifecycle.state === "hung" && now >= this.lifecycle.until) this.unhang();
    const l = this.lifecycle;
    if (l.state === "down" && now >= l.until) this.lifecycle = { state: "loading", until: l.until + l.loadingMs, loadingMs: 0 };
    const m = this.lifecycle;
    if (m.state === "loading" && now >= m.until) this.lifecycle = { state: "ready", until: 0, loadingMs: 0 };
    return this.lifecycle.state;
  }

  /** A restart: `/health` (and every route) answers 503 "loading" for `loadingS` seconds; counters restart at zero. */
  restart(loadingS: number): void {
    this.scheduler.crash();
    this.resetCounters();
    this.lifecycle = { state: "loading", until: Date.now() + loadingS * 1000, loadingMs: 0 };
  }

  /** A crash: in-flight requests lose their connection; down for `downS` s, then loading for `loadingS` s. */
  crash(downS: number, loadingS: number): void {
    this.scheduler.crash();
    this.resetCounters();
    this.lifecycle = { state: "down", until: Date.now() + downS * 1000, loadingMs: loadingS * 1000 };
  }

  /**
   * A frozen server: for `seconds`, no route answers (requests are held until the client gives
   * up) and requests already running make no progress. Then it serves again.
   */
  hang(seconds: number): void {
    if (this.lifecycle.state !== "hung") this.slowdownBeforeHang = this.scheduler.slowdown;
    this.scheduler.slowdown = 1e9;
    this.lifecycle = { state: "hung", until: Date.now() + seconds * 1000, loadingMs: 0 };
    clearTimeout(this.hangTimer);
    this.hangTimer = setTimeout(() => this.unhang(), seconds * 1000);
    this.hangTimer.unref?.();
  }

  private slowdownBeforeHang = 1;
  private hangTimer: NodeJS.Timeout | undefined;

  private unhang(): void {
    clearTimeout(this.hangTimer);
    if (this.lifecycle.state !== "hung") return;
    this.lifecycle = { state: "ready", until: 0, loadingMs: 0 };
    this.scheduler.advance();
    this.scheduler.slowdown = this.slowdownBeforeHang;
  }

  /** Every decode step and prefill costs `factor` times more (1 = normal). */
  setSlowdown(factor: number): void {
    this.scheduler.slowdown = factor;
  }

  get slowdown(): number {
    return this.scheduler.slowdown;
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
    return this.scheduler.numWaiting;
  }

  /**
   * Runs `fn` in a scheduler slot holding `promptTokens + maxTokens` of KV cache; with perf
   * timing, then spends the prefill and decode time of what `fn` produced. Undefined when the
   * client went away while waiting; throws EngineCrashed when the engine crashes meanwhile.
   */
  async run<T extends GenerationWork>(signal: AbortSignal, promptTokens: number, maxTokens: number | undefined, fn: () => Promise<T | undefined>): Promise<T | undefined> {
    let seq;
    try {
      seq = await this.scheduler.admit(promptTokens + (maxTokens ?? this.defaultMaxTokens), signal);
    } catch (e) {
      if (signal.aborted) return undefined;
      throw e;
    }
    try {
      const work = await fn();
      if (work && this.timed) {
        work.firstTokenAt = await this.scheduler.generate(seq, work.promptTokens - work.cachedTokens, work.completionTokens);
      }
      return work;
    } finally {
      this.scheduler.release(seq);
    }
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
      `vllm:kv_cache_usage_perc{${l}} ${this.scheduler.kvUsage}`,
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
