/**
 * What the simulated batch APIs store: files (OpenAI Files), OpenAI batches and Anthropic message
 * batches. Plain records, kept in the simulator's BatchState (state.ts) and moved through their
 * lifecycles by openaiLifecycle.ts and anthropicLifecycle.ts.
 */
import type { BatchErrorData, OpenAIRequest } from "./openaiInput.js";

/** A stored OpenAI file (input, output or error file). */
export interface SimFile {
  id: string;
  filename: string;
  purpose: string;
  bytes: number;
  /** Seconds since epoch. */
  createdAt: number;
  content: Buffer;
}

/** What happens to a batch, drawn once when it is created. */
export type BatchOutcome = "normal" | "expire" | "fail_all";

/** One line of an output, error or results file in the making. */
export interface OutputLine {
  /** Index of the request in the input (to make sure the output order is not the input order). */
  idx: number;
  line: string;
}

export type OpenAIBatchStatus = "validating" | "failed" | "in_progress" | "finalizing" | "completed" | "expired" | "cancelling" | "cancelled";

export type OpenAITimestamp = "in_progress_at" | "finalizing_at" | "completed_at" | "failed_at" | "expired_at" | "cancelling_at" | "cancelled_at";

export interface OpenAIBatchRecord {
  id: string;
  inputFileId: string;
  endpoint: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  model: string | undefined;
  /** ms since epoch. */
  createdAt: number;
  status: OpenAIBatchStatus;
  /** When the current phase started, in ms (the next transition is due phaseMs later). */
  phaseStartedAt: number;
  ts: Partial<Record<OpenAITimestamp, number>>;
  /** The requests (emptied once the files are written, to free memory). */
  requests: OpenAIRequest[];
  total: number;
  /** Validation errors: the batch ends `failed` after validating when there is any. */
  errors: BatchErrorData[];
  outcome: BatchOutcome;
  /** Share of the requests run before expiry (outcome "expire"). */
  doneFraction: number;
  /** Requests run when a cancel arrived: nothing more runs. */
  cancelDone: number | undefined;
  /** Prompt tokens of all requests (computed when a token limit needs them). */
  tokens: number | undefined;
  /** Processing order (a shuffle of the request indices) and how many of it have run. */
  order: number[] | undefined;
  next: number;
  out: OutputLine[];
  err: OutputLine[];
  failed: number;
  usage: { input: number; cached: number; output: number };
  /** Set once the output and error files are written. */
  files: { outputFileId: string | null; errorFileId: string | null } | undefined;
  /** Serialises the work on this batch (concurrent polls must not run a request twice). */
  work: Promise<void>;
}

export type AnthropicProcessingStatus = "in_progress" | "canceling" | "ended";

export interface AnthropicRequest {
  customId: string;
  params: Record<string, unknown>;
}

export interface AnthropicBatchRecord {
  id: string;
  /** ms since epoch. */
  createdAt: number;
  status: AnthropicProcessingStatus;
  phaseStartedAt: number;
  cancelInitiatedAt: number | undefined;
  endedAt: number | undefined;
  /** The requests (emptied once the results are written, to free memory). */
  requests: AnthropicRequest[];
  total: number;
  outcome: BatchOutcome;
  doneFraction: number;
  /** Requests run when a cancel arrived: nothing more runs. */
  cancelDone: number | undefined;
  /** Prompt tokens per model (computed when a token limit needs them). */
  tokens: Record<string, number> | undefined;
  /** Processing order (a shuffle of the request indices) and how many of it have run. */
  order: number[] | undefined;
  next: number;
  entries: OutputLine[];
  counts: { succeeded: number; errored: number; canceled: number; expired: number };
  /** The results file (JSONL), once the batch has ended. */
  results: string | undefined;
  /** Serialises the work on this batch (concurrent polls must not run a request twice). */
  work: Promise<void>;
}
