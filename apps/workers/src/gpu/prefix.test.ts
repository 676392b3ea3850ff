import { test } from "node:test";
import assert from "node:assert/strict";
import { buildVllmChatRequest } from "../providers/vllm/chat.js";

// vLLM's automatic prefix caching reuses KV blocks of a byte-identical prefix
// (https://docs.vllm.ai/en/latest/features/automatic_prefix_caching.html): every call of one
// batch key must start with the same system message, whatever items it carries.
test("the system prompt is byte-stable per batch key; items only ever follow it", () => {
  const params = { task: "classify" as const, labels: ["billing", "technical", "other"], instructions: "Be strict." };
  const a = buildVllmChatRequest({ model: "m", params, items: [{ id: "i1", text: "I was charged twice" }] });
  const b = buildVllmChatRequest({ model: "m", params, items: Array.from({ length: 7 }, (_, i) => ({ id: `i${i + 1}`, text: `the app crashes ${i}` })) });
  assert.equal(a.messages[0]!.role, "system");
  assert.equal(a.messages[0]!.content, b.messages[0]!.content);
  assert.ok(!String(a.messages[0]!.content).includes("charged twice"), "no item text in the system prompt");
  assert.notEqual(a.messages[1]!.content, b.messages[1]!.content);
  // Another batch key (other labels) is another prefix.
  const c = buildVllmChatRequest({ model: "m", params: { ...params, labels: ["x", "y"] }, items: [{ id: "i1", text: "I was charged twice" }] });
  assert.notEqual(a.messages[0]!.content, c.messages[0]!.content);
});
