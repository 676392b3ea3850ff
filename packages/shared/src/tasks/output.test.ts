import { test } from "node:test";
import assert from "node:assert/strict";
import { parseModelJson, resultsJsonSchema, validateResults } from "./output.js";
import type { TaskParams } from "./params.js";

const cls: TaskParams = { task: "classify", labels: ["billing", "technical"] };

test("schema pins ids and count for grammar-constrained providers", () => {
  const s = resultsJsonSchema(cls, ["i1", "i2"]) as any;
  assert.deepEqual(s.properties.results.items.properties.id.enum, ["i1", "i2"]);
  assert.equal(s.properties.results.minItems, 2);
  assert.equal(s.properties.results.maxItems, 2);
  assert.deepEqual(s.properties.results.items.properties.label.enum, ["billing", "technical"]);
  assert.equal(s.additionalProperties, false);
  assert.deepEqual(s.properties.results.items.required, ["id", "label"]);
});

test("stable schema (no ids) is identical across calls", () => {
  assert.deepEqual(resultsJsonSchema(cls), resultsJsonSchema(cls));
  assert.equal((resultsJsonSchema(cls) as any).properties.results.minItems, undefined);
});

test("valid, missing, duplicated, invalid and unknown entries are told apart", () => {
  const v = validateResults(cls, ["i1", "i2", "i3", "i4"], {
    results: [
      { id: "i1", label: "billing" },
      { id: "i2", label: "billing" },
      { id: "i2", label: "technical" },
      { id: "i3", label: "sales" },
      { id: "i9", label: "billing" },
    ],
  });
  assert.deepEqual([...v.ok.keys()], ["i1"]);
  assert.equal(v.failed.get("i2")?.reason, "duplicated");
  assert.equal(v.failed.get("i3")?.reason, "invalid_value");
  assert.equal(v.failed.get("i4")?.reason, "missing");
  assert.equal(v.unknownIds, 1);
});

test("an answer without a results array fails every item", () => {
  const v = validateResults(cls, ["i1", "i2"], { foo: 1 });
  assert.equal(v.failed.size, 2);
  assert.equal(v.failed.get("i1")?.reason, "unparseable_output");
});

test("translate: empty translation is invalid", () => {
  const v = validateResults({ task: "translate", targetLanguage: "de" }, ["i1", "i2"], { results: [{ id: "i1", translation: " " }, { id: "i2", translation: "Hallo" }] });
  assert.equal(v.failed.get("i1")?.reason, "invalid_value");
  assert.deepEqual(v.ok.get("i2"), { translation: "Hallo" });
});

test("parseModelJson accepts a json fence, rejects truncated JSON", () => {
  assert.deepEqual(parseModelJson('```json\n{"a":1}\n```'), { a: 1 });
  assert.throws(() => parseModelJson('{"results":[{"id":"i1"'));
});
