/**
 * Batch keys and cache keys. Two items may share one prompt only if they share a batch key: the
 * tenant (unless SIEVE_MIX_TENANTS), the task and its prompt version, the output schema version,
 * provider, model, lane and the canonical task parameters.
 */
import { createHash } from "node:crypto";
import type { TaskParams } from "./tasks/params.js";
import { PROMPT_VERSIONS } from "./prompts/index.js";
import { OUTPUT_SCHEMA_VERSION } from "./tasks/output.js";
import type { ProviderName } from "./providerNames.js";

/** JSON with sorted object keys, so equal params always hash equally. Array order is kept (label order is part of the prompt). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export interface BatchKeyParts {
  tenantId: string;
  params: TaskParams;
  provider: ProviderName;
  model: string;
  /** "flex": OpenAI flex processing calls are packed apart from default-tier ones. */
  lane: "realtime" | "batch" | "flex";
  /** When true, the tenant is left out (SIEVE_MIX_TENANTS). */
  mixTenants?: boolean;
}

export function promptVersionOf(params: TaskParams): string {
  return PROMPT_VERSIONS[params.task];
}

export function batchKey(p: BatchKeyParts): string {
  const parts = {
    tenant: p.mixTenants ? "*" : p.tenantId,
    task: p.params.task,
    prompt: promptVersionOf(p.params),
    schema: OUTPUT_SCHEMA_VERSION,
    provider: p.provider,
    model: p.model,
    lane: p.lane,
    params: p.params,
  };
  return `bk_${sha256(canonicalJson(parts)).slice(0, 24)}`;
}

/**
 * The batch key of a job's items on a route and lane: how every lane computes it (accepting a
 * request, a bulk body, the batch lane's realtime fallback, the sweeper's repair parcels, a parcel
 * moved off a provider that is down). SIEVE_MIX_TENANTS decides whether tenants share keys.
 */
export function batchKeyFor(
  env: { SIEVE_MIX_TENANTS: boolean },
  job: { tenantId: string; params: TaskParams },
  route: { provider: ProviderName; model: string },
  lane: BatchKeyParts["lane"],
): string {
  return batchKey({ tenantId: job.tenantId, params: job.params, provider: route.provider, model: route.model, lane, mixTenants: env.SIEVE_MIX_TENANTS });
}

/** Whitespace-folded, NFC-normalised text: what the exact cache compares. Case is kept (it can change meaning). */
export function normaliseText(text: string): string {
  return text.normalize("NFC").replace(/\s+/g, " ").trim();
}
