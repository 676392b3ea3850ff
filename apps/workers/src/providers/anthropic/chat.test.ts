import { test } from "node:test";
import assert from "node:assert/strict";
import type Anthropic from "@anthropic-ai/sdk";
import { OUTPUT_SCHEMA_NAME } from "@sieve/shared/tasks/output";
import { costUsd, DEFAULT_PRICES } from "@sieve/shared/pricing";
import type { TaskParams } from "@sieve/shared";
import { buildMessagesRequest, mapMessagesUsage, parseMessagesResponse } from "./chat.js";

const classify: TaskParams = { task: "classify", labels: ["spam", "ham"], labelDescriptions: { spam: "unsolicited" } };
const itemsA = [1, 2, 3].map((n) => ({ id: `i${n}`, text: `first batch ${n}` }));
const itemsB = [1, 2, 3, 4, 5, 6, 7].map((n) => ({ id: `i${n}`, text: `second batch, other texts ${n}` }));

function message(over: { content?: Anthropic.Messages.ContentBlock[]; stop?: Anthropic.Messages.StopReason; usage?: Partial<Anthropic.Messages.Usage> }): Anthropic.Messages.Message {
  return {
    id: "msg_1",
    type: "message",
    role: "assistant",
    model: "claude-haiku-4-5",
    content: over.content ?? [],
    stop_reason: over.stop ?? "tool_use",
    stop_sequence: null,
    usage: { input_tokens: 40, output_tokens: 30, cache_creation_input_tokens: null, cache_read_input_tokens: null, ...over.usage } as Anthropic.Messages.Usage,
  } as Anthropic.Messages.Message;
}

function toolUse(input: unknown): Anthropic.Messages.ContentBlock {
  return { type: "tool_use", id: "toolu_1", name: OUTPUT_SCHEMA_NAME, input } as Anthropic.Messages.ContentBlock;
}

test("request: one forced tool, cached system block, items in the user message", () => {
  const body = buildMessagesRequest({ model: "claude-haiku-4-5", params: classify, items: itemsA });
  assert.equal(body.model, "claude-haiku-4-5");
  assert.ok(body.max_tokens >= 256);
  assert.equal(body.tools?.length, 1);
  const tool = body.tools![0] as Anthropic.Messages.Tool;
  assert.equal(tool.name, OUTPUT_SCHEMA_NAME);
  assert.ok(tool.description);
  assert.deepEqual(body.tool_choice, { type: "tool", name: OUTPUT_SCHEMA_NAME });
  assert.ok(Array.isArray(body.system));
  const sys = body.system as Anthropic.Messages.TextBlockParam[];
  assert.equal(sys.length, 1);
  assert.deepEqual(sys[0]?.cache_control, { type: "ephemeral" });
  assert.match(sys[0]!.text, /spam: unsolicited/);
  assert.equal(body.messages.length, 1);
  assert.equal(body.messages[0]?.role, "user");
  assert.ok(String(body.messages[0]?.content).includes('{"id":"i3","text":"first batch 3"}'));
  assert.ok(!("temperature" in body), "API 2026-10-21 rejects temperature");
});

test("the cached prefix (tools + system) is byte-identical across calls with different items", () => {
  const a = buildMessagesRequest({ model: "m", params: classify, items: itemsA });
  const b = buildMessagesRequest({ model: "m", params: classify, items: itemsB });
  assert.equal(JSON.stringify(a.tools), JSON.stringify(b.tools));
  assert.equal(JSON.stringify(a.system), JSON.stringify(b.system));
  assert.equal(JSON.stringify(a.tool_choice), JSON.stringify(b.tool_choice));
  // The tool schema carries no ids and no counts.
  const schema = JSON.stringify((a.tools![0] as Anthropic.Messages.Tool).input_schema);
  assert.ok(!schema.includes("i1"));
  assert.ok(!schema.includes("minItems"));
  assert.notEqual(JSON.stringify(a.messages), JSON.stringify(b.messages));
});

test("parse: the tool_use input is the answer", () => {
  const answer = { results: itemsA.map((i) => ({ id: i.id, label: "ham" })) };
  const r = parseMessagesResponse(message({ content: [{ type: "text", text: "Here you go", citations: null } as Anthropic.Messages.ContentBlock, toolUse(answer)] }));
  assert.deepEqual(r.answer, answer);
  assert.equal(r.parseError, undefined);
  // A gateway that hands over the input as a JSON string.
  assert.deepEqual(parseMessagesResponse(message({ content: [toolUse(JSON.stringify(answer))] })).answer, answer);
});

test("parse: max_tokens -> truncated; refusal; no tool_use -> fenced JSON text fallback or parseError", () => {
  const cut = parseMessagesResponse(message({ stop: "max_tokens", content: [toolUse({ results: [{ id: "i1" }] })] }));
  assert.equal(cut.answer, undefined);
  assert.match(cut.parseError!, /^truncated/);

  const refusal = parseMessagesResponse(message({ stop: "refusal", content: [] }));
  assert.equal(refusal.answer, undefined);
  assert.match(refusal.parseError!, /^refusal/);

  const fenced = parseMessagesResponse(message({ stop: "end_turn", content: [{ type: "text", text: '```json\n{"results":[]}\n```', citations: null } as Anthropic.Messages.ContentBlock] }));
  assert.deepEqual(fenced.answer, { results: [] });

  const prose = parseMessagesResponse(message({ stop: "end_turn", content: [{ type: "text", text: "I think it's spam.", citations: null } as Anthropic.Messages.ContentBlock] }));
  assert.equal(prose.answer, undefined);
  assert.match(prose.parseError!, /not JSON/);

  const empty = parseMessagesResponse(message({ stop: "end_turn", content: [] }));
  assert.match(empty.parseError!, /no sieve_results tool_use block/);
});

test("usage: inputTokens = input + cache read + cache write; cost prices each part", () => {
  const u = mapMessagesUsage({ input_tokens: 120, output_tokens: 60, cache_read_input_tokens: 2000, cache_creation_input_tokens: 0 });
  assert.deepEqual(u, { inputTokens: 2120, outputTokens: 60, cachedInputTokens: 2000, cacheWriteTokens: 0 });
  const first = mapMessagesUsage({ input_tokens: 120, output_tokens: 60, cache_read_input_tokens: 0, cache_creation_input_tokens: 2000 });
  assert.deepEqual(first, { inputTokens: 2120, outputTokens: 60, cachedInputTokens: 0, cacheWriteTokens: 2000 });
  const p = DEFAULT_PRICES["claude-haiku-4-5"]!;
  assert.ok(Math.abs(costUsd(DEFAULT_PRICES, "claude-haiku-4-5", u).usd - (120 * p.input + 2000 * p.cachedInput! + 60 * p.output) / 1e6) < 1e-12);
  assert.ok(Math.abs(costUsd(DEFAULT_PRICES, "claude-haiku-4-5", first).usd - (120 * p.input + 2000 * p.cacheWrite! + 60 * p.output) / 1e6) < 1e-12);
  assert.deepEqual(mapMessagesUsage({ input_tokens: 7, output_tokens: 3, cache_read_input_tokens: null, cache_creation_input_tokens: null }), { inputTokens: 7, outputTokens: 3 });
  const r = parseMessagesResponse(message({ content: [toolUse({ results: [] })], usage: { cache_read_input_tokens: 10 } }));
  assert.deepEqual(r.usage, { inputTokens: 50, outputTokens: 30, cachedInputTokens: 10 });
});
