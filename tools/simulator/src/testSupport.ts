/** Helpers for the simulator's own tests: Sieve-shaped requests and a real JSON-schema check. */
import assert from "node:assert/strict";
import { Ajv } from "ajv";
import { renderPrompt, type PromptItem } from "@sieve/shared/prompts/index";
import { resultsJsonSchema, type JsonSchema } from "@sieve/shared/tasks/output";
import type { ClassifyParams, TaskParams } from "@sieve/shared/tasks/params";
import { countTokens } from "@sieve/shared/tokens";

export const LABELS = ["World", "Sports", "Business", "Sci/Tech"];
export const CLASSIFY: ClassifyParams = { task: "classify", labels: LABELS };

/** Classify params whose system prompt is well over 1024 tokens (cacheable everywhere). */
export function longClassifyParams(): ClassifyParams {
  const labelDescriptions = Object.fromEntries(
    LABELS.map((l) => [
      l,
      `Texts about ${l.toLowerCase()}: ` +
        Array.from({ length: 40 }, (_, i) => `topic${i} of ${l}`).join(", ").slice(0, 480),
    ]),
  );
  const params: ClassifyParams = {
    ...CLASSIFY,
    labelDescriptions,
    instructions: Array.from({ length: 120 }, (_, i) => `rule ${i}: prefer the most specific label.`).join(" ").slice(0, 2000),
  };
  assert.ok(countTokens(renderPrompt(params, []).system) >= 1100, "the long system prompt is long");
  return params;
}

export function makeItems(n: number, prefix = "text"): PromptItem[] {
  return Array.from({ length: n }, (_, i) => ({ id: `i${i + 1}`, text: `${prefix} number ${i + 1}: something happened today.` }));
}

/** What Sieve sends for one call: system + user prompts and the schema (ids pinned or not). */
export function sieveCall(params: TaskParams, items: readonly PromptItem[], pinIds = true) {
  const { system, user } = renderPrompt(params, items);
  const ids = items.map((i) => i.id);
  const schema = resultsJsonSchema(params, pinIds ? ids : undefined);
  return { system, user, ids, schema };
}

const ajv = new Ajv({ strict: false, allErrors: true });

/** Asserts `value` satisfies the JSON schema (a real validator, not our own code). */
export function assertSchemaValid(schema: JsonSchema, value: unknown): void {
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `schema-valid: ${ajv.errorsText(validate.errors)}`);
}
