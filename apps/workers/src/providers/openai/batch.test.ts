import { test } from "node:test";
import assert from "node:assert/strict";
import type { TaskParams } from "@sieve/shared";
import { BatchRequestError, OPENAI_BATCH_LIMITS, type BatchLimits } from "../batch-types.js";
import { buildChatRequest } from "./chat.js";
import { BATCH_ENDPOINT, fileContent, parseOutputFile, parseOutputLine, splitIntoFiles, toBatchLine } from "./batch.js";

const classify: TaskParams = { task: "classify", labels: ["positive", "negative", "neutral"] };
const items = [1, 2, 3].map((n) => ({ id: `i${n}`, text: `text "number" ${n}\nwith a newline` }));
const spec = (customId: string, model = "gpt-4.1-mini", its = items) => ({ customId, model, params: classify, items: its });

test("toBatchLine: one JSON line, body byte-for-byte the realtime chat.completions body", () => {
  const line = toBatchLine(spec("b1-r1"));
  assert.ok(!line.includes("\n"), "a JSONL line has no raw newline");
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed), ["custom_id", "method", "url", "body"]);
  assert.equal(parsed.custom_id, "b1-r1");
  assert.equal(parsed.method, "POST");
  assert.equal(parsed.url, BATCH_ENDPOINT);
  const realtime = buildChatRequest({ model: "gpt-4.1-mini", params: classify, items });
  assert.equal(JSON.stringify(parsed.body), JSON.stringify(realtime));
  assert.ok(line.endsWith(`"body":${JSON.stringify(realtime)}}`));
});

test("toBatchLine refuses a custom_id the providers would reject", () => {
  assert.throws(() => toBatchLine(spec("has space")), BatchRequestError);
  assert.throws(() => toBatchLine(spec("x".repeat(65))), BatchRequestError);
});

test("splitIntoFiles: one model per file, count limit, order kept within a model", () => {
  const lines = [
    toBatchLine(spec("a1")),
    toBatchLine(spec("b1", "gpt-4o-mini")),
    toBatchLine(spec("a2")),
    toBatchLine(spec("a3")),
    toBatchLine(spec("b2", "gpt-4o-mini")),
  ];
  const files = splitIntoFiles(lines, { ...OPENAI_BATCH_LIMITS, maxRequests: 2 });
  assert.deepEqual(
    files.map((f) => [f.model, f.customIds]),
    [
      ["gpt-4.1-mini", ["a1", "a2"]],
      ["gpt-4.1-mini", ["a3"]],
      ["gpt-4o-mini", ["b1", "b2"]],
    ],
  );
  for (const f of files) {
    assert.equal(f.bytes, Buffer.byteLength(fileContent(f)));
    assert.ok(fileContent(f).endsWith("\n"));
  }
  // Default limits: everything of one model fits in one file.
  assert.equal(splitIntoFiles(lines).length, 2);
});

test("splitIntoFiles: byte limit (newlines counted); a line bigger than the limit throws", () => {
  const lines = ["a1", "a2", "a3", "a4"].map((id) => toBatchLine(spec(id)));
  const one = Buffer.byteLength(lines[0]!) + 1;
  const limits: BatchLimits = { ...OPENAI_BATCH_LIMITS, maxBytes: one * 2 + 1 };
  const files = splitIntoFiles(lines, limits);
  assert.deepEqual(
    files.map((f) => f.customIds),
    [["a1", "a2"], ["a3", "a4"]],
  );
  for (const f of files) assert.ok(Buffer.byteLength(fileContent(f)) <= limits.maxBytes);
  assert.throws(() => splitIntoFiles(lines, { ...OPENAI_BATCH_LIMITS, maxBytes: one - 1 }), (e: unknown) => e instanceof BatchRequestError && e.customId === "a1");
  assert.throws(() => splitIntoFiles(["not json"]), BatchRequestError);
  // Without the one-model rule, models share files.
  assert.equal(splitIntoFiles([toBatchLine(spec("x1")), toBatchLine(spec("y1", "gpt-4o"))], { ...OPENAI_BATCH_LIMITS, oneModelPerFile: false }).length, 1);
});

function completionBody(content: string | null, finish = "stop") {
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 0,
    model: "gpt-4.1-mini",
    choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: finish }],
    usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150, prompt_tokens_details: { cached_tokens: 0 } },
  };
}

test("parseOutputLine: a success line goes through the realtime parser", () => {
  const answer = { results: [{ id: "i1", label: "positive" }] };
  const line = JSON.stringify({ id: "batch_req_1", custom_id: "r7", response: { status_code: 200, request_id: "req_abc", body: completionBody(JSON.stringify(answer)) }, error: null });
  const r = parseOutputLine(line);
  assert.equal(r.kind, "ok");
  assert.ok(r.kind === "ok");
  assert.equal(r.customId, "r7");
  assert.deepEqual(r.ok.answer, answer);
  assert.equal(r.ok.parseError, undefined);
  assert.deepEqual(r.ok.usage, { inputTokens: 120, outputTokens: 30, cachedInputTokens: 0 });
  assert.equal(r.ok.requestId, "req_abc");
});

test("parseOutputLine: a truncated answer is ok with a parseError (the items get retried), not an error", () => {
  const line = JSON.stringify({ id: "x", custom_id: "r1", response: { status_code: 200, request_id: "q", body: completionBody('{"results":[{"id":', "length") }, error: null });
  const r = parseOutputLine(line);
  assert.ok(r.kind === "ok");
  assert.equal(r.ok.answer, undefined);
  assert.match(r.ok.parseError ?? "", /truncated/);
});

test("parseOutputLine: error-file lines (HTTP errors in response, batch_expired in error)", () => {
  const http500 = parseOutputLine(
    JSON.stringify({ id: "x", custom_id: "r2", response: { status_code: 500, request_id: "q", body: { error: { message: "boom", type: "server_error", param: null, code: null } } }, error: null }),
  );
  assert.deepEqual(http500, { kind: "error", customId: "r2", error: { reason: "request_error", code: "server_error", message: "boom", retryable: true, status: 500 } });
  const http400 = parseOutputLine(
    JSON.stringify({
      id: "x",
      custom_id: "r3",
      response: { status_code: 400, request_id: "q", body: { error: { message: "too long", type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } } },
      error: null,
    }),
  );
  assert.ok(http400.kind === "error");
  assert.equal(http400.error.code, "context_length_exceeded");
  assert.equal(http400.error.retryable, false);
  const expired = parseOutputLine(JSON.stringify({ id: "x", custom_id: "r4", response: null, error: { code: "batch_expired", message: "not run in time" } }));
  assert.deepEqual(expired, { kind: "error", customId: "r4", error: { reason: "expired", code: "batch_expired", message: "not run in time", retryable: true } });
  const cancelled = parseOutputLine(JSON.stringify({ id: "x", custom_id: "r5", response: null, error: { code: "batch_cancelled", message: "m" } }));
  assert.ok(cancelled.kind === "error" && cancelled.error.reason === "cancelled");
});

test("parseOutputLine never throws: malformed lines are reported as such", () => {
  for (const [line, reason] of [
    ['{"id":"batch_req_1","custom_id":"r1","respo', "not valid JSON"],
    ["[1,2]", "no custom_id"],
    ['{"custom_id":"r1","response":null,"error":null}', "neither a response nor an error"],
  ] as const) {
    const r = parseOutputLine(line);
    assert.ok(r.kind === "malformed", line);
    assert.equal(r.reason, reason);
  }
  const ok = JSON.stringify({ id: "x", custom_id: "r1", response: { status_code: 200, request_id: "q", body: completionBody('{"results":[]}') }, error: null });
  const all = parseOutputFile(`${ok}\n{broken\n\n`);
  assert.deepEqual(
    all.map((r) => r.kind),
    ["ok", "malformed"],
  );
});
