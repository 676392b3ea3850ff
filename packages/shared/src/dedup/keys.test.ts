import { test } from "node:test";
import assert from "node:assert/strict";
import { exactCacheKey, scopeFields, type CacheScopeInput } from "./keys.js";

const base: CacheScopeInput = { tenantId: "acme", namespace: "default", params: { task: "classify", labels: ["a", "b"] }, provider: "openai", model: "m" };

test("same scope and text modulo whitespace -> same key", () => {
  assert.equal(exactCacheKey(base, "Hello  world "), exactCacheKey(base, "Hello world"));
});

test("case is kept: it can change meaning (US vs us)", () => {
  assert.notEqual(exactCacheKey(base, "US"), exactCacheKey(base, "us"));
});

test("every scope field changes the key", () => {
  const k = exactCacheKey(base, "t");
  const variants: CacheScopeInput[] = [
    { ...base, tenantId: "globex" },
    { ...base, namespace: "eval" },
    { ...base, provider: "anthropic" },
    { ...base, model: "m2" },
    { ...base, params: { task: "classify", labels: ["a", "c"] } },
    { ...base, params: { task: "classify", labels: ["b", "a"] } },
    { ...base, params: { task: "classify", labels: ["a", "b"], instructions: "be strict" } },
    { ...base, params: { task: "translate", targetLanguage: "de" } },
  ];
  for (const v of variants) assert.notEqual(exactCacheKey(v, "t"), k, JSON.stringify(v));
});

test("the prompt version and schema version are part of the scope", () => {
  const f = scopeFields(base);
  assert.equal(f.promptVersion, "classify.v1");
  assert.equal(f.schemaVersion, "results.v1");
});
