/**
 * The simulated batch APIs: OpenAI Files + Batches, Anthropic Message Batches, and the control
 * route `GET|POST /_sim/batch` for their knobs. Appended to BUILTIN_ROUTES in server.ts.
 */
import { readJsonObject, sendJson, SimError } from "../http.js";
import type { Route, SimState } from "../types.js";
import { anthropicBatchRoutes } from "./anthropic.js";
import { anthropicEnqueuedTokens } from "./anthropicLifecycle.js";
import { fileRoutes } from "./files.js";
import { openaiBatchRoutes } from "./openai.js";
import { openaiEnqueuedTokens } from "./openaiLifecycle.js";
import { BatchKnobs, batchStateOf } from "./state.js";

export { BatchKnobs, BATCH_DEFAULTS, batchStateOf, initBatchState, BatchState, type BatchStats, type ProviderBatchStats } from "./state.js";
export type { SimFile, OpenAIBatchStatus, AnthropicProcessingStatus } from "./records.js";
export { parseInputFile, type BatchErrorData } from "./openaiInput.js";
export { CHAT_ENDPOINT } from "./openaiLifecycle.js";
export { ANTHROPIC_CUSTOM_ID, parseCreateBody } from "./anthropic.js";
export { invokeHandler, type InternalResponse } from "./invoke.js";

/** What `GET /_sim/batch` answers: knobs, counters and what is enqueued right now. */
export function batchSnapshot(state: SimState) {
  const bs = batchStateOf(state);
  const open = (m: Map<string, { status: string }>, terminal: readonly string[]) => [...m.values()].filter((b) => !terminal.includes(b.status)).length;
  const enqueuedTokens = { openai: openaiEnqueuedTokens(bs), anthropic: anthropicEnqueuedTokens(bs) };
  return {
    knobs: { ...bs.knobs },
    clockOffsetMs: bs.clockOffsetMs,
    stats: structuredClone(bs.stats),
    openBatches: {
      openai: open(bs.openaiBatches, ["failed", "completed", "expired", "cancelled"]),
      anthropic: open(bs.anthropicBatches, ["ended"]),
    },
    enqueuedTokens,
  };
}

export const batchControlRoutes: Route[] = [
  { method: "GET", path: "/_sim/batch", dialect: "sim", handler: (ctx) => sendJson(ctx.res, 200, batchSnapshot(ctx.state)) },
  {
    method: "POST",
    path: "/_sim/batch",
    dialect: "sim",
    async handler(ctx) {
      const parsed = BatchKnobs.safeParse(await readJsonObject(ctx.req));
      if (!parsed.success) {
        const msg = parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
        throw new SimError("invalid_request", msg, { code: "invalid_batch_knobs" });
      }
      batchStateOf(ctx.state).setKnobs(parsed.data);
      sendJson(ctx.res, 200, { knobs: { ...batchStateOf(ctx.state).knobs } });
    },
  },
  {
    method: "POST",
    path: "/_sim/batch/clock",
    dialect: "sim",
    async handler(ctx) {
      const body = await readJsonObject(ctx.req);
      const advance = body.advanceMs;
      if (typeof advance !== "number" || !Number.isFinite(advance) || advance < 0) {
        throw new SimError("invalid_request", "advanceMs: a number of milliseconds >= 0 is required", { code: "invalid_batch_clock" });
      }
      const bs = batchStateOf(ctx.state);
      // Forward only: a batch never goes back to an earlier phase.
      bs.clockOffsetMs += advance;
      sendJson(ctx.res, 200, { clockOffsetMs: bs.clockOffsetMs, now: new Date(bs.now()).toISOString() });
    },
  },
];

/** Every batch route: files, OpenAI batches, Anthropic message batches, control. */
export const batchRoutes: Route[] = [...fileRoutes, ...openaiBatchRoutes, ...anthropicBatchRoutes, ...batchControlRoutes];
