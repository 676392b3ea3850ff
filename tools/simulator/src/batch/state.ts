/**
 * State of the simulated batch APIs (OpenAI Files + Batches, Anthropic Message Batches): the knobs,
 * the stored files and batches, and counters. Kept beside the simulator's `SimState` (one per
 * running simulator, looked up with `batchStateOf(state)`) so the shared state type stays as it is.
 *
 * Time: nothing runs in the background. A batch moves through its statuses when it is looked at
 * (retrieve, list, cancel, create), computed from its timestamps and the CURRENT `phaseMs`, so no
 * timer can leak and a test can speed a batch up (or hold it) mid-run by changing `phaseMs`.
 */
import { z } from "zod";
import { createRng, type Rng } from "../faults.js";
import type { SimState } from "../types.js";
import type { AnthropicBatchRecord, BatchOutcome, OpenAIBatchRecord, SimFile } from "./records.js";

const Rate = z.number().min(0).max(1);
const PositiveInt = z.number().int().positive();

/** The batch knobs. Set with `startSimulator({ batch })`, `sim.setBatchKnobs()` or `POST /_sim/batch`. */
export const BatchKnobs = z
  .object({
    /** Time a batch spends in each phase (OpenAI validating, in_progress, finalizing, cancelling; Anthropic in_progress, canceling), in ms. @defaultValue 200 */
    phaseMs: z.number().min(0).optional(),
    /** Share of new batches that expire (OpenAI `expired`, Anthropic results `expired`) with a partial output. @defaultValue 0 */
    expireFraction: Rate.optional(),
    /** Share of the requests an expiring batch finishes before it expires. @defaultValue random 0.25..0.75 per batch */
    expiredDoneFraction: Rate.optional(),
    /** Share of new batches that end with EVERY request failed (OpenAI: `completed`, output_file_id null). @defaultValue 0 */
    failAllFraction: Rate.optional(),
    /** Probability that one request of an otherwise fine batch fails (OpenAI 500 in the error file; Anthropic `errored` api_error). @defaultValue 0 */
    requestErrorRate: Rate.optional(),
    /** Probability that one line of an output / error / results file is not valid JSON. @defaultValue 0 */
    malformedLineRate: Rate.optional(),
    /**
     * Most input tokens that may be enqueued per model across non-terminal batches (key "*": every
     * model without its own entry). Counted with the real tokenizer (o200k) as prompt tokens.
     * @defaultValue no limit
     */
    enqueuedTokenLimit: z.record(z.string(), z.number().int().nonnegative()).optional(),
    /**
     * What an OpenAI batch over the enqueued-token limit does. "reject": `batches.create` fails
     * with a 400 `token_limit_exceeded`. "fail": the batch is created and then ends `failed` after
     * validating with `errors.data[0].code` "token_limit_exceeded" (what api.openai.com does).
     * Anthropic always rejects with a 429. @defaultValue "reject"
     */
    tokenLimitMode: z.enum(["reject", "fail"]).optional(),
    /** Most non-terminal batches per provider; one more is refused with a 429. @defaultValue no limit */
    maxOpenBatches: PositiveInt.optional(),
    /** Requests per OpenAI input file. @defaultValue 50000 */
    openaiMaxRequests: PositiveInt.optional(),
    /** Bytes per OpenAI input file. @defaultValue 200000000 (200 MB) */
    openaiMaxFileBytes: PositiveInt.optional(),
    /** Requests per Anthropic batch. @defaultValue 100000 */
    anthropicMaxRequests: PositiveInt.optional(),
    /** Bytes of an Anthropic batch-create body. @defaultValue 256000000 (256 MB) */
    anthropicMaxBytes: PositiveInt.optional(),
    /** Seed of the batch PRNG (outcomes, shuffles, per-request errors); setting knobs with a seed restarts it. @defaultValue random */
    seed: z.number().int().optional(),
  })
  .strict();
export type BatchKnobs = z.infer<typeof BatchKnobs>;

/** Defaults of the knobs that have one. */
export const BATCH_DEFAULTS = {
  phaseMs: 200,
  openaiMaxRequests: 50_000,
  openaiMaxFileBytes: 200_000_000,
  anthropicMaxRequests: 100_000,
  anthropicMaxBytes: 256_000_000,
} as const;

export type BatchProvider = "openai" | "anthropic";

export interface ProviderBatchStats {
  /** Batches accepted by create. */
  created: number;
  /** Creates refused (enqueued-token limit, open-batch limit, bad input). */
  rejected: number;
  /**
   * Batches that reached a terminal state, by how they ended. OpenAI: completed, failed, expired,
   * cancelled. Anthropic (always `ended`): processed, expired, canceled.
   */
  ended: Record<string, number>;
  /** Ended batches whose every request failed (included in `ended`). */
  allFailed: number;
  requests: {
    /** Requests run through the answer generator (or failed by a knob). */
    processed: number;
    succeeded: number;
    /** Failed requests (OpenAI error-file lines with a response; Anthropic `errored`). */
    errored: number;
    /** Not run because the batch expired. */
    expired: number;
    /** Not run because the batch was cancelled. */
    cancelled: number;
  };
  /** Output/results lines deliberately written as invalid JSON. */
  malformedLines: number;
}

export interface BatchStats {
  /** Files uploaded through `POST /v1/files`. */
  filesUploaded: number;
  openai: ProviderBatchStats;
  anthropic: ProviderBatchStats;
}

function emptyProviderStats(): ProviderBatchStats {
  return { created: 0, rejected: 0, ended: {}, allFailed: 0, requests: { processed: 0, succeeded: 0, errored: 0, expired: 0, cancelled: 0 }, malformedLines: 0 };
}

function emptyStats(): BatchStats {
  return { filesUploaded: 0, openai: emptyProviderStats(), anthropic: emptyProviderStats() };
}

export class BatchState {
  knobs: BatchKnobs;
  rng: Rng;
  stats: BatchStats = emptyStats();
  readonly files = new Map<string, SimFile>();
  /** OpenAI batches in creation order. */
  readonly openaiBatches = new Map<string, OpenAIBatchRecord>();
  /** Anthropic message batches in creation order. */
  readonly anthropicBatches = new Map<string, AnthropicBatchRecord>();
  /** Added to the wall clock (`POST /_sim/batch/clock`): lets a test step batches through their phases deterministically. */
  clockOffsetMs = 0;

  /** The batch clock, in ms since epoch. */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  constructor(knobs: BatchKnobs = {}) {
    this.knobs = BatchKnobs.parse(knobs);
    this.rng = createRng(this.knobs.seed);
  }

  /** Replaces every knob (validated; throws a ZodError on a bad value). A seed restarts the PRNG. */
  setKnobs(k: BatchKnobs): void {
    const parsed = BatchKnobs.parse(k);
    this.knobs = parsed;
    if (parsed.seed !== undefined) this.rng = createRng(parsed.seed);
  }

  resetStats(): void {
    this.stats = emptyStats();
  }

  get phaseMs(): number {
    return this.knobs.phaseMs ?? BATCH_DEFAULTS.phaseMs;
  }

  /** The enqueued-token limit for a model, if any. */
  tokenLimitFor(model: string): number | undefined {
    const limits = this.knobs.enqueuedTokenLimit ?? {};
    return limits[model] ?? limits["*"];
  }

  /** Draws the fate of a new batch. */
  drawOutcome(): { outcome: BatchOutcome; doneFraction: number } {
    const expire = this.rng() < (this.knobs.expireFraction ?? 0);
    const failAll = this.rng() < (this.knobs.failAllFraction ?? 0);
    const done = this.knobs.expiredDoneFraction ?? 0.25 + this.rng() * 0.5;
    return { outcome: expire ? "expire" : failAll ? "fail_all" : "normal", doneFraction: expire ? done : 1 };
  }

  ended(provider: BatchProvider, how: string): void {
    const e = this.stats[provider].ended;
    e[how] = (e[how] ?? 0) + 1;
  }
}

const states = new WeakMap<SimState, BatchState>();

/** The batch state of a simulator (created with default knobs on first use). */
export function batchStateOf(state: SimState): BatchState {
  let s = states.get(state);
  if (!s) {
    s = new BatchState();
    states.set(state, s);
  }
  return s;
}

/** Gives a simulator its batch state with initial knobs (startSimulator's `batch` option). */
export function initBatchState(state: SimState, knobs: BatchKnobs = {}): BatchState {
  const s = new BatchState(knobs);
  states.set(state, s);
  return s;
}
