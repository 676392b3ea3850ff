import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ANTHROPIC_BATCH_LIMITS,
  assertCustomId,
  BatchLimits,
  BatchRequestError,
  jsonlLines,
  OPENAI_BATCH_LIMITS,
  packBySize,
  reconcileBatch,
  type BatchLineResult,
} from "./batch-types.js";

const ok = (customId: string, answer: unknown = { results: [] }): BatchLineResult => ({ kind: "ok", customId, ok: { answer, usage: { inputTokens: 1, outputTokens: 1 } } });
const err = (customId: string, reason: "expired" | "cancelled" | "request_error" = "request_error"): BatchLineResult => ({
  kind: "error",
  customId,
  error: { reason, code: reason, message: reason, retryable: true },
});

test("the providers' documented limits", () => {
  assert.equal(OPENAI_BATCH_LIMITS.maxRequests, 50_000);
  assert.equal(OPENAI_BATCH_LIMITS.maxBytes, 200_000_000);
  assert.equal(OPENAI_BATCH_LIMITS.oneModelPerFile, true);
  assert.equal(ANTHROPIC_BATCH_LIMITS.maxRequests, 100_000);
  assert.equal(ANTHROPIC_BATCH_LIMITS.maxBytes, 256_000_000);
  assert.equal(ANTHROPIC_BATCH_LIMITS.oneModelPerFile, false);
  assert.equal(BatchLimits.openai, OPENAI_BATCH_LIMITS);
  assert.equal(BatchLimits.anthropic, ANTHROPIC_BATCH_LIMITS);
});

test("custom_id: 1-64 characters of [a-zA-Z0-9_-]", () => {
  assertCustomId("b1-r_0042");
  assertCustomId("x".repeat(64));
  for (const bad of ["", "x".repeat(65), "has space", "dot.ted", "slash/", "ünïcode"]) {
    assert.throws(() => assertCustomId(bad), BatchRequestError, bad);
  }
});

test("jsonlLines drops empty lines, a trailing newline and CR of CRLF", () => {
  assert.deepEqual(jsonlLines('{"a":1}\r\n\n{"b":2}\n  \n'), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(jsonlLines(""), []);
});

test("reconcileBatch matches by custom_id only, whatever the order and the file", () => {
  const r = reconcileBatch(["r1", "r2", "r3", "r4", "r5"], [err("r4", "expired"), ok("r3"), { kind: "malformed", malformed: "{", reason: "x" }, ok("r1"), ok("zz")]);
  assert.deepEqual([...r.ok.keys()].sort(), ["r1", "r3"]);
  assert.deepEqual([...r.errors.keys()], ["r4"]);
  assert.equal(r.errors.get("r4")?.reason, "expired");
  assert.deepEqual(r.missing.sort(), ["r2", "r5"]);
  assert.equal(r.malformed, 1);
  assert.equal(r.unknown, 1);
  assert.equal(r.duplicates, 0);
});

test("reconcileBatch: an answer beats an error for the same id; duplicates are counted, the first answer kept", () => {
  const r = reconcileBatch(["a", "b"], [err("a"), ok("a", 1), ok("a", 2), ok("b", 3), err("b")]);
  assert.equal(r.ok.get("a")?.answer, 1);
  assert.equal(r.ok.get("b")?.answer, 3);
  assert.equal(r.errors.size, 0);
  assert.equal(r.duplicates, 3);
  assert.deepEqual(r.missing, []);
});

test("packBySize: by count, by bytes (with the envelope), order kept; an entry too big alone throws", () => {
  const sizes = [10, 10, 10, 10, 10];
  assert.deepEqual(
    packBySize(sizes, { maxCount: 2, maxBytes: 1000, envelope: 0, bytes: (n) => n }).map((c) => c.entries.length),
    [2, 2, 1],
  );
  const byBytes = packBySize([40, 40, 40, 15], { maxCount: 100, maxBytes: 100, envelope: 15, bytes: (n) => n });
  assert.deepEqual(
    byBytes.map((c) => c.entries),
    [[40, 40], [40, 15]],
  );
  assert.deepEqual(
    byBytes.map((c) => c.bytes),
    [95, 70],
  );
  assert.throws(() => packBySize([90], { maxCount: 10, maxBytes: 100, envelope: 15, bytes: (n) => n, id: () => "big-1" }), (e: unknown) => e instanceof BatchRequestError && e.customId === "big-1");
  assert.deepEqual(packBySize([], { maxCount: 1, maxBytes: 1, envelope: 0, bytes: () => 1 }), []);
});
