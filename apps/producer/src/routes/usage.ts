/**
 * GET /v1/usage: what a tenant spent and saved since a time: items, LLM calls and tokens, dollars,
 * cache hits by kind and the dollars they saved, and the semantic audit's agreement rate.
 */
import { Router } from "express";
import { sql } from "drizzle-orm";
import { HttpError, queryOne, queryRows } from "@sieve/shared";
import type { ApiContext } from "../context.js";
import { tenantOf } from "../auth.js";

export function usageRouter(ctx: ApiContext): Router {
  const r = Router();
  r.get("/v1/usage", (req, res, next) => {
    (async () => {
      const { tenantId } = tenantOf(res);
      const sinceRaw = req.query.since === undefined ? undefined : String(req.query.since);
      const since = sinceRaw ? new Date(sinceRaw) : new Date(Date.now() - 24 * 3600 * 1000);
      if (Number.isNaN(since.getTime())) throw new HttpError(400, "invalid_request", "since: expected an ISO date", [{ field: "since", message: "invalid date" }]);
      const iso = since.toISOString();
      // Calls without an answer (still "sent", or "interrupted" by a crash) count with their estimate.
      const calls = await queryOne<{ calls: number; items: number; input: string; output: string; cached: string; usd: string; sent: number; interrupted: number; estInput: string; estUsd: string }>(
        ctx.db,
        sql`select count(*)::int as calls, coalesce(sum(item_count), 0)::int as items, coalesce(sum(input_tokens), 0)::text as input,
                   coalesce(sum(output_tokens), 0)::text as output, coalesce(sum(cached_input_tokens), 0)::text as cached, coalesce(sum(cost_usd), 0)::text as usd,
                   count(*) filter (where state = 'sent')::int as sent, count(*) filter (where state = 'interrupted')::int as interrupted,
                   coalesce(sum(est_input_tokens) filter (where state in ('sent', 'interrupted')), 0)::text as "estInput",
                   coalesce(sum(est_cost_usd) filter (where state in ('sent', 'interrupted')), 0)::text as "estUsd"
            from llm_calls where tenant_id = ${tenantId} and created_at >= ${iso}`,
      );
      const results = await queryRows<{ cache: string | null; status: string; n: number; saved: string }>(
        ctx.db,
        sql`select cache, status, count(*)::int as n, coalesce(sum(saved_usd), 0)::text as saved
            from results where tenant_id = ${tenantId} and created_at >= ${iso} group by cache, status`,
      );
      const audits = await queryRows<{ task: string; agree: number; total: number }>(
        ctx.db,
        sql`select task, count(*) filter (where agree)::int as agree, count(*) filter (where agree is not null)::int as total
            from cache_audits where tenant_id = ${tenantId} and created_at >= ${iso} group by task`,
      );
      const byCache: Record<string, number> = {};
      let ok = 0;
      let errors = 0;
      let saved = 0;
      for (const row of results) {
        if (row.status === "ok") ok += row.n;
        else errors += row.n;
        if (row.cache) byCache[row.cache] = (byCache[row.cache] ?? 0) + row.n;
        saved += Number(row.saved);
      }
      res.json({
        since: iso,
        results: { ok, errors, cached: byCache },
        llm: {
          calls: calls.calls,
          itemsSent: calls.items,
          inputTokens: Number(calls.input),
          outputTokens: Number(calls.output),
          cachedInputTokens: Number(calls.cached),
          costUsd: Number(calls.usd),
          unanswered: { sent: calls.sent, interrupted: calls.interrupted, estInputTokens: Number(calls.estInput), estCostUsd: Number(calls.estUsd) },
          costWithEstimatesUsd: Number(calls.usd) + Number(calls.estUsd),
        },
        savedUsd: saved,
        semanticAudit: Object.fromEntries(audits.map((a) => [a.task, { audited: a.total, agreed: a.agree, falseHitRate: a.total ? 1 - a.agree / a.total : null }])),
      });
    })().catch(next);
  });
  return r;
}
