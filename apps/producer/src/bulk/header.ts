/**
 * The first line of a bulk body: the task parameters and options, exactly the fields of
 * POST /v1/jobs minus `items`. The inbox (nightly files) additionally names the tenant.
 */
import { z } from "zod";
import { CacheOptions, ClassifyParams, PROVIDERS, TASK_NAMES, TranslateParams, type TaskParams } from "@sieve/shared";

const Options = {
  provider: z.enum(PROVIDERS).optional(),
  model: z.string().min(1).max(128).optional(),
  lane: z.enum(["realtime", "batch"]).default("realtime"),
  cache: CacheOptions.optional(),
};

const Tenant = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "1-64 characters of A-Z a-z 0-9 _ -");

/** Header of POST /v1/bulk (the tenant is the API key's). Default lane: "realtime", as on /v1/jobs. */
export const BulkHeader = z.discriminatedUnion(
  "task",
  [z.strictObject({ ...ClassifyParams.shape, ...Options }), z.strictObject({ ...TranslateParams.shape, ...Options })],
  { error: () => `must be one of: ${TASK_NAMES.join(", ")}` },
);
export type BulkHeader = z.infer<typeof BulkHeader>;

/** Header of an inbox file: also names its tenant. */
export const InboxHeader = z.discriminatedUnion(
  "task",
  [z.strictObject({ ...ClassifyParams.shape, ...Options, tenant: Tenant }), z.strictObject({ ...TranslateParams.shape, ...Options, tenant: Tenant })],
  { error: () => `must be one of: ${TASK_NAMES.join(", ")}` },
);
export type InboxHeader = z.infer<typeof InboxHeader>;

export function headerParams(h: BulkHeader): TaskParams {
  if (h.task === "classify") {
    return ClassifyParams.parse({ task: "classify", labels: h.labels, labelDescriptions: h.labelDescriptions, instructions: h.instructions });
  }
  return TranslateParams.parse({ task: "translate", targetLanguage: h.targetLanguage, sourceLanguage: h.sourceLanguage, instructions: h.instructions });
}
