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
  /** Share of answers the caller audits (weights audited points by 1/auditRate). */
  auditRate: number;
  /** Vector length of the embedder. */
  dimensions: number;
  /** @defaultValue "knn" (bench:quality measured it against "centroid"; docs/quality.md) */
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
  /** Scopes kept in memory, least recently used dropped beyond. @defaultValue 1000 */
  maxScopes?: number;
}

export interface LearnedAnswer {
  label: string;
  confidence: number;
  /** The threshold it cleared. */
  threshold: number;
}

export interface LearnedScopeStats {
  examples: number;
  calibrationPoints: number;
  /** undefined: not certified yet (the cache does not answer in this scope). */
  threshold: number | undefined;
  answered: number;
  audited: number;
  auditDisagreements: number;
}

interface ScopeModel {
  classifier: Classifier;
  calibrator: ThresholdCalibrator;
  answered: number;
  audited: number;
  auditDisagreements: number;
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

  private model(key: string, create: boolean): ScopeModel | undefined {
    let m = this.scopes.get(key);
    if (m) {
      // Map order is insertion order: re-insert to mark as recently used.
      this.scopes.delete(key);
      this.scopes.set(key, m);
      return m;
    }
    if (!create) return undefined;
    m = {
      classifier: createClassifier(this.opts.kind ?? "knn", this.opts.dimensions, this.opts.classifier),
      calibrator: new ThresholdCalibrator({ maxError: this.opts.maxError, delta: this.opts.delta ?? 0.05, startFactor: this.opts.startFactor ?? 1, window: this.opts.calibrationWindow ?? 20_000 }),
      answered: 0,
      audited: 0,
      auditDisagreements: 0,
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
    const m = this.model(LearnedCache.key(scope), false);
    if (!m || m.classifier.size < this.opts.minExamples) return undefined;
    const threshold = m.calibrator.threshold();
    if (threshold === undefined) return undefined;
    const p = m.classifier.predict(vector, text);
    this.last = { vector, text, model: m, size: m.classifier.size, p };
    if (!p || p.confidence < threshold) return undefined;
    m.answered++;
    return { label: p.label, confidence: p.confidence, threshold };
  }

  /**
   * An LLM label for an item the cache did not answer: first a calibration point (the model's
   * prediction before it learns this example), then a training example.
   */
  learn(scope: CacheScope, vector: ArrayLike<number>, label: string, text?: string): void {
    const m = this.model(LearnedCache.key(scope), true)!;
    const l = this.last;
    const p = l && l.vector === vector && l.text === text && l.model === m && l.size === m.classifier.size ? l.p : m.classifier.predict(vector, text);
    this.last = undefined;
    if (p) m.calibrator.add(p.confidence, p.label === label);
    m.classifier.add(vector, label, text);
  }

  /**
   * The LLM's answer to an item the cache answered (an audit). It is a calibration point for the
   * region above the threshold (weight 1/auditRate) and a training example.
   */
  audit(scope: CacheScope, vector: ArrayLike<number>, answer: LearnedAnswer, llmLabel: string, text?: string): void {
    const m = this.model(LearnedCache.key(scope), true)!;
    const agree = answer.label === llmLabel;
    m.audited++;
    if (!agree) m.auditDisagreements++;
    // Weight 1, not 1/auditRate: see calibration.ts on why unweighted audits are conservative.
    m.calibrator.add(answer.confidence, agree);
    m.classifier.add(vector, llmLabel, text);
  }

  stats(scope: CacheScope): LearnedScopeStats | undefined {
    const m = this.scopes.get(LearnedCache.key(scope));
    if (!m) return undefined;
    return {
      examples: m.classifier.size,
      calibrationPoints: m.calibrator.size,
      threshold: m.classifier.size >= this.opts.minExamples ? m.calibrator.threshold() : undefined,
      answered: m.answered,
      audited: m.audited,
      auditDisagreements: m.auditDisagreements,
    };
  }
}
