/**
 * Cache keys. A key covers everything that can change an answer: tenant, namespace, task and its
 * prompt version, output schema version, provider, model, task params, and the normalised text.
 * So an exact hit can never cross tenants, tasks, labels, models or prompt versions.
 */
import type { TaskParams } from "../tasks/params.js";
import type { ProviderName } from "../providerNames.js";
import { canonicalJson, normaliseText, promptVersionOf, sha256 } from "../batchKey.js";
import { OUTPUT_SCHEMA_VERSION } from "../tasks/output.js";

export interface CacheScopeInput {
  tenantId: string;
  /** Per-request cache namespace. @defaultValue "default" */
  namespace: string;
  params: TaskParams;
  provider: ProviderName;
  model: string;
}

export function paramsHash(params: TaskParams): string {
  return sha256(canonicalJson(params)).slice(0, 24);
}

/** Everything but the text: shared by the exact key and the semantic store's filter. */
export function scopeFields(s: CacheScopeInput) {
  return {
    tenantId: s.tenantId,
    namespace: s.namespace,
    task: s.params.task,
    promptVersion: promptVersionOf(s.params),
    schemaVersion: OUTPUT_SCHEMA_VERSION,
    provider: s.provider,
    model: s.model,
    paramsHash: paramsHash(s.params),
  };
}

export function exactCacheKey(scope: CacheScopeInput, text: string): string {
  return `ck_${sha256(canonicalJson({ ...scopeFields(scope), text: normaliseText(text) }))}`;
}
