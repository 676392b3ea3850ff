import { test } from "node:test";
import assert from "node:assert/strict";
import { OUTPUT_SCHEMA_NAME } from "@sieve/shared/tasks/output";
import type { TaskParams } from "@sieve/shared";
import { ANTHROPIC_BATCH_LIMITS, BatchRequestError } from "../batch-types.js";
import { buildMessagesRequest } from "./chat.js";
import { parseResultLine, parseResults, requestBytes, splitIntoBatches, toBatchRequest } from "./batch.js";

const translate: TaskParams = { task: "translate", targetLanguage: "de" };
const items = [1, 2].map((n) => ({ id: `i${n}`, text: `text ${n}` }));
const spec = (customId: string, model = "claude-haiku-4-5") => ({ customId, model, params: translate, items });

test("toBatchRequest: params are exactly the realtime Messages body (forced tool, cache_control)", () => {
  const req = toBatchRequest(spec("b1-r1"));
  assert.equal(req.custom_id, "b1-r1");
  const realtime = buildMessagesRequest({ model: "claude-haiku-4-5", params: translate, items });
  assert.equal(JSON.stringify(req.params), JSON.stringify(realtime));
  assert.deepEqual(req.params.tool_choice, { type: "tool", name: OUTPUT_SCHEMA_NAME });
  assert.deepEqual((req.params.system as Array<{ cache_control?: unknown }>)[0]?.cache_control, { type: "ephemeral" });
  assert.throws(() => toBatchRequest(spec("no.dots")), BatchRequestError);
});

test("splitIntoBatches: count and create-body bytes, models may mix, order kept", () => {
  const reqs = ["a", "b", "c", "d", "e"].map((id, i) => toBatchRequest(spec(id, i % 2 ? "claude-sonnet-4-6" : "claude-haiku-4-5")));
  assert.deepEqual(
    splitIntoBatches(reqs, { ...ANTHROPIC_BATCH_LIMITS, maxRequests: 2 }).map((c) => c.requests.map((r) => r.custom_id)),
    [["a", "b"], ["c", "d"], ["e"]],
  );
  assert.equal(splitIntoBatches(reqs).length, 1);
  const one = requestBytes(reqs[0]!);
  const maxBytes = 15 + 2 * one + 5;
  const chunks = splitIntoBatches(reqs, { ...ANTHROPIC_BATCH_LIMITS, maxBytes });
  for (const c of chunks) {
    const body = JSON.stringify({ requests: c.requests });
    assert.ok(Buffer.byteLength(body) <= c.bytes && c.bytes <= maxBytes, "the bound holds and is under the limit");
  }
  assert.equal(chunks.flatMap((c) => c.requests).length, 5);
  assert.throws(() => splitIntoBatches(reqs, { ...ANTHROPIC_BATCH_LIMITS, maxBytes: 100 }), BatchRequestError);
  assert.throws(() => splitIntoBatches([{ ...reqs[0]!, custom_id: "x".repeat(65) }]), BatchRequestError);
});

function message(content: unknown[], stop = "tool_use") {
  return {
    id: "msg_1",
    type: "message",
    role: "assistant",
    model: "claude-haiku-4-5",
    content,
    stop_reason: stop,
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 20, cache_read_input_tokens: 100, cache_creation_input_tokens: 0 },
  };
}

test("parseResultLine: succeeded goes through the realtime parser (tool_use input, usage incl. cache)", () => {
  const answer = { results: [{ id: "i1", translation: "Text 1" }] };
  const r = parseResultLine(JSON.stringify({ custom_id: "r1", result: { type: "succeeded", message: message([{ type: "tool_use", id: "toolu_1", name: OUTPUT_SCHEMA_NAME, input: answer }]) } }));
  assert.ok(r.kind === "ok");
  assert.equal(r.customId, "r1");
  assert.deepEqual(r.ok.answer, answer);
  assert.deepEqual(r.ok.usage, { inputTokens: 110, outputTokens: 20, cachedInputTokens: 100, cacheWriteTokens: 0 });
  const cut = parseResultLine(JSON.stringify({ custom_id: "r2", result: { type: "succeeded", message: message([{ type: "text", text: '{"res' }], "max_tokens") } }));
  assert.ok(cut.kind === "ok" && cut.ok.answer === undefined && /truncated/.test(cut.ok.parseError ?? ""));
});

test("parseResultLine: errored, canceled, expired", () => {
  const errored = (type: string) =>
    parseResultLine(JSON.stringify({ custom_id: "e1", result: { type: "errored", error: { type: "error", error: { type, message: `m ${type}` }, request_id: null } } }));
  assert.deepEqual(errored("invalid_request_error"), {
    kind: "error",
    customId: "e1",
    error: { reason: "request_error", code: "invalid_request_error", message: "m invalid_request_error", retryable: false, status: 400 },
  });
  for (const t of ["api_error", "overloaded_error", "rate_limit_error"]) {
    const r = errored(t);
    assert.ok(r.kind === "error" && r.error.retryable, t);
  }
  assert.deepEqual(parseResultLine('{"custom_id":"c1","result":{"type":"canceled"}}'), {
    kind: "error",
    customId: "c1",
    error: { reason: "cancelled", code: "canceled", message: "the batch was canceled before this request ran", retryable: true },
  });
  const expired = parseResultLine('{"custom_id":"x1","result":{"type":"expired"}}');
  assert.ok(expired.kind === "error" && expired.error.reason === "expired" && expired.error.retryable);
});

test("parseResultLine never throws; parseResults skips blank lines", () => {
  for (const line of ['{"custom_id":"r1","result":{"type":"succ', '{"custom_id":"r1"}', '{"custom_id":"r1","result":{"type":"weird"}}', "null"]) {
    assert.equal(parseResultLine(line).kind, "malformed", line);
  }
  assert.deepEqual(
    parseResults('{"custom_id":"a","result":{"type":"expired"}}\n\n{oops\n').map((r) => r.kind),
    ["error", "malformed"],
  );
});
