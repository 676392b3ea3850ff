/**
 * Dedup before enqueue: the exact cache, the semantic cache, the learned cache and in-flight
 * coalescing, behind the SubmitDedup hook (accept/dedupHook.ts).
 *
 * Each request's cache policy (packages/shared/src/dedup/policy.ts) decides: mode "use" (read,
 * write, coalesce), "refresh" (no read, no coalescing; the new answer overwrites the cache),
 * "bypass" (none of it: accepting a job never calls us).
 */
import { sql } from "drizzle-orm";
import {
  batchPolicy,
  costUsd,
  countTokens,
  loadPriceTable,
  metrics,
  queryRows,
  recordOutcome,
  systemPrompt,
  type Db,
  type Env,
  type Logger,
  type NewResult,
  type PriceTable,
  type TaskParams,
} from "@sieve/shared";
import { ExactCache } from "@sieve/shared/dedup/exact";
import { exactCacheKey, type CacheScopeInput } from "@sieve/shared/dedup/keys";
import type { DedupAnswer, DedupContext, DedupPlan, SemanticLookup, SubmitDedup } from "./accept/dedupHook.js";
import type { CreatedItem } from "@sieve/shared/db/ops/jobs";
import type { LearnedLookup } from "./learned.js";

export interface DedupDeps {
  env: Env;
  db: Db;
  exact: ExactCache;
  semantic?: SemanticLookup;
  /** The learned classification cache (docs/quality.md); absent when SIEVE_LEARNED_CACHE is off. */
  learned?: LearnedLookup;
  log: Logger;
}

/**
 * What a cache hit saved: the model's average cost per LLM-answered item over its last 200
 * successful realtime calls (cached 60 s). Until a model has such calls the estimate comes from the
 * price table instead (never a cached 0): the prompt share of one item in a full call plus its
 * expected answer.
 */
export class SavingsEstimator {
  private cache = new Map<string, { usd: number; at: number }>();
  constructor(
    private readonly db: Db,
    private readonly env: Env,
    private readonly prices: PriceTable,
  ) {}

  /** Saved USD of a hit on an item with this text (computed only for hits). */
  async perItem(model: string, params: TaskParams): Promise<(text: string) => number> {
    const avg = await this.average(model);
    return (text) => avg ?? this.fromPrices(model, params, text);
  }

  private async average(model: string): Promise<number | undefined> {
    const hit = this.cache.get(model);
    if (hit && Date.now() - hit.at < 60_000) return hit.usd;
    const rows = await queryRows<{ usd: string | null }>(
      this.db,
      sql`select (sum(cost_usd) / nullif(sum(item_count), 0))::text as usd
          from (select cost_usd, item_count from llm_calls where model = ${model} and outcome = 'ok' and lane = 'realtime' order by id desc limit 200) c`,
    );
    const usd = rows[0]?.usd == null ? undefined : Number(rows[0].usd);
    // No average yet: not cached, so the first answered call is used as soon as it lands.
    if (usd !== undefined && usd > 0) this.cache.set(model, { usd, at: Date.now() });
    return usd !== undefined && usd > 0 ? usd : undefined;
  }

  /** Price-table estimate for one item: its tokens, its share of the system prompt, its answer. */
  fromPrices(model: string, params: TaskParams, text: string): number {
    const itemTokens = countTokens(text) + ITEM_OVERHEAD_TOKENS;
    const share = Math.ceil(countTokens(systemPrompt(params)) / batchPolicy(this.env, params.task).maxItems);
    const output = params.task === "classify" ? ITEM_OVERHEAD_TOKENS + 4 : itemTokens;
    return costUsd(this.prices, model, { inputTokens: itemTokens + share, outputTokens: output }).usd;
  }
}

/** Tokens of an item's JSON wrapper in a prompt or answer ({"id": "i12", ...}). */
const ITEM_OVERHEAD_TOKENS = 10;

export function createDedup(deps: DedupDeps): SubmitDedup {
  const savings = new SavingsEstimator(deps.db, deps.env, loadPriceTable(deps.env.SIEVE_PRICES));
  const scopeOf = (ctx: DedupContext): CacheScopeInput => ({
    tenantId: ctx.tenantId,
    namespace: ctx.policy.namespace,
    params: ctx.params,
    provider: ctx.route.provider,
    model: ctx.route.model,
  });

  return {
    async lookup(items, ctx) {
      const scope = scopeOf(ctx);
      const cacheKeys = items.map((it) => exactCacheKey(scope, it.text));
      const answers = new Map<number, DedupAnswer>();
      if (ctx.policy.mode !== "use") return { cacheKeys, answers };
      const saved = await savings.perItem(ctx.route.model, ctx.params);
      const found = await deps.exact.getMany(cacheKeys);
      cacheKeys.forEach((k, i) => {
        const a = found.get(k);
        if (a) answers.set(i, { output: a.output, cache: "exact", source: { itemId: a.sourceItemId }, savedUsd: saved(items[i]!.text) });
      });
      metrics.cacheLookups.inc({ kind: "exact", outcome: "hit" }, answers.size);
      metrics.cacheLookups.inc({ kind: "exact", outcome: "miss" }, items.length - answers.size);

      if (deps.semantic && ctx.policy.semantic) {
        const rest = items.map((it, i) => ({ it, i })).filter(({ i }) => !answers.has(i));
        if (rest.length > 0) {
          const hits = await deps.semantic.lookup(rest.map((r) => r.it.text), scope, ctx.policy.semanticThreshold);
          for (const [j, h] of hits) {
            answers.set(rest[j]!.i, { output: h.output, cache: "semantic", source: { itemId: h.sourceItemId, score: h.score, text: h.sourceText }, savedUsd: saved(rest[j]!.it.text) });
          }
          metrics.cacheLookups.inc({ kind: "semantic", outcome: "hit" }, hits.size);
          metrics.cacheLookups.inc({ kind: "semantic", outcome: "miss" }, rest.length - hits.size);
        }
      }
      // Learned cache: only for classify requests that opt in (cache.learned), after the caches that match texts.
      if (deps.learned && ctx.policy.learned) {
        const rest = items.map((it, i) => ({ it, i })).filter(({ i }) => !answers.has(i));
        if (rest.length > 0) {
          const hits = await deps.learned.lookup(rest.map((r) => r.it.text), scope);
          for (const [j, h] of hits) {
            answers.set(rest[j]!.i, { output: { label: h.label }, cache: "learned", source: { confidence: h.confidence, threshold: h.threshold }, savedUsd: saved(rest[j]!.it.text) });
          }
        }
      }
      return { cacheKeys, answers };
    },

    async afterAnswered(answered, ctx) {
      if (deps.learned) {
        const learned = answered
          .filter((a) => a.answer.cache === "learned")
          .map((a) => {
            const src = a.answer.source as { confidence: number; threshold: number };
            return { itemId: a.itemId, text: a.text, label: (a.answer.output as { label: string }).label, confidence: src.confidence, threshold: src.threshold };
          });
        if (learned.length > 0) await deps.learned.audit(learned, scopeOf(ctx)).catch((e) => deps.log.warn({ err: String(e) }, "could not queue learned-cache audits"));
      }
      if (!deps.semantic?.audit) return;
      const hits = answered
        .filter((a) => a.answer.cache === "semantic")
        .map((a) => {
          const src = a.answer.source as { itemId: number | null; score: number };
          return { itemId: a.itemId, text: a.text, cachedOutput: a.answer.output, sourceItemId: src.itemId, score: src.score };
        });
      if (hits.length > 0) await deps.semantic.audit(hits, ctx).catch((e) => deps.log.warn({ err: String(e) }, "could not queue cache audits"));
    },

    async afterCreate(jobId: string, misses: CreatedItem[], keyOf: Map<number, string>, ctx: DedupContext, opts: { followOnly?: boolean } = {}): Promise<DedupPlan> {
      const plan: DedupPlan = { hold: new Set(), lead: new Set(), late: new Set(), answered: 0 };
      if (ctx.policy.mode !== "use") return plan;
      const withKeys = misses.filter((m) => keyOf.has(m.id));
      const claims = await deps.exact.claim(withKeys.map((m) => ({ key: keyOf.get(m.id)!, follower: { itemId: m.id, jobId, tenantId: ctx.tenantId } })), opts);
      const late: NewResult[] = [];
      const saved = await savings.perItem(ctx.route.model, ctx.params);
      claims.forEach((c, i) => {
        const m = withKeys[i]!;
        if (c.kind === "leader") plan.lead.add(m.id);
        else if (c.kind === "follower") plan.hold.add(m.id);
        else if (c.kind === "hit") {
          plan.hold.add(m.id);
          plan.late!.add(m.id);
          late.push({ itemId: m.id, jobId, tenantId: ctx.tenantId, status: "ok", output: c.answer.output, cache: "exact", cacheSource: { itemId: c.answer.sourceItemId }, provider: ctx.route.provider, model: ctx.route.model, savedUsd: saved(m.text) });
        }
      });
      if (late.length > 0) await recordOutcome(deps.db, null, late);
      plan.answered = late.length;
      return plan;
    },
  };
}
