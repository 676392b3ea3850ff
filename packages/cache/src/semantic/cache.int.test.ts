/**
 * SemanticCache end to end on real parts: the offline USE-lite embedder and pgvector in PGlite.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { UseLiteEmbedder } from "../embeddings/use-lite.js";
import type { Embedder } from "../embeddings/types.js";
import { PgVectorStore } from "../vector/pgvector.js";
import { SemanticCache, type GuardRejection, type SemanticScope } from "./cache.js";

const SCOPE: SemanticScope = {
  tenantId: "t1",
  task: "classify",
  promptVersion: "classify-v1",
  schemaVersion: "s1",
  provider: "openai",
  model: "gpt-4.1-mini",
  paramsHash: "labels-abc",
  namespace: "default",
};

/** Counts embedder calls (to check lookups are batched). */
class CountingEmbedder implements Embedder {
  calls = 0;
  constructor(private readonly inner: Embedder) {}
  get id() {
    return this.inner.id;
  }
  get dimensions() {
    return this.inner.dimensions;
  }
  embed(texts: string[]) {
    this.calls++;
    return this.inner.embed(texts);
  }
}

describe("SemanticCache (USE-lite + pgvector in PGlite)", () => {
  const embedder = new CountingEmbedder(new UseLiteEmbedder());
  const store = new PgVectorStore({ dimensions: 512 });
  let clock = 1_000_000;
  const cache = new SemanticCache({ embedder, store, now: () => clock });

  before(async () => {
    await cache.init();
    await cache.store([
      { scope: SCOPE, text: "How do I reset my password?", output: { label: "account" }, sourceItemId: 101 },
      { scope: SCOPE, text: "My card has arrived", output: { label: "card_arrival" }, sourceItemId: 102 },
      { scope: SCOPE, text: "What is 2+2?", output: { label: "math" }, sourceItemId: 103 },
      { scope: SCOPE, text: "I was charged $10 for the transfer", output: { label: "fee" }, sourceItemId: 104 },
      { scope: SCOPE, text: "The meeting is on 2024-01-05", output: { label: "calendar" }, sourceItemId: 105 },
    ]);
  });
  after(() => store.close());

  it("answers paraphrases with the source's output, score and item, in one embedder call", async () => {
    const before = embedder.calls;
    const res = await cache.lookup(["How can I reset my password?", "I forgot my password, how do I reset it?", "What's the euro exchange rate?"], SCOPE, {
      threshold: 0.9,
    });
    assert.equal(embedder.calls - before, 1, "one batched embedder call");
    for (const r of res.slice(0, 2)) {
      assert.ok(r, "paraphrase hits");
      assert.deepEqual(r.hit.output, { label: "account" });
      assert.equal(r.hit.sourceItemId, 101);
      assert.equal(r.hit.sourceText, "How do I reset my password?");
      assert.ok(r.hit.score >= 0.9 && r.hit.score <= 1);
    }
    assert.equal(res[2], null, "unrelated text misses");
  });

  it("refuses negated and changed-number neighbours even when they score above the threshold", async () => {
    const rejections: GuardRejection[] = [];
    const texts = ["My card has not arrived", "What is 2+3?", "I was charged $100 for the transfer", "The meeting is on 2024-01-06"];
    const res = await cache.lookup(texts, SCOPE, { threshold: 0.8, onGuardReject: (r) => rejections.push(r) });
    assert.deepEqual(res, [null, null, null, null]);
    // The embeddings alone would have hit: the guards made the difference.
    assert.deepEqual(
      rejections.map((r) => [r.index, r.reason]).sort(),
      [
        [0, "negation"],
        [1, "numbers"],
        [2, "numbers"],
        [3, "numbers"],
      ],
    );
    for (const r of rejections) assert.ok(r.score >= 0.8, `score ${r.score}`);
    // A task that allows number mismatches gets the hit.
    const allowed = await cache.lookup(["What is 2+3?"], SCOPE, { threshold: 0.8, allowNumberMismatch: true });
    assert.deepEqual(allowed[0]?.hit.output, { label: "math" });
  });

  it("respects the threshold exactly: score == threshold hits, the next double above misses", async () => {
    const text = "How can I reset my password?";
    const [probe] = await cache.lookup([text], SCOPE, { threshold: -1 });
    assert.ok(probe);
    const s = probe.hit.score;
    const [at] = await cache.lookup([text], SCOPE, { threshold: s });
    assert.equal(at?.hit.score, s);
    const nextUp = s + Number.EPSILON * 2 ** Math.floor(Math.log2(s));
    assert.ok(nextUp > s);
    assert.deepEqual(await cache.lookup([text], SCOPE, { threshold: nextUp }), [null]);
  });

  it("never answers across tenants, models, params or namespaces", async () => {
    const text = "How do I reset my password?";
    for (const over of [{ tenantId: "t2" }, { model: "gpt-4.1" }, { paramsHash: "labels-xyz" }, { namespace: "other" }, { promptVersion: "classify-v2" }]) {
      assert.deepEqual(await cache.lookup([text], { ...SCOPE, ...over }, { threshold: 0.5 }), [null], JSON.stringify(over));
    }
    assert.ok((await cache.lookup([text], SCOPE, { threshold: 0.99 }))[0], "same scope hits");
  });

  it("storing the same text again in the same scope replaces the answer (refresh)", async () => {
    const n = await store.count();
    await cache.store([{ scope: SCOPE, text: "How do I reset my password? ", output: { label: "security" }, sourceItemId: 201 }]);
    assert.equal(await store.count(), n);
    const [r] = await cache.lookup(["How do I reset my password?"], SCOPE, { threshold: 0.99 });
    assert.deepEqual(r?.hit.output, { label: "security" });
    assert.equal(r?.hit.sourceItemId, 201);
  });

  it("expires entries after their TTL", async () => {
    const scope = { ...SCOPE, namespace: "ttl" };
    await cache.store([{ scope, text: "Where is my refund?", output: "refund", ttlMs: 1_000 }]);
    clock += 999;
    assert.ok((await cache.lookup(["Where is my refund?"], scope, { threshold: 0.99 }))[0]);
    clock += 1;
    assert.deepEqual(await cache.lookup(["Where is my refund?"], scope, { threshold: 0.99 }), [null]);
    assert.equal(await cache.deleteExpired(), 1);
  });

  it("evicts least recently used entries first (hits refresh an entry)", async () => {
    const scope = { ...SCOPE, namespace: "lru" };
    for (const text of ["first question about fees", "second question about cards", "third question about top ups"]) {
      clock += 10;
      await cache.store([{ scope, text, output: text }]);
    }
    clock += 10;
    assert.ok((await cache.lookup(["first question about fees"], scope, { threshold: 0.99 }))[0], "touches the oldest");
    assert.equal(await cache.evictIfNeeded(2, { namespace: "lru" }), 1);
    assert.deepEqual(await cache.lookup(["second question about cards"], scope, { threshold: 0.99 }), [null]);
    assert.ok((await cache.lookup(["first question about fees"], scope, { threshold: 0.99 }))[0]);
  });

  it("skips empty texts without embedding them", async () => {
    const before = embedder.calls;
    assert.deepEqual(await cache.lookup(["", "   "], SCOPE, { threshold: 0.5 }), [null, null]);
    assert.equal(embedder.calls, before);
  });
});
