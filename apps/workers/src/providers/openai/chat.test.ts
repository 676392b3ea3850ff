import { test } from "node:test";
import assert from "node:assert/strict";
import type OpenAI from "openai";
import { OUTPUT_SCHEMA_NAME } from "@sieve/shared/tasks/output";
import { costUsd, DEFAULT_PRICES } from "@sieve/shared/pricing";
import type { TaskParams } from "@sieve/shared";
import { buildChatRequest, mapChatUsage, parseChatResponse } from "./chat.js";
import { MAX_OUTPUT_TOKENS_CAP } from "../budget.js";

const classify: TaskParams = { task: "classify", labels: ["positive", "negative", "neutral"] };
const items = [1, 2, 3, 4, 5].map((n) => ({ id: `i${n}`, text: `text number ${n}` }));

function completion(over: { content?: string | null; refusal?: string | null; finish?: string; usage?: Partial<OpenAI.CompletionUsage> }): OpenAI.Chat.Completions.ChatCompletion {
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 0,
    model: "gpt-4.1-mini",
    choices: [
      {
        index: 0,
        logprobs: null,
        finish_reason: (over.finish ?? "stop") as "stop",
        message: { role: "assistant", content: over.content === undefined ? null : over.content, refusal: over.refusal ?? null },
      },
    ],
    usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120, ...over.usage },
  };
}

test("request body: system + user messages, strict json_schema pinning ids and count, temperature 0", () => {
  const body = buildChatRequest({ model: "gpt-4.1-mini", params: classify, items });
  assert.equal(body.model, "gpt-4.1-mini");
  assert.equal(body.temperature, 0);
  assert.equal(body.messages.length, 2);
  assert.equal(body.messages[0]?.role, "system");
  assert.equal(body.messages[1]?.role, "user");
  assert.match(String(body.messages[0]?.content), /positive/);
  for (const it of items) assert.ok(String(body.messages[1]?.content).includes(JSON.stringify({ id: it.id, text: it.text })));

  const rf = body.response_format;
  assert.ok(rf && rf.type === "json_schema");
  assert.equal(rf.json_schema.name, OUTPUT_SCHEMA_NAME);
  assert.equal(rf.json_schema.strict, true);
  const schema = rf.json_schema.schema as { properties: { results: { minItems: number; maxItems: number; items: { properties: { id: { enum: string[] }; label: { enum: string[] } } } } } };
  const results = schema.properties.results;
  assert.equal(results.minItems, 5);
  assert.equal(results.maxItems, 5);
  assert.deepEqual(results.items.properties.id.enum, ["i1", "i2", "i3", "i4", "i5"]);
  assert.deepEqual(results.items.properties.label.enum, ["positive", "negative", "neutral"]);
  // No removed vLLM-only fields.
  assert.ok(!("guided_json" in body));
});

test("max_tokens grows with the item count and stays within the cap", () => {
  const five = buildChatRequest({ model: "m", params: classify, items }).max_tokens!;
  const many = buildChatRequest({ model: "m", params: classify, items: Array.from({ length: 100 }, (_, i) => ({ id: `i${i}`, text: "x" })) }).max_tokens!;
  assert.ok(five >= 256, `five: ${five}`);
  assert.ok(many > five, `many ${many} > five ${five}`);
  assert.ok(many >= 100 * 12, "room for 100 entries");
  const translate: TaskParams = { task: "translate", targetLanguage: "de" };
  const long = "word ".repeat(2000);
  const tr = buildChatRequest({ model: "m", params: translate, items: [{ id: "i1", text: long }] }).max_tokens!;
  assert.ok(tr > 2000, `translation budget ${tr} covers the source`);
  const huge = buildChatRequest({ model: "m", params: translate, items: Array.from({ length: 10 }, (_, i) => ({ id: `i${i}`, text: long })) }).max_tokens!;
  assert.equal(huge, MAX_OUTPUT_TOKENS_CAP);
});

test("parse: a valid answer, and a ```json fenced one", () => {
  const answer = { results: items.map((i) => ({ id: i.id, label: "neutral" })) };
  const r = parseChatResponse(completion({ content: JSON.stringify(answer) }));
  assert.deepEqual(r.answer, answer);
  assert.equal(r.parseError, undefined);
  const fenced = parseChatResponse(completion({ content: "```json\n" + JSON.stringify(answer) + "\n```" }));
  assert.deepEqual(fenced.answer, answer);
});

test("parse: truncated, refusal, invalid JSON, empty, content_filter -> answer undefined + parseError", () => {
  const cut = parseChatResponse(completion({ content: '{"results":[{"id":"i1","lab', finish: "length" }));
  assert.equal(cut.answer, undefined);
  assert.match(cut.parseError!, /^truncated/);
  assert.equal(cut.usage.outputTokens, 20, "usage is kept: the call was billed");

  const refusal = parseChatResponse(completion({ refusal: "I can't help with that." }));
  assert.equal(refusal.answer, undefined);
  assert.match(refusal.parseError!, /^refusal: I can't help/);

  const bad = parseChatResponse(completion({ content: "Sure! Here are the labels: positive" }));
  assert.equal(bad.answer, undefined);
  assert.match(bad.parseError!, /^invalid JSON/);

  assert.match(parseChatResponse(completion({ content: null })).parseError!, /^empty content/);
  assert.match(parseChatResponse(completion({ content: "{}", finish: "content_filter" })).parseError!, /^content_filter/);
  const none = parseChatResponse({ ...completion({}), choices: [] });
  assert.equal(none.answer, undefined);
  assert.match(none.parseError!, /no choices/);
});

test("usage: prompt/completion tokens and cached_tokens", () => {
  const u = parseChatResponse(completion({ content: "{}", usage: { prompt_tokens: 2000, completion_tokens: 50, prompt_tokens_details: { cached_tokens: 1536 } } })).usage;
  assert.deepEqual(u, { inputTokens: 2000, outputTokens: 50, cachedInputTokens: 1536 });
  assert.deepEqual(mapChatUsage(undefined), { inputTokens: 0, outputTokens: 0 });
  assert.deepEqual(mapChatUsage({ prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 }), { inputTokens: 5, outputTokens: 1 });
  // cached tokens are priced at the cached rate: 464 plain + 1536 cached
  const cost = costUsd(DEFAULT_PRICES, "gpt-4.1-mini", u).usd;
  assert.ok(Math.abs(cost - (464 * 0.4 + 1536 * 0.1 + 50 * 1.6) / 1e6) < 1e-12);
});
