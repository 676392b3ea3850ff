/**
 * The local GPU lane's provider: several vLLM engines (data-parallel replicas, each with its
 * model), each behind its own adaptive limiter (limiter.ts), health-gated, drained on failure,
 * with failover to a cloud route when no engine is healthy for `failoverAfterMs`.
 * docs/gpu-lane.md explains the policy; this file is its plumbing.
 *
 * - An engine takes calls only after `/health` answered 200 (vLLM can take minutes to load).
 * - A monitor polls every engine's `/metrics` every `pollMs` and feeds the gauges to its limiter.
 * - An engine whose calls or probes fail `failAfter` times in a row is drained: its in-flight
 *   calls are aborted and re-sent to another engine (no result exists for them yet, so nothing
 *   is answered twice; the results table's primary key guarantees it anyway). It comes back once
 *   `/health` answers again, starting low.
 * - No healthy engine for `failoverAfterMs`: calls go to the configured cloud route (reported
 *   through `servedBy`, so the call is recorded and priced as that provider and model); without
 *   one, the call fails as retryable and the aggregator hands the items back to the queue.
 */
import { setMaxListeners } from "node:events";
import type { GpuEngineState, Logger, ProviderName } from "@sieve/shared";
import { ProviderError, coerceError } from "@sieve/shared/errors";
import type { LlmProvider, StructuredCallRequest, StructuredCallResult } from "../providers/types.js";
import { VllmProvider } from "../providers/vllm/index.js";
import { AdaptiveLimiter, type LimiterOptions } from "./limiter.js";
import { gpuMetrics } from "./metrics.js";

export interface GpuEngineConfig {
  /** OpenAI-compatible base URL including /v1, e.g. http://vllm-0:8000/v1 */
  baseURL: string;
  /** The model the engine serves (`--served-model-name`). */
  model: string;
  apiKey?: string;
}

export interface GpuPoolOptions {
  engines: GpuEngineConfig[];
  log: Logger;
  /** /metrics poll period, in ms. @defaultValue 250 */
  pollMs?: number;
  /** Consecutive failed calls or probes before an engine is drained. @defaultValue 3 */
  failAfter?: number;
  /** No healthy engine for this long: use the fallback, in ms. @defaultValue 30000 */
  failoverAfterMs?: number;
  /** Cloud route for failover (absent: none; calls fail as retryable instead). */
  fallback?: { provider: LlmProvider; model: string };
  limiter?: LimiterOptions;
}

type Health = "unknown" | "healthy" | "drained";

class Engine {
  readonly provider: VllmProvider;
  limiter: AdaptiveLimiter;
  inFlight = 0;
  health: Health = "unknown";
  failures = 0;
  /** Consecutive monitor rounds in which both /metrics and /health failed. */
  probeFailures = 0;
  /** Why it last failed (shown on the console), cleared when it comes back. */
  lastError: string | undefined;
  drain = Engine.drainController();
  constructor(
    readonly cfg: GpuEngineConfig,
    private readonly limiterOpts: LimiterOptions | undefined,
  ) {
    this.provider = new VllmProvider({ provider: "vllm", baseURL: cfg.baseURL, apiKey: cfg.apiKey ?? "EMPTY", defaultModel: cfg.model, simulated: false });
    this.limiter = new AdaptiveLimiter(limiterOpts);
  }
  /** Every in-flight call listens on it (AbortSignal.any): hundreds at a time are expected. */
  private static drainController(): AbortController {
    const c = new AbortController();
    setMaxListeners(0, c.signal);
    return c;
  }
  get label(): string {
    return this.cfg.baseURL;
  }
  /** Back in service: a fresh limiter (start low again), a fresh drain signal. */
  revive(): void {
    this.limiter = new AdaptiveLimiter(this.limiterOpts);
    this.drain = Engine.drainController();
    this.failures = 0;
    this.probeFailures = 0;
    this.lastError = undefined;
    this.health = "healthy";
  }
}

/** Monitor rounds in a row with /metrics and /health both failing before an engine is drained. @defaultValue 2 */
const PROBE_FAILURES_TO_DRAIN = 2;

export class GpuPool implements LlmProvider {
  readonly name = "vllm" as const;
  readonly engines: Engine[];
  private readonly waiters = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  /** Since when no engine has been healthy (ms), undefined while one is. */
  private noneHealthySince: number | undefined = Date.now();
  private readonly o: Required<Omit<GpuPoolOptions, "fallback" | "limiter">> & Pick<GpuPoolOptions, "fallback" | "limiter">;

  constructor(opts: GpuPoolOptions) {
    if (opts.engines.length === 0) throw new Error("GpuPool: at least one engine is required");
    this.o = { pollMs: 250, failAfter: 3, failoverAfterMs: 30_000, ...opts };
    this.engines = opts.engines.map((c) => new Engine(c, opts.limiter));
  }

  /** Starts the monitor (one probe round at once, then every pollMs). */
  async start(): Promise<void> {
    await this.pollOnce();
    this.timer = setInterval(() => void this.pollOnce(), this.o.pollMs);
    this.timer.unref?.();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const e of this.engines) e.drain.abort(new Error("pool closed"));
    this.wake();
  }

  /** Calls the healthy engines accept now (the aggregator's concurrency). */
  capacity(): number {
    return this.engines.filter((e) => e.health === "healthy").reduce((a, e) => a + e.limiter.limit, 0);
  }

  /** One monitor round: health for engines not in service, /metrics for the others. */
  async pollOnce(): Promise<void> {
    if (this.polling) return; // a slow round must not pile up
    this.polling = true;
    try {
      await Promise.all(this.engines.map((e) => this.probe(e)));
      const anyHealthy = this.engines.some((e) => e.health === "healthy");
      if (anyHealthy) this.noneHealthySince = undefined;
      else this.noneHealthySince ??= Date.now();
      for (const e of this.engines) this.export(e);
      this.wake();
    } finally {
      this.polling = false;
    }
  }

  private async probe(e: Engine): Promise<void> {
    const timeoutMs = Math.max(500, this.o.pollMs * 2);
    if (e.health !== "healthy") {
      if (await e.provider.health({ timeoutMs })) {
        this.o.log.info({ engine: e.label }, "vLLM engine healthy: taking work");
        e.revive();
      }
      return;
    }
    try {
      const m = await e.provider.metrics({ timeoutMs });
      e.limiter.onGauges({ running: m.requestsRunning, waiting: m.requestsWaiting, kvUsage: m.kvCacheUsage }, Date.now());
      e.probeFailures = 0;
    } catch (err) {
      // A slow or missing /metrics only makes the gauges stale (the limiter stops growing); the
      // engine is failing when /health fails too, twice in a row (a frozen server never fails a
      // call before its timeout: the probes are what notice it).
      if (await e.provider.health({ timeoutMs })) return;
      e.probeFailures++;
      this.fail(e, `/metrics and /health failed: ${coerceError(err).message}`, e.probeFailures >= PROBE_FAILURES_TO_DRAIN);
    }
  }

  private fail(e: Engine, why: string, drainNow = false): void {
    e.failures++;
    e.lastError = why.slice(0, 300);
    e.limiter.onFailure(Date.now());
    if (e.health === "healthy" && (drainNow || e.failures >= this.o.failAfter)) {
      e.health = "drained";
      gpuMetrics.drains.inc({ engine: e.label });
      this.o.log.warn({ engine: e.label, why, inFlight: e.inFlight }, "vLLM engine drained: its calls go to the other engines");
      e.drain.abort(new Error(`engine drained: ${why}`));
    }
  }

  private export(e: Engine): void {
    const l = { engine: e.label };
    const g = e.limiter.lastGauges();
    gpuMetrics.limit.set(l, e.limiter.limit);
    gpuMetrics.inFlight.set(l, e.inFlight);
    gpuMetrics.healthy.set(l, e.health === "healthy" ? 1 : 0);
    if (g) {
      gpuMetrics.running.set(l, g.running);
      gpuMetrics.waiting.set(l, g.waiting);
      if (g.kvUsage !== undefined) gpuMetrics.kvUsage.set(l, g.kvUsage);
      gpuMetrics.metricsAge.set(l, (Date.now() - g.at) / 1000);
    }
  }

  /** The healthy engine with the most free room, as a share of its limit. */
  private pick(): Engine | undefined {
    let best: Engine | undefined;
    let room = 0;
    for (const e of this.engines) {
      if (e.health !== "healthy" || e.inFlight >= e.limiter.limit) continue;
      const r = (e.limiter.limit - e.inFlight) / e.limiter.limit;
      if (r > room) [best, room] = [e, r];
    }
    return best;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private waitForChange(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  async callStructured(req: StructuredCallRequest): Promise<StructuredCallResult> {
    let lastError: ProviderError | undefined;
    let tries = 0;
    for (;;) {
      if (req.signal?.aborted) throw new ProviderError({ provider: "vllm", kind: "timeout", message: "call aborted by the caller" });
      const e = this.pick();
      if (!e) {
        const since = this.noneHealthySince;
        if (since !== undefined && Date.now() - since >= this.o.failoverAfterMs) return this.failover(req, since);
        await this.waitForChange(Math.min(this.o.pollMs, 100), req.signal);
        continue;
      }
      try {
        return await this.callOn(e, req);
      } catch (err) {
        lastError = err instanceof ProviderError ? err : new ProviderError({ provider: "vllm", kind: "server", message: coerceError(err).message, cause: err });
        if (req.signal?.aborted || !lastError.retryable) throw lastError;
        // The engine failed this call: the items have no result, so re-sending them to another
        // engine cannot answer them twice. Bounded so a sick fleet hands back to the queue.
        if (++tries > this.engines.length * 2) throw lastError;
      }
    }
  }

  private async callOn(e: Engine, req: StructuredCallRequest): Promise<StructuredCallResult> {
    e.inFlight++;
    const inFlightAtStart = e.inFlight;
    this.export(e);
    const signal = req.signal ? AbortSignal.any([req.signal, e.drain.signal]) : e.drain.signal;
    try {
      // The request names the route's model; each replica answers with the model it serves.
      const res = await e.provider.callStructured({ ...req, model: e.cfg.model, signal });
      e.failures = 0;
      e.limiter.onSuccess(res.latencyMs, inFlightAtStart, Date.now());
      this.answered.push([Date.now(), req.items.length]);
      return res;
    } catch (err) {
      const pe = err instanceof ProviderError ? err : undefined;
      if (!req.signal?.aborted && (pe === undefined || pe.retryable)) this.fail(e, pe?.message ?? coerceError(err).message);
      throw err;
    } finally {
      e.inFlight--;
      this.export(e);
      this.wake();
    }
  }

  private async failover(req: StructuredCallRequest, since: number): Promise<StructuredCallResult> {
    const fb = this.o.fallback;
    const waitedS = Math.round((Date.now() - since) / 1000);
    if (!fb) {
      throw new ProviderError({ provider: "vllm", kind: "server", message: `no healthy vLLM engine for ${waitedS} s and no failover route configured` });
    }
    gpuMetrics.failovers.inc({ provider: fb.provider.name, model: fb.model });
    this.o.log.warn({ waitedS, provider: fb.provider.name, model: fb.model }, "no healthy vLLM engine: failing over to the cloud route");
    const res = await fb.provider.callStructured({ ...req, model: fb.model });
    return { ...res, servedBy: { provider: fb.provider.name as ProviderName, model: fb.model } };
  }

  private readonly answered: Array<[number, number]> = [];
  private peakItemsPerS = 0;
  private peakAt = 0;

  /**
   * What the lane router needs (published for the API process): items per second answered over
   * the last 5 s, or the recent peak when the lane is idle (its capacity did not vanish; the peak
   * halves every 10 minutes), and how many engines take work.
   */
  laneStats(now = Date.now()): { itemsPerS: number; healthyEngines: number; capacity: number } {
    while (this.answered.length > 0 && this.answered[0]![0] < now - 5_000) this.answered.shift();
    const current = this.answered.reduce((a, [, n]) => a + n, 0) / 5;
    const decayed = this.peakItemsPerS * 0.5 ** ((now - this.peakAt) / 600_000);
    if (current >= decayed) [this.peakItemsPerS, this.peakAt] = [current, now];
    const healthyEngines = this.engines.filter((e) => e.health === "healthy").length;
    return { itemsPerS: healthyEngines === 0 ? 0 : Math.max(current, decayed), healthyEngines, capacity: this.capacity() };
  }

  /** Per-engine state for the operator console (published to Redis next to laneStats). */
  engineStates(): GpuEngineState[] {
    return this.engines.map((e, i) => {
      const g = e.limiter.lastGauges();
      return {
        id: `vllm-${i}`,
        url: e.cfg.baseURL,
        model: e.cfg.model,
        health: e.health,
        limit: e.limiter.limit,
        inFlight: e.inFlight,
        signal: e.limiter.signal,
        ...(g ? { running: g.running, waiting: g.waiting, gaugesAt: g.at, ...(g.kvUsage !== undefined ? { kvUsage: g.kvUsage } : {}) } : {}),
        ...(e.lastError ? { lastError: e.lastError } : {}),
      };
    });
  }

  /** For tests and /metrics: per-engine state. */
  snapshot(): Array<{ engine: string; health: Health; limit: number; inFlight: number; signal: string }> {
    return this.engines.map((e) => ({ engine: e.label, health: e.health, limit: e.limiter.limit, inFlight: e.inFlight, signal: e.limiter.signal }));
  }
}
