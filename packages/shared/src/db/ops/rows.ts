/**
 * The rows a finished LLM call writes: its ledger entry and one result per item. Shared by the
 * writer (results.ts) and the console's rollups (rollups.ts), which must not import each other.
 */
import type { llmCalls } from "../schema/index.js";

export type NewLlmCall = typeof llmCalls.$inferInsert;

export interface NewResult {
  itemId: number;
  jobId: string;
  tenantId: string;
  status: "ok" | "error";
  output?: unknown;
  errorCode?: string;
  errorMessage?: string;
  provider?: string | null;
  model?: string | null;
  cache?: "exact" | "semantic" | "coalesced" | "learned" | null;
  cacheSource?: unknown;
  costUsd?: number;
  savedUsd?: number;
}
