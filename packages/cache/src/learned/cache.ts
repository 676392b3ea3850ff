/**
 * The learned classification cache: one small model per scope, trained on the LLM's own labels,
 * answering an item only when its confidence clears a threshold certified to keep the error of
 * its answers under a bound (calibration.ts; docs/quality.md).
 *
 * A scope is the full semantic-cache scope (vector/types.ts CacheScope): tenant, namespace, task,
 * prompt and schema version, provider, model, params hash (= the label set and instructions) and
 * the embedder id. A model never sees an example of another scope, so nothing learned from one
 * tenant or label set can answer another's item. Any Embedder works: the model only needs unit
 * vectors of a fixed length, and the embedder id is part of the scope.
 *
 * It stays silent until a scope has `minExamples` LLM labels AND a certified threshold.
 * In memory: a process restart starts every scope cold again (docs/quality.md says so).
 */
import type { CacheScope } from "../vector/types.js";
import { scopeKey } from "../vector/scope.js";
import type { Classifier, ClassifierKind, Prediction } from "./classifier.js";
import { createClassifier } from "./factory.js";
import type { HybridOptions } from "./hybrid.js";
import { ThresholdCalibrator } from "./calibration.js";

export interface LearnedCacheOptions {
  /** Error bound of the answers, per scope (0..1). */
  maxError: number;
  /** LLM labels a scope needs before it may answer. */
  minExamples: number;
  /** Share of answers the caller audits (validated here; audited points weigh 1, see calibration.ts). */
  auditRate: number;
  /** Vector length of the embedder. */
  dimensions: number;
  /** @defaultValue "hybrid" (bench:quality measured it against "knn" and "centroid"; docs/quality.md) */
  kind?: ClassifierKind;
  classifier?: HybridOptions;
  /** Level of the bound (1 - delta). @defaultValue 0.05 */
  delta?: number;
  /** See ThresholdCalibrator. @defaultValue 1 */
  startFactor?: number;
  /**
   * Most recent calibration points the threshold is computed from. A short window follows the
   * current model more closely (older points come from a model that knew fewer examples) but,
   * once the cache answers most confident items, holds too few points above the threshold and
   * loses its certification (docs/quality.md). @defaultValue 20000
   */
  calibrationWindow?: number;
  /**
   * Adjudication of the LLM's labels (docs/quality.md): a prediction at or above this confidence
   * that disagrees with the label learn() is given does not become a calibration point at once;
   * learn() returns it, the caller asks the item ALONE once and hands that answer to adjudicate().
   * The point is an error only if the model disagrees with that answer too, so a packed answer's
   * own mistakes stop counting against the model. @defaultValue undefined (off)
   */
  adjudicateAbove?: number;
  /** Scopes kept in memory, least recently used dropped beyond. @defaultValue 1000 */
  maxScopes?: number;
}

export interface LearnedAnswer {
  label: string;
  confidence: number;
  /** The threshold it cleared. */
  threshold: number;
}

/** A confident disagreement learn() held back, waiting for the item's answer alone. */
export interface PendingAdjudication {
  /** The model's label and confidence before it learned the item. */
  predicted: string;
  confidence: number;
  /** The label learn() was given (a packed answer). */
  label: string;
}

/**
 * Where a scope stands: `warming-up` (fewer than minExamples labels), `uncertified` (warm, but no
 * threshold passes the bound yet: it does not answer), `answering` (a certified threshold exists).
 */
export type LearnedScopeState = "warming-up" | "uncertified" | "answering";

export interface LearnedScopeStats {
  state: LearnedScopeState;
  examples: number;
  /** The labels it has learned, sorted (at most MAX_LABELS_SHOWN). */
  labels: string[];
  calibrationPoints: number;
  /** undefined: not certified yet (the cache does not answer in this scope). */
  threshold: number | undefined;
  answered: number;
  audited: number;
  auditDisagreements: number;
  /** Disagreements held back for an answer alone, and how many of those the answer alone sided with the model. */
  adjudications: number;
  adjudicatedForModel: number;
}

/** Labels kept per scope for stats(): a label set is bounded by the request schema, this only guards memory. */
const MAX_LABELS_SHOWN = 500;

interface ScopeModel {
  scope: CacheScope;
  labels: Set<string>;
  classifier: Classifier;
  calibrator: ThresholdCalibrator;
  answered: number;
  audited: number;
  auditDisagreements: number;
  adjudications: number;
  adjudicatedForModel: number;
}

export class LearnedCache {
  private readonly scopes = new Map<string, ScopeModel>();
  /** The last prediction made by lookup: learn() on the same vector reuses it (one scan, not two). */
  private last: { vector: ArrayLike<number>; text: string | undefined; model: ScopeModel; size: number; p: Prediction | undefined } | undefined;

  constructor(readonly opts: LearnedCacheOptions) {
    if (!(opts.auditRate >= 0 && opts.auditRate <= 1)) throw new RangeError("auditRate must be in [0, 1]");
  }

  static key(scope: CacheScope): string {
    return scopeKey(scope);
  }

  private model(scope: CacheScope, create: boolean): ScopeModel | undefined {
    const key = LearnedCache.key(scope);
    let m = this.scopes.get(key);
    if (m) {
      // Map order is insertion order: re-insert to mark as recently used.
      this.scopes.delete(key);
      this.scopes.set(key, m);
      return m;
    }
    if (!create) return undefined;
    m = {
      scope: { ...scope },
      labels: new Set(),
      classifier: createClassifier(this.opts.kind ?? "hybrid", this.opts.dimensions, this.opts.classifier),
      calibrator: new ThresholdCalibrator({ maxError: this.opts.maxError, delta: this.opts.delta ?? 0.05, startFactor: this.opts.startFactor ?? 1, window: this.opts.calibrationWindow ?? 20_000 }),
      answered: 0,
      audited: 0,
      auditDisagreements: 0,
      adjudications: 0,
      adjudicatedForModel: 0,
    };
    this.scopes.set(key, m);
    const max = this.opts.maxScopes ?? 1_000;
    while (this.scopes.size > max) this.scopes.delete(this.scopes.keys().next().value!);
    return m;
  }

  /**
   * The model's answer when it is warmed up, certified and confident enough; else undefined.
   * `text` (the item's text) is used by the `hybrid` kind; pass it to learn() and audit() as well.
   */
  lookup(scope: CacheScope, vector: ArrayLike<number>, text?: string): LearnedAnswer | undefined {
    const m = this.model(scope, false);
    if (!m) return undefined;
    const threshold = this.thresholdOf(m);
    if (threshold === undefined) return undefined;
    const p = m.classifier.predict(vector, text);
    this.last = { vector, text, model: m, size: m.classifier.size, p };
    if (!p || p.confidence < threshold) return undefined;
    m.answered++;
    return { label: p.label, confidence: p.confidence, threshold };
  }

  /**
   * An LLM label for an item the cache did not answer: first a calibration point (the model's
   * prediction before it learns this example; only once the model has `minExamples` examples),
   * then a training example. With `adjudicateAbove`
   * and `packed` (the label came from a packed call), a confident disagreement is returned instead
   * of becoming a point: the caller must pass it to adjudicate(), even when asking alone failed.
   */
  learn(scope: CacheScope, vector: ArrayLike<number>, label: string, text?: string, packed = false): PendingAdjudication | undefined {
    const m = this.model(scope, true)!;
    const l = this.last;
    const p = l && l.vector === vector && l.text === text && l.model === m && l.size === m.classifier.size ? l.p : m.classifier.predict(vector, text);
    this.last = undefined;
    // Points only from a model past its warm-up: a smaller one never answers, and its confident
    // early mistakes would sit at the top of the scan for as long as the window keeps them.
    const warm = m.classifier.size >= this.opts.minExamples;
    m.classifier.add(vector, label, text);
    remember(m, label);
    if (!p || !warm) return undefined;
    const above = this.opts.adjudicateAbove;
    if (packed && above !== undefined && p.label !== label && p.confidence >= above) {
      m.adjudications++;
      return { predicted: p.label, confidence: p.confidence, label };
    }
    m.calibrator.add(p.confidence, p.label === label);
    return undefined;
  }

  /**
   * The item's answer alone for a disagreement learn() held back (undefined: asking failed, and
   * the point counts as an error). Only a calibration point: the example was learned already.
   */
  adjudicate(scope: CacheScope, pending: PendingAdjudication, aloneLabel: string | undefined): void {
    const m = this.model(scope, true)!;
    const forModel = aloneLabel !== undefined && aloneLabel === pending.predicted;
    if (forModel) m.adjudicatedForModel++;
    m.calibrator.add(pending.confidence, forModel);
  }

  /**
   * The LLM's answer to an item the cache answered (an audit). It is a calibration point for the
   * region above the threshold (weight 1, see calibration.ts) and a training example.
   */
  audit(scope: CacheScope, vector: ArrayLike<number>, answer: LearnedAnswer, llmLabel: string, text?: string): void {
    const m = this.model(scope, true)!;
    const agree = answer.label === llmLabel;
    m.audited++;
    if (!agree) m.auditDisagreements++;
    // Weight 1, not 1/auditRate: see calibration.ts on why unweighted audits are conservative.
    m.calibrator.add(answer.confidence, agree);
    m.classifier.add(vector, llmLabel, text);
    remember(m, llmLabel);
  }

  /**
   * The certified threshold of a scope, undefined while it is warming up or not certified (it
   * then answers nothing). Cheap: what a lookup checks before paying for an embedding.
   */
  threshold(scope: CacheScope): number | undefined {
    const m = this.scopes.get(LearnedCache.key(scope));
    return m ? this.thresholdOf(m) : undefined;
  }

  private thresholdOf(m: ScopeModel): number | undefined {
    return m.classifier.size >= this.opts.minExamples ? m.calibrator.threshold() : undefined;
  }

  stats(scope: CacheScope): LearnedScopeStats | undefined {
    const m = this.scopes.get(LearnedCache.key(scope));
    return m ? this.statsOf(m) : undefined;
  }

  /**
   * Every scope of one tenant held in memory, most recently used first, with its stats: what
   * `GET /v1/learned` shows that tenant. Never another tenant's.
   */
  scopesOf(tenantId: string): Array<{ scope: CacheScope; stats: LearnedScopeStats }> {
    const out: Array<{ scope: CacheScope; stats: LearnedScopeStats }> = [];
    for (const m of this.scopes.values()) if (m.scope.tenantId === tenantId) out.push({ scope: { ...m.scope }, stats: this.statsOf(m) });
    return out.reverse();
  }

  private statsOf(m: ScopeModel): LearnedScopeStats {
    const threshold = this.thresholdOf(m);
    return {
      state: m.classifier.size < this.opts.minExamples ? "warming-up" : threshold === undefined ? "uncertified" : "answering",
      examples: m.classifier.size,
      labels: [...m.labels].sort(),
      calibrationPoints: m.calibrator.size,
      threshold,
      answered: m.answered,
      audited: m.audited,
      auditDisagreements: m.auditDisagreements,
      adjudications: m.adjudications,
      adjudicatedForModel: m.adjudicatedForModel,
    };
  }
}

function remember(m: ScopeModel, label: string): void {
  if (m.labels.size < MAX_LABELS_SHOWN) m.labels.add(label);
}
