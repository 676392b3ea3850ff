/**
 * A fluid model of vLLM's continuous batching, for tuning clients against something that
 * saturates like a GPU does (https://docs.vllm.ai/en/latest/design/arch_overview.html):
 *
 * - Every engine step decodes one token for each running sequence. A step costs
 *   `decodeBaseMs + decodePerSeqMs * running` (the weights are read once per step, the per-sequence
 *   part grows with the batch), so output throughput `running / stepMs` rises with concurrency and
 *   flattens toward `1 / decodePerSeqMs`.
 * - A sequence is admitted only while `running < maxNumSeqs` and its KV reservation (prompt +
 *   max output tokens) fits the KV cache; otherwise it waits (`vllm:num_requests_waiting`).
 *   Real vLLM allocates KV blocks as decoding proceeds and preempts on overflow; reserving up
 *   front is this model's simplification (a conservative scheduler).
 * - Prompt tokens not served by the prefix cache are prefilled at `prefillTokensPerS` before a
 *   sequence decodes; decoding of the batch stalls meanwhile (no chunked prefill).
 *
 * Calibration (defaults): 10 ms + 0.16 ms per sequence gives ~100 output tokens/s for one
 * sequence and ~5,000 output tokens/s for a full batch of 256, close to the 5,103 tokens/s that
 * Red Hat's MLPerf Inference v5.1 submission measured for Llama-3.1-8B FP8 with vLLM on one
 * H100 in the server scenario
 * (https://www.redhat.com/en/blog/efficient-and-reproducible-llm-inference-red-hat-mlperf-inference-v51-results).
 *
 * Time is injected (`now()`, ms) so the model is testable without waiting; `timeScale` runs
 * simulated time faster than the wall clock (benchmarks), `slowdown` slower (a throttled GPU).
 */

export interface PerfModel {
  /** Fixed cost of one decode step, in simulated ms. @defaultValue 10 */
  decodeBaseMs?: number;
  /** Extra cost per running sequence in one step, in simulated ms. @defaultValue 0.16 */
  decodePerSeqMs?: number;
  /** Prefill speed for prompt tokens missing from the prefix cache, tokens per simulated second. @defaultValue 20000 */
  prefillTokensPerS?: number;
  /** Simulated ms per wall-clock ms (10 = ten times faster than a real GPU). @defaultValue 1 */
  timeScale?: number;
}

export const PERF_DEFAULTS: Required<PerfModel> = { decodeBaseMs: 10, decodePerSeqMs: 0.16, prefillTokensPerS: 20_000, timeScale: 1 };

export class EngineCrashed extends Error {
  constructor() {
    super("vLLM engine crashed (simulated)");
    this.name = "EngineCrashed";
  }
}

export interface Seq {
  reserve: number;
  prefillLeft: number;
  decodeLeft: number;
  admitted: boolean;
  firstTokenAt?: number;
  /** Resolves when admitted; rejects on crash or abort. */
  onAdmit?: { resolve: () => void; reject: (e: Error) => void };
  onDone?: { resolve: (firstTokenAt: number) => void; reject: (e: Error) => void };
}

/** Scheduler state: who runs, who waits, how much KV cache is reserved. */
export class BatchScheduler {
  readonly perf: Required<PerfModel>;
  /** Multiplies every step's cost (1 = normal; 3 = a GPU three times slower). */
  slowdown = 1;
  private readonly running = new Set<Seq>();
  private readonly waiting: Seq[] = [];
  /** Admitted sequences holding a slot and a KV reservation (running or about to). */
  private readonly holding = new Set<Seq>();
  private reserved = 0;
  private last: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: { maxNumSeqs: number; kvCacheTokens: number },
    perf: PerfModel | undefined,
    private readonly now: () => number = () => performance.now(),
    /** Whether to drive itself with timers (false in unit tests that call advance()). */
    private readonly selfDriven = true,
  ) {
    this.perf = { ...PERF_DEFAULTS, ...(perf ?? {}) };
    this.last = now();
  }

  /** Admitted sequences (vLLM counts them in `num_requests_running`). */
  get numRunning(): number {
    return this.holding.size;
  }
  get numWaiting(): number {
    return this.waiting.length;
  }
  /** Reserved KV tokens / capacity, 0..1. */
  get kvUsage(): number {
    return Math.min(1, this.reserved / this.limits.kvCacheTokens);
  }

  /** Simulated ms of one decode step with `b` running sequences. */
  stepMs(b: number): number {
    return (this.perf.decodeBaseMs + this.perf.decodePerSeqMs * b) * this.slowdown;
  }

  /** Waits for admission (slot + KV reservation). Rejects with `signal`'s abort or a crash. */
  admit(reserveTokens: number, signal?: AbortSignal): Promise<Seq> {
    this.advance();
    const seq: Seq = { reserve: Math.max(1, Math.ceil(reserveTokens)), prefillLeft: 0, decodeLeft: 0, admitted: false };
    return new Promise<Seq>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(seq);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error("aborted while waiting"));
      };
      seq.onAdmit = {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(seq);
        },
        reject,
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(seq);
      this.admitWaiting();
    });
  }

  /** Runs prefill of `uncachedPromptTokens` then decodes `outputTokens`; resolves with the first-token time. */
  generate(seq: Seq, uncachedPromptTokens: number, outputTokens: number): Promise<number> {
    this.advance();
    seq.prefillLeft = Math.max(0, uncachedPromptTokens);
    seq.decodeLeft = Math.max(1, outputTokens);
    return new Promise<number>((resolve, reject) => {
      seq.onDone = { resolve, reject };
      this.running.add(seq);
      this.schedule();
    });
  }

  /** Frees a sequence's slot and KV (whether it finished or failed). */
  release(seq: Seq): void {
    if (!seq.admitted) return;
    seq.admitted = false;
    this.holding.delete(seq);
    this.running.delete(seq);
    this.reserved -= seq.reserve;
    this.admitWaiting();
    this.schedule();
  }

  /** Every running and waiting sequence fails with EngineCrashed; state back to empty. */
  crash(): void {
    const err = new EngineCrashed();
    for (const s of this.waiting.splice(0)) s.onAdmit?.reject(err);
    for (const s of [...this.running]) {
      this.running.delete(s);
      s.onDone?.reject(err);
    }
    for (const s of this.holding) s.admitted = false;
    this.holding.clear();
    this.reserved = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private admitWaiting(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      const slots = this.holding.size < this.limits.maxNumSeqs;
      // A request larger than the whole cache still runs when it is alone (vLLM rejects prompts
      // over --max-model-len up front; this keeps the model from deadlocking).
      const fits = this.reserved + next.reserve <= this.limits.kvCacheTokens || this.holding.size === 0;
      if (!slots || !fits) return;
      this.waiting.shift();
      next.admitted = true;
      this.holding.add(next);
      this.reserved += next.reserve;
      next.onAdmit?.resolve();
    }
  }

  /** Brings the fluid state up to `now()`: prefill first, then decode steps; finishes sequences. */
  advance(): void {
    const t = this.now();
    let budget = (t - this.last) * this.perf.timeScale;
    this.last = t;
    while (budget > 1e-9 && this.running.size > 0) {
      const prefilling = [...this.running].filter((s) => s.prefillLeft > 0);
      if (prefilling.length > 0) {
        const rate = this.perf.prefillTokensPerS / 1000 / this.slowdown; // tokens per simulated ms
        const need = prefilling.reduce((a, s) => a + s.prefillLeft, 0) / rate;
        const spend = Math.min(budget, need);
        let tokens = spend * rate;
        for (const s of prefilling) {
          const take = Math.min(s.prefillLeft, tokens);
          s.prefillLeft -= take;
          tokens -= take;
          if (s.prefillLeft <= 1e-9) {
            s.prefillLeft = 0;
            s.firstTokenAt = t - (budget - spend) / this.perf.timeScale;
          }
        }
        budget -= spend;
        continue;
      }
      const step = this.stepMs(this.running.size);
      const minLeft = Math.min(...[...this.running].map((s) => s.decodeLeft));
      const steps = Math.min(budget / step, minLeft);
      for (const s of this.running) s.decodeLeft -= steps;
      budget -= steps * step;
      for (const s of [...this.running]) {
        if (s.decodeLeft <= 1e-9) {
          this.running.delete(s);
          s.onDone?.resolve(s.firstTokenAt ?? t);
        }
      }
    }
  }

  /** Arms one timer for the next event (a sequence finishing or prefill ending). */
  private schedule(): void {
    if (!this.selfDriven) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running.size === 0) return;
    const prefill = [...this.running].reduce((a, s) => a + s.prefillLeft, 0);
    const simMs =
      prefill > 0
        ? prefill / (this.perf.prefillTokensPerS / 1000 / this.slowdown)
        : Math.min(...[...this.running].map((s) => s.decodeLeft)) * this.stepMs(this.running.size);
    const wallMs = Math.min(1_000, Math.max(1, simMs / this.perf.timeScale));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.advance();
      this.schedule();
    }, wallMs);
    this.timer.unref?.();
  }
}
