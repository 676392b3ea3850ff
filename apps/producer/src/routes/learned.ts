/**
 * GET /v1/learned: where the caller's learned-cache models stand (docs/quality.md, "Where a
 * scope stands"). For each scope this API process holds: its state (warming up, not certified
 * yet, answering), the labels and number of examples it learned, its calibration points and
 * certified threshold, and its answers, audits and adjudications since the process started.
 * Only the caller's own scopes; the models live in memory, so a restart empties the list.
 */
import { Router } from "express";
import type { Env } from "@sieve/shared";
import type { LearnedService } from "../learned.js";
import { tenantOf } from "../auth.js";

export function learnedRouter(env: Env, learned: LearnedService | undefined): Router {
  const r = Router();
  r.get("/v1/learned", (_req, res) => {
    const { tenantId } = tenantOf(res);
    if (!learned) {
      res.json({ enabled: false, scopes: [] });
      return;
    }
    res.json({
      enabled: true,
      maxError: env.SIEVE_LEARNED_MAX_ERROR,
      minExamples: env.SIEVE_LEARNED_MIN_EXAMPLES,
      auditRate: env.SIEVE_LEARNED_AUDIT_RATE,
      scopes: learned.cache.scopesOf(tenantId).map(({ scope, stats }) => ({
        namespace: scope.namespace,
        task: scope.task,
        provider: scope.provider,
        model: scope.model,
        promptVersion: scope.promptVersion,
        schemaVersion: scope.schemaVersion,
        paramsHash: scope.paramsHash,
        embedder: scope.embedderId,
        ...stats,
        threshold: stats.threshold ?? null,
      })),
    });
  });
  return r;
}
