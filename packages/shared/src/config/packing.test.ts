import { test } from "node:test";
import assert from "node:assert/strict";
import { packingFor } from "./packing.js";

const wide = { maxItems: 25, maxTokens: 6_000, maxWaitMs: 200 };

test("7-8B models get fewer items per call than frontier models; the env stays the upper bound", () => {
  assert.deepEqual(packingFor(wide, "classify", "Qwen/Qwen2.5-7B-Instruct-AWQ"), { maxItems: 10, maxTokens: 2_500, maxWaitMs: 200 });
  assert.deepEqual(packingFor(wide, "translate", "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"), { maxItems: 4, maxTokens: 1_200, maxWaitMs: 200 });
  assert.equal(packingFor(wide, "classify", "Qwen/Qwen2.5-3B-Instruct").maxItems, 5);
  assert.deepEqual(packingFor(wide, "classify", "gpt-4.1-mini"), wide);
  assert.deepEqual(packingFor(wide, "classify", "Qwen/Qwen2.5-72B-Instruct-AWQ"), wide, "72B is not 7B");
  assert.equal(packingFor({ ...wide, maxItems: 6 }, "classify", "Qwen/Qwen2.5-7B-Instruct-AWQ").maxItems, 6, "a lower env value wins");
});
