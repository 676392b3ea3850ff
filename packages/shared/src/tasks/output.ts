/**
 * The multi-item structured output: one JSON schema per call with one entry per item id, and the
 * validator that never trusts the provider (vLLM grammar backends have ignored minItems/maxItems;
 * models drop, duplicate and reorder entries: docs/providers.md).
 */
import type { TaskParams } from "./params.js";
import { assertExhaustive } from "../errors.js";

export type JsonSchema = Record<string, unknown>;

/** The value of one item's answer, without its id. */
export type ItemOutput = { label: string } | { translation: string };

/** Name used for the response format (OpenAI/vLLM) and the forced tool (Anthropic). */
export const OUTPUT_SCHEMA_NAME = "sieve_results";

/** Schema version: part of batch and cache keys; bump when the output shape changes. */
export const OUTPUT_SCHEMA_VERSION = "results.v1";

function entryProperties(params: TaskParams): { props: Record<string, JsonSchema>; required: string[] } {
  switch (params.task) {
    case "classify":
      return { props: { label: { type: "string", enum: [...params.labels] } }, required: ["label"] };
    case "translate":
      return { props: { translation: { type: "string" } }, required: ["translation"] };
    default:
      return assertExhaustive(params);
  }
}

/**
 * The JSON schema for one call.
 * - `ids` given: the schema pins the ids (enum) and the count (minItems = maxItems = ids.length).
 *   Used for OpenAI and vLLM, whose grammar-constrained decoding enforces it.
 * - `ids` omitted: a schema that is byte-stable for every call of a batch key. Used for the
 *   Anthropic forced tool, because tools sit at the very start of Anthropic's cached prefix and a
 *   per-call schema would defeat prompt caching. The count and ids are then enforced by validation.
 * Strict-mode rules (OpenAI): every property required, additionalProperties false.
 */
export function resultsJsonSchema(params: TaskParams, ids?: readonly string[]): JsonSchema {
  const { props, required } = entryProperties(params);
  const idSchema: JsonSchema = ids ? { type: "string", enum: [...ids] } : { type: "string" };
  const array: JsonSchema = {
    type: "array",
    items: {
      type: "object",
      properties: { id: idSchema, ...props },
      required: ["id", ...required],
      additionalProperties: false,
    },
  };
  if (ids) {
    array.minItems = ids.length;
    array.maxItems = ids.length;
  }
  return {
    type: "object",
    properties: { results: array },
    required: ["results"],
    additionalProperties: false,
  };
}

export type ItemFailureReason = "missing" | "duplicated" | "invalid_value" | "unparseable_output";

export interface ValidatedOutput {
  /** Items answered exactly once with a valid value. */
  ok: Map<string, ItemOutput>;
  /** Items to retry (by splitting), with why. */
  failed: Map<string, { reason: ItemFailureReason; message: string }>;
  /** Entries whose id was not asked for (counted, ignored). */
  unknownIds: number;
}

function checkValue(params: TaskParams, entry: Record<string, unknown>): ItemOutput | string {
  switch (params.task) {
    case "classify": {
      const label = entry.label;
      if (typeof label !== "string") return "label is not a string";
      if (!params.labels.includes(label)) return `label "${label.slice(0, 80)}" is not one of the allowed labels`;
      return { label };
    }
    case "translate": {
      const t = entry.translation;
      if (typeof t !== "string") return "translation is not a string";
      if (t.trim().length === 0) return "translation is empty";
      return { translation: t };
    }
    default:
      return assertExhaustive(params);
  }
}

/** Parses a model's text answer: tolerant of a ```json fence, strict about everything else. */
export function parseModelJson(text: string): unknown {
  const trimmed = text.trim();
  const fenced = /^```(?:json)?\s*([\s\S]*?)\s*```$/.exec(trimmed);
  return JSON.parse(fenced ? fenced[1]! : trimmed);
}

/**
 * Validates one call's answer against the ids it was asked for. An id answered twice is failed
 * (we cannot know which answer is right); a missing id is failed; an invalid value is failed.
 */
export function validateResults(params: TaskParams, ids: readonly string[], answer: unknown): ValidatedOutput {
  const ok = new Map<string, ItemOutput>();
  const failed = new Map<string, { reason: ItemFailureReason; message: string }>();
  const wanted = new Set(ids);
  const results =
    answer && typeof answer === "object" && Array.isArray((answer as { results?: unknown }).results)
      ? ((answer as { results: unknown[] }).results)
      : undefined;
  if (!results) {
    for (const id of ids) failed.set(id, { reason: "unparseable_output", message: "answer has no results array" });
    return { ok, failed, unknownIds: 0 };
  }
  const seen = new Map<string, number>();
  let unknownIds = 0;
  for (const e of results) {
    if (!e || typeof e !== "object") continue;
    const id = (e as { id?: unknown }).id;
    if (typeof id !== "string" || !wanted.has(id)) {
      unknownIds++;
      continue;
    }
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  for (const e of results) {
    if (!e || typeof e !== "object") continue;
    const entry = e as Record<string, unknown>;
    const id = entry.id;
    if (typeof id !== "string" || !wanted.has(id) || failed.has(id) || ok.has(id)) continue;
    if ((seen.get(id) ?? 0) > 1) {
      failed.set(id, { reason: "duplicated", message: `id ${id} answered ${seen.get(id)} times` });
      continue;
    }
    const v = checkValue(params, entry);
    if (typeof v === "string") failed.set(id, { reason: "invalid_value", message: v });
    else ok.set(id, v);
  }
  for (const id of ids) {
    if (!ok.has(id) && !failed.has(id)) failed.set(id, { reason: "missing", message: `id ${id} missing from answer` });
  }
  return { ok, failed, unknownIds };
}
