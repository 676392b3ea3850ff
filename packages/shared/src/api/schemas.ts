/**
 * HTTP request bodies. Limits come from the environment, so the schema is built by a function.
 * Every violation becomes a 400 naming the field (see `fieldErrors`).
 */
import { z } from "zod";
import { ClassifyParams, TranslateParams, TASK_NAMES, type TaskParams } from "../tasks/params.js";
import { HttpError } from "../errors.js";
import { PROVIDERS } from "../providerNames.js";

export interface RequestLimits {
  /** Most items in one request. */
  maxItems: number;
  /** Longest item text, in characters. */
  maxTextChars: number;
}

/** Caller item ids: printable, short, so they can be echoed in results and logs. */
export const ItemId = z
  .string()
  .min(1, "must not be empty")
  .max(128, "at most 128 characters")
  .regex(/^[\x21-\x7E]+$/, "printable ASCII without spaces");

/** One item: the count limit (`maxItems`) is the request's, applied to its `items` array only. */
export function Item(limits: Pick<RequestLimits, "maxTextChars">) {
  return z.strictObject({
    id: ItemId,
    text: z
      .string()
      .min(1, "must not be empty")
      .max(limits.maxTextChars, `at most ${limits.maxTextChars} characters`)
      .refine((t) => t.trim().length > 0, "must not be blank"),
  });
}

export const CacheMode = z.enum(["use", "refresh", "bypass"]);
export type CacheMode = z.infer<typeof CacheMode>;

export const CacheOptions = z.strictObject({
  /** use: answer from the cache when possible; refresh: recompute and overwrite; bypass: neither read nor write. */
  mode: CacheMode.default("use"),
  /** Time to live of entries this request writes, in seconds. */
  ttlSeconds: z.number().int().min(1).max(365 * 24 * 3600).optional(),
  /** Separate cache space inside the tenant. */
  namespace: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "1-64 characters of A-Z a-z 0-9 _ . -")
    .optional(),
  /** Semantic lookups on (default) or off for this request. */
  semantic: z.boolean().optional(),
  /** Learned classification cache for this request (classify, needs SIEVE_LEARNED_CACHE=true; docs/quality.md). @defaultValue false */
  learned: z.boolean().optional(),
});
export type CacheOptions = z.infer<typeof CacheOptions>;

const Lane = z.enum(["realtime", "batch", "auto"]);

/**
 * The options of a request besides its task parameters and items, defined once: the fields of
 * POST /v1/jobs and of a bulk body's header line.
 */
export const RequestOptions = z.object({
  provider: z.enum(PROVIDERS).optional(),
  model: z.string().min(1).max(128).optional(),
  /** "auto": the lane router picks the cheapest lane that meets `deadline` per item (docs/gpu-lane.md). */
  lane: Lane.default("realtime"),
  /** ISO 8601 duration from now (PT10S, PT1H, P1D) or timestamp with a time zone. Parsed at submit. */
  deadline: z.string().min(1, "must not be empty").max(64, "at most 64 characters").optional(),
  cache: CacheOptions.optional(),
});
export type RequestOptions = z.infer<typeof RequestOptions>;

function withItems<T extends z.ZodRawShape>(shape: T, limits: RequestLimits) {
  return z.strictObject({
    ...shape,
    ...RequestOptions.shape,
    items: z
      .array(Item(limits))
      .min(1, "at least one item is required")
      .max(limits.maxItems, `at most ${limits.maxItems} items per request (use POST /v1/bulk for more)`),
  });
}

export function JobRequest(limits: RequestLimits) {
  return z
    .discriminatedUnion(
      "task",
      [withItems(ClassifyParams.shape, limits), withItems(TranslateParams.shape, limits)],
      { error: () => `must be one of: ${TASK_NAMES.join(", ")}` },
    )
    .superRefine((body, ctx) => {
      if (body.lane === "auto" && body.deadline === undefined) {
        ctx.addIssue({ code: "custom", path: ["deadline"], message: 'is required with lane "auto" (e.g. "PT1H")' });
      }
      if (body.lane === "auto" && body.provider !== undefined) {
        ctx.addIssue({ code: "custom", path: ["provider"], message: 'not allowed with lane "auto": the lane router chooses the route' });
      }
      if (body.lane === "auto" && body.model !== undefined) {
        ctx.addIssue({ code: "custom", path: ["model"], message: 'not allowed with lane "auto": the lane router chooses the route' });
      }
      const seen = new Map<string, number>();
      body.items.forEach((item, i) => {
        const first = seen.get(item.id);
        if (first !== undefined) {
          ctx.addIssue({ code: "custom", path: ["items", i, "id"], message: `duplicate item id "${item.id}" (also items[${first}].id)` });
        } else seen.set(item.id, i);
      });
    });
}
export type JobRequest = z.infer<ReturnType<typeof JobRequest>>;

/**
 * The first line of a bulk body (POST /v1/bulk): the task parameters and the request options,
 * exactly the fields of POST /v1/jobs minus `items`. Lane "auto" and `deadline` are refused before
 * this schema is applied (apps/producer/src/bulk/header.ts). Default lane: "realtime", as on /v1/jobs.
 */
const BulkOptions = { ...RequestOptions.shape, lane: Lane.exclude(["auto"]).default("realtime") };
export const BulkHeader = z.discriminatedUnion(
  "task",
  [z.strictObject({ ...ClassifyParams.shape, ...BulkOptions }), z.strictObject({ ...TranslateParams.shape, ...BulkOptions })],
  { error: () => `must be one of: ${TASK_NAMES.join(", ")}` },
);
export type BulkHeader = z.infer<typeof BulkHeader>;

const Tenant = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "1-64 characters of A-Z a-z 0-9 _ -");

/** The header of an inbox file (the nightly bulk run): a bulk header that also names its tenant. */
export const InboxHeader = z.discriminatedUnion(
  "task",
  [z.strictObject({ ...ClassifyParams.shape, ...BulkOptions, tenant: Tenant }), z.strictObject({ ...TranslateParams.shape, ...BulkOptions, tenant: Tenant })],
  { error: () => `must be one of: ${TASK_NAMES.join(", ")}` },
);
export type InboxHeader = z.infer<typeof InboxHeader>;

/** The task parameters of a request or a bulk header (what goes into prompts and batch keys), without its other fields. */
export function taskParamsOf(req: TaskParams): TaskParams {
  if (req.task === "classify") {
    return ClassifyParams.parse({ task: "classify", labels: req.labels, labelDescriptions: req.labelDescriptions, instructions: req.instructions });
  }
  return TranslateParams.parse({ task: "translate", targetLanguage: req.targetLanguage, sourceLanguage: req.sourceLanguage, instructions: req.instructions });
}

/** "items[3].text" from ["items", 3, "text"]. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || "body";
}

/** A 400 whose message names the first offending field and whose details list all of them (at most 20). */
export function validationError(error: z.ZodError): HttpError {
  const issues = error.issues.flatMap((i) => {
    // Unknown keys: name each key, not the object holding it.
    if (i.code === "unrecognized_keys") {
      return i.keys.map((k) => ({ field: fieldPath([...i.path, k]), message: "unknown field" }));
    }
    if (i.code === "invalid_type") {
      const missing = /received undefined/.test(i.message);
      return [{ field: fieldPath(i.path), message: missing ? "is required" : `must be ${i.expected === "object" ? "an object" : `a ${i.expected}`}` }];
    }
    return [{ field: fieldPath(i.path), message: i.message }];
  });
  const first = issues[0] ?? { field: "body", message: "invalid" };
  return new HttpError(400, "invalid_request", `${first.field}: ${first.message}`, issues.slice(0, 20));
}

export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error);
  return r.data;
}
