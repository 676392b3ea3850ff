import { test } from "node:test";
import assert from "node:assert/strict";
import { buildVllmChatRequest } from "./chat.js";

const MODEL = "Qwen/Qwen2.5-7B-Instruct-AWQ";

test("vLLM requests use response_format json_schema, never the removed guided_json", () => {
  const body = buildVllmChatRequest({ model: MODEL, params: { task: "translate", targetLanguage: "fr" }, items: [{ id: "i1", text: "hello" }, { id: "i2", text: "bye" }] });
  assert.equal(body.response_format?.type, "json_schema");
  const json = JSON.stringify(body);
  assert.ok(!json.includes("guided_"));
  assert.ok(!json.includes("structured_outputs"));
  assert.match(json, /"minItems":2,"maxItems":2/);
});
