/**
 * GET /v1/exports/fine-tune?task=classify|translate[&since=ISO-8601]
 *
 * Streams the caller's items answered by an LLM call as fine-tuning JSONL in OpenAI's chat format
 * (one `{"messages": [system, user, assistant]}` object per line:
 * https://platform.openai.com/docs/api-reference/fine-tuning/chat-input), to distil the LLM into a
 * small model for the GPU lane (docs/quality.md). The system and user messages are Sieve's own
 * single-item prompt (packages/shared/src/prompts) and the assistant message is the structured
 * answer, so a model trained on it speaks the schema Sieve validates.
 * Left out: cache answers (exact, semantic, coalesced, learned: no LLM saw that item), errors, and
 * items whose re-check disagreed with their packed answer. Only the caller's tenant, ever.
 */
import { Router, type NextFunction, type Request, type Response } from "express";
import { HttpError, TaskParams, renderPrompt } from "@sieve/shared";
import { fineTuneRows } from "@sieve/shared/db/ops/quality";
import type { ApiContext } from "../context.js";
import { tenantOf } from "../auth.js";

const PAGE = 1_000;

function parseQuery(q: Request["query"]): { task: "classify" | "translate"; since: Date | undefined } {
  const task = q.task;
  if (task !== "classify" && task !== "translate") {
    throw new HttpError(400, "invalid_request", 'task: required, "classify" or "translate"', [{ field: "task", message: "expected classify or translate" }]);
  }
  let since: Date | undefined;
  if (q.since !== undefined) {
    since = typeof q.since === "string" && /^\d{4}-\d{2}-\d{2}/.test(q.since) ? new Date(q.since) : undefined;
    if (!since || Number.isNaN(since.getTime())) {
      throw new HttpError(400, "invalid_request", "since: expected an ISO-8601 date or time, e.g. 2026-11-01 or 2026-11-01T12:00:00Z", [{ field: "since", message: "invalid date" }]);
    }
  }
  return { task, since };
}

/** One training example: Sieve's single-item prompt and the answer it accepted. */
export function fineTuneLine(params: TaskParams, text: string, output: unknown): string {
  const prompt = renderPrompt(params, [{ id: "i1", text }]);
  const answer = { results: [{ id: "i1", ...(output as Record<string, unknown>) }] };
  return JSON.stringify({
    messages: [
      { role: "system", content: prompt.system },
      { role: "user", content: prompt.user },
      { role: "assistant", content: JSON.stringify(answer) },
    ],
  });
}

export function exportsRouter(ctx: ApiContext): Router {
  const r = Router();
  r.get("/v1/exports/fine-tune", (req: Request, res: Response, next: NextFunction) => {
    void (async () => {
      const { tenantId } = tenantOf(res);
      const { task, since } = parseQuery(req.query);
      let afterId = 0;
      let first = await fineTuneRows(ctx.db, { tenantId, task, since, afterId, limit: PAGE });
      res.status(200).setHeader("content-type", "application/x-ndjson; charset=utf-8");
      res.setHeader("content-disposition", `attachment; filename="sieve-fine-tune-${task}.jsonl"`);
      while (first.length > 0) {
        const chunk = first.map((row) => fineTuneLine(TaskParams.parse(row.params), row.text, row.output)).join("\n") + "\n";
        if (!res.write(chunk)) await new Promise<void>((resolve) => res.once("drain", resolve));
        if (first.length < PAGE || res.destroyed) break;
        afterId = first[first.length - 1]!.id;
        first = await fineTuneRows(ctx.db, { tenantId, task, since, afterId, limit: PAGE });
      }
      res.end();
    })().catch((e) => {
      // Headers already sent: the stream can only be cut (the client sees an incomplete body).
      if (res.headersSent) res.destroy(e instanceof Error ? e : undefined);
      else next(e);
    });
  });
  return r;
}
