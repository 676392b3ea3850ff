/**
 * What a cache hit saved is right from the first hit (not a cached 0 for the first minute), with
 * the price table as the estimate while a model has no answered call yet; and the semantic cache
 * (vector store + embedding model, hundreds of MB) starts only when a task or a request can use it.
 * Real Redis + Postgres, the simulator, in-process workers.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { SavingsEstimator } from "@sieve/producer/dedup";
import { loadPriceTable, TaskParams } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";

describe("savedUsd of cache hits", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { SIEVE_CLASSIFY_MAX_WAIT_MS: "50" } });
  });
  after(async () => h.close());

  test("the first hits after start save what the answering calls cost", async () => {
    const items = Array.from({ length: 6 }, (_, i) => ({ id: `m${i}`, text: `Central bank holds rates steady, statement ${i}` }));
    const first = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
    assert.equal(first.status, 202, first.text);
    const answered = await waitForJob(h, "acme", first.body.id);
    assert.equal(answered.counts.cached, 0);
    assert.ok(answered.costUsd > 0);
    // Seconds later (well inside a minute of the first lookup): every item is an exact hit.
    const again = await h.call("acme", "POST", "/v1/jobs?wait=10s", { task: "classify", labels: LABELS, items });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.counts.cached, items.length);
    assert.ok(again.body.items.every((i: any) => i.cache === "exact"));
    // Only this job's calls exist: the average per item times the items is their cost.
    assert.ok(Math.abs(again.body.savedUsd - answered.costUsd) <= answered.costUsd * 1e-3, `saved ${again.body.savedUsd} vs cost ${answered.costUsd}`);
  });

  test("a model without any answered call is estimated from the price table", async () => {
    const prices = loadPriceTable(undefined);
    const est = new SavingsEstimator(h.db.db, h.env, prices);
    const params = TaskParams.parse({ task: "classify", labels: LABELS });
    const perItem = await est.perItem("gpt-4.1-nano", params);
    const usd = perItem("A short headline about markets");
    assert.ok(usd > 0, "not 0");
    assert.equal(usd, est.fromPrices("gpt-4.1-nano", params, "A short headline about markets"));
    // Same text and prompt on a model with a 4x input and output price costs 4x (gpt-4.1-mini vs nano).
    assert.ok(Math.abs(est.fromPrices("gpt-4.1-mini", params, "A short headline about markets") / usd - 4) < 1e-9);
  });
});

describe("the semantic cache starts only when something can use it", () => {
  test("off by default for every task: not started until a request asks for it", async () => {
    const h = await startHarness({ workers: false, env: { SIEVE_SEMANTIC_CACHE: "pgvector", SIEVE_SEMANTIC_TASKS: "" } });
    try {
      assert.ok(h.api.semantic, "the semantic cache is configured");
      assert.equal(h.api.semantic.started, false, "not started at start-up");
      const plain = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: [{ id: "p", text: "no semantic lookup here" }] });
      assert.equal(plain.status, 202, plain.text);
      assert.equal(h.api.semantic.started, false, "a request without semantic lookups does not start it");
      const asks = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, cache: { semantic: true }, items: [{ id: "s", text: "this one asks for it" }] });
      assert.equal(asks.status, 202, asks.text);
      assert.equal(h.api.semantic.started, true, "started by the first request that can use it");
    } finally {
      await h.close();
    }
  });

  test("a task with the semantic cache on by default starts it at start-up", async () => {
    const h = await startHarness({ workers: false, env: { SIEVE_SEMANTIC_CACHE: "pgvector", SIEVE_SEMANTIC_TASKS: "classify" } });
    try {
      assert.equal(h.api.semantic?.started, true);
    } finally {
      await h.close();
    }
  });
});
