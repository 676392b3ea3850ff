/** Savings by source and latency quantiles of the console (docs/console.md), on known numbers. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_PRICES } from "@sieve/shared";
import { latencyBucket } from "@sieve/shared/db/ops/rollups";
import { quantile, savingsOf, type RollupSums } from "./queries.js";

const zero: RollupSums = { itemsOk: 0, itemsFailed: 0, hitsExact: 0, hitsSemantic: 0, hitsCoalesced: 0, savedExact: 0, savedSemantic: 0, savedCoalesced: 0, hitsLearned: 0, savedLearned: 0, calls: 0, callsFailed: 0, itemsSent: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cost: 0, packingTokens: 0 };

test("savings: caches as recorded, packing at the input price, batch discount, local GPU against the reference model", () => {
  const s = savingsOf(
    [
      { ...zero, provider: "openai", model: "gpt-4.1-mini", lane: "realtime", savedExact: 0.25, savedSemantic: 0.5, savedCoalesced: 0.125, packingTokens: 1_000_000 },
      { ...zero, provider: "openai", model: "gpt-4.1-mini", lane: "batch", cost: 3, packingTokens: 1_000_000 },
      { ...zero, provider: "vllm", model: "Qwen/Qwen2.5-7B-Instruct-AWQ", lane: "realtime", inputTokens: 2_000_000, outputTokens: 1_000_000, packingTokens: 5_000_000 },
    ],
    DEFAULT_PRICES,
    "gpt-4.1-mini",
  );
  assert.equal(s.exact, 0.25);
  assert.equal(s.semantic, 0.5);
  assert.equal(s.coalesced, 0.125);
  // 1M tokens at $0.40/M realtime, plus 1M at the batch price ($0.20/M); local GPU packing not priced.
  assert.ok(Math.abs(s.packing - 0.6) < 1e-12, String(s.packing));
  assert.equal(s.batchDiscount, 3);
  // 2M in x $0.40 + 1M out x $1.60 at the reference model, the vLLM calls cost 0.
  assert.ok(Math.abs(s.localGpu - 2.4) < 1e-12, String(s.localGpu));
  assert.ok(Math.abs(s.total - (0.875 + 0.6 + 3 + 2.4)) < 1e-12);
});

test("latency: bucket of a call and quantiles as bucket upper bounds", () => {
  assert.equal(latencyBucket(0), 0);
  assert.equal(latencyBucket(100), 0);
  assert.equal(latencyBucket(101), 1);
  assert.equal(latencyBucket(4_000_000), 11);
  const b = new Array(12).fill(0);
  b[0] = 50; // 50 calls <= 100 ms
  b[3] = 45; // 45 calls <= 1 s
  b[6] = 5; // 5 calls <= 10 s
  assert.equal(quantile(b, 0.5), 100);
  assert.equal(quantile(b, 0.95), 1_000);
  assert.equal(quantile(b, 0.99), 10_000);
  assert.equal(quantile(new Array(12).fill(0), 0.5), null);
  const open = new Array(12).fill(0);
  open[11] = 1;
  assert.equal(quantile(open, 0.5), Infinity);
});
