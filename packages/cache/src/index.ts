/**
 * @sieve/cache: the semantic cache's building blocks.
 *   embeddings: Embedder, UseLiteEmbedder (offline default), OpenAIEmbedder (OpenAI-compatible)
 *   vector:     VectorStore, PgVectorStore (pgvector in PGlite), QdrantStore (Qdrant REST)
 *   semantic:   guardedMatch (negation / number guards), SemanticCache
 */
export * from "./embeddings/types.js";
export { UseLiteEmbedder, type UseLiteEmbedderOptions } from "./embeddings/use-lite.js";
export { OpenAIEmbedder, type OpenAIEmbedderOptions } from "./embeddings/openai.js";
export * from "./vector/types.js";
export { cosine, scopeKey, toStoredVector, BACKEND_SCORE_SLACK } from "./vector/scope.js";
export { PgVectorStore, type PgVectorStoreOptions } from "./vector/pgvector.js";
export { QdrantStore, pointId, type QdrantStoreOptions } from "./vector/qdrant.js";
export { guardedMatch, negationCount, numberSignature, type GuardOptions, type GuardResult } from "./semantic/guards.js";
export * from "./semantic/cache.js";
// Learned classification cache (docs/quality.md).
export { LearnedCache, type LearnedCacheOptions, type LearnedAnswer, type LearnedScopeState, type LearnedScopeStats, type PendingAdjudication } from "./learned/cache.js";
export { KnnClassifier, CentroidClassifier, type Classifier, type ClassifierKind, type Prediction } from "./learned/classifier.js";
export { HybridClassifier, type HybridOptions } from "./learned/hybrid.js";
export { createClassifier } from "./learned/factory.js";
export { ThresholdCalibrator, clopperPearsonUpper, binomialCdf } from "./learned/calibration.js";
