/** One learned-cache model of a kind (classifier.ts, hybrid.ts). */
import { CentroidClassifier, KnnClassifier, type Classifier, type ClassifierKind } from "./classifier.js";
import { HybridClassifier, type HybridOptions } from "./hybrid.js";

export function createClassifier(kind: ClassifierKind, dims: number, opts?: HybridOptions): Classifier {
  if (kind === "hybrid") return new HybridClassifier(dims, opts);
  return kind === "knn" ? new KnnClassifier(dims, opts) : new CentroidClassifier(dims, opts);
}
