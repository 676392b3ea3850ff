import { test } from "node:test";
import assert from "node:assert/strict";
import { parseEnv } from "./env.js";
import { taskSettings } from "./tasks.js";

test("taskSettings reads each task's own variables, never the other task's", () => {
  const env = parseEnv({
    SIEVE_CLASSIFY_MAX_ITEMS: "7",
    SIEVE_TRANSLATE_MAX_ITEMS: "3",
    SIEVE_CLASSIFY_MAX_WAIT_MS: "11",
    SIEVE_TRANSLATE_MAX_WAIT_MS: "13",
    SIEVE_BATCH_CLASSIFY_MAX_ITEMS: "40",
    SIEVE_BATCH_TRANSLATE_MAX_ITEMS: "4",
    SIEVE_SEMANTIC_THRESHOLD_CLASSIFY: "0.9",
    SIEVE_SEMANTIC_THRESHOLD_TRANSLATE: "0.99",
    SIEVE_SEMANTIC_ALLOW_MISMATCH_TRANSLATE: "numbers",
    SIEVE_SEMANTIC_TASKS: "translate",
    SIEVE_ROUTE_CLASSIFY: "anthropic:claude-haiku-4-5",
  });
  const c = taskSettings(env, "classify");
  const t = taskSettings(env, "translate");
  assert.deepEqual(c.packing, { maxItems: 7, maxTokens: 6000, maxWaitMs: 11 });
  assert.deepEqual(t.packing, { maxItems: 3, maxTokens: 3000, maxWaitMs: 13 });
  assert.deepEqual([c.batchMaxItems, t.batchMaxItems], [40, 4]);
  assert.deepEqual([c.semanticThreshold, t.semanticThreshold], [0.9, 0.99]);
  assert.deepEqual([c.semanticAllowMismatch, t.semanticAllowMismatch], ["", "numbers"]);
  assert.deepEqual([c.semanticByDefault, t.semanticByDefault], [false, true]);
  assert.deepEqual([c.route, t.route], ["anthropic:claude-haiku-4-5", undefined]);
  assert.deepEqual([c.routeVariable, t.routeVariable], ["SIEVE_ROUTE_CLASSIFY", "SIEVE_ROUTE_TRANSLATE"]);
});
