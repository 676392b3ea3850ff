/**
 * The ONE contract every VectorStore passes (swappable backends share a conformance
 * suite). A test file calls `vectorStoreContract(name, factory)`; the factory returns a fresh,
 * empty store of CONTRACT_DIMENSIONS dimensions each time (its own table / collection).
 *
 * Vectors here are chosen so scores are exact in binary floating point: [3,2,1,1,1,0,0,0] has
 * norm 4, so its cosine with e1 is exactly 0.75; [1,1,1,1,0,0,0,0] gives exactly 0.5.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { CacheScope, VectorEntry, VectorStore } from "./types.js";
import { SCOPE_FIELDS } from "./types.js";

export const CONTRACT_DIMENSIONS = 8;

export interface ContractOptions {
  /** Called once after the suite (close shared servers / databases). */
  teardown?: () => Promise<void>;
}

const BASE: CacheScope = {
  tenantId: "t1",
  task: "classify",
  promptVersion: "classify-v3",
  schemaVersion: "s1",
  provider: "openai",
  model: "gpt-4.1-mini",
  paramsHash: "p-labels-abc",
  embedderId: "test-embedder-8",
  namespace: "default",
};

const E1 = [1, 0, 0, 0, 0, 0, 0, 0];
const AT_075 = [3, 2, 1, 1, 1, 0, 0, 0]; // cos(E1) = 3/4 exactly
const BELOW_075 = [3, 2, 1, 1, 1.001, 0, 0, 0]; // cos(E1) = 3/sqrt(16.002001) ≈ 0.74995
const AT_050 = [1, 1, 1, 1, 0, 0, 0, 0]; // cos(E1) = 1/2 exactly
const FAR = [0, 0, 0, 0, 0, 0, 1, 0]; // cos(E1) = 0

function entry(id: string, vector: number[], over: Partial<VectorEntry> = {}): VectorEntry {
  return {
    id,
    vector,
    scope: BASE,
    text: `text of ${id}`,
    output: { label: `label-${id}`, n: 1 },
    sourceItemId: null,
    createdAt: 1_000,
    expiresAt: null,
    ...over,
  };
}

/** Every hit's id, best first. */
async function ids(store: VectorStore, vector: number[], scope: CacheScope, minScore = 0.9, now = 5_000, limit = 10): Promise<string[]> {
  return (await store.query(vector, scope, { limit, minScore, now })).map((h) => h.entry.id);
}

export function vectorStoreContract(name: string, factory: () => Promise<VectorStore>, opts: ContractOptions = {}): void {
  describe(`VectorStore contract: ${name}`, () => {
    const opened: VectorStore[] = [];
    const fresh = async (): Promise<VectorStore> => {
      const s = await factory();
      opened.push(s);
      await s.init();
      return s;
    };
    after(async () => {
      await Promise.allSettled(opened.map((s) => s.close()));
      await opts.teardown?.();
    });

    it("init is idempotent and a new store is empty", async () => {
      const s = await fresh();
      await s.init();
      assert.equal(await s.count(), 0);
      assert.deepEqual(await ids(s, E1, BASE, -1), []);
    });

    it("round-trips an entry: scope, text, output, source item, times; identical vector scores 1", async () => {
      const s = await fresh();
      const e = entry("a", [2, 0, 0, 0, 0, 0, 0, 0], {
        sourceItemId: 4242,
        createdAt: 1_700_000_000_123,
        expiresAt: 1_800_000_000_456,
        text: "Wie spät ist es? \u{1F600} \"quoted\"",
        output: { label: "billing", confidence: 0.9, nested: [1, "two", null] },
      });
      await s.upsert([e]);
      const hits = await s.query(E1, BASE, { limit: 5, minScore: 0.99, now: 1_700_000_000_124 });
      assert.equal(hits.length, 1);
      const hit = hits[0]!;
      assert.equal(hit.score, 1);
      assert.equal(hit.entry.id, "a");
      assert.deepEqual(hit.entry.scope, BASE);
      assert.equal(hit.entry.text, e.text);
      assert.deepEqual(hit.entry.output, e.output);
      assert.equal(hit.entry.sourceItemId, 4242);
      assert.equal(hit.entry.createdAt, e.createdAt);
      assert.equal(hit.entry.expiresAt, e.expiresAt);
      assert.deepEqual(hit.entry.vector, E1, "stored vectors are unit-scaled");
    });

    it("never crosses any scope field (tenant, task, prompt, schema, provider, model, params, embedder, namespace)", async () => {
      const s = await fresh();
      const scopes: Array<[string, CacheScope]> = [["base", BASE]];
      for (const f of SCOPE_FIELDS) scopes.push([`other-${f}`, { ...BASE, [f]: `${BASE[f]}-other` }]);
      // Same vector everywhere: only the filter can tell them apart.
      await s.upsert(scopes.map(([id, scope]) => entry(id, E1, { scope })));
      assert.equal(await s.count(), scopes.length);
      for (const [id, scope] of scopes) {
        assert.deepEqual(await ids(s, E1, scope, -1), [id], `query in scope ${id}`);
      }
      // A scope nobody stored in finds nothing, even at the lowest threshold.
      assert.deepEqual(await ids(s, E1, { ...BASE, tenantId: "t-nobody" }, -1), []);
      // Values are compared exactly: no prefix or case folding.
      assert.deepEqual(await ids(s, E1, { ...BASE, tenantId: "T1" }, -1), []);
      assert.deepEqual(await ids(s, E1, { ...BASE, namespace: "defaul" }, -1), []);
    });

    it("threshold is inclusive and exact: score == minScore hits, just below misses", async () => {
      const s = await fresh();
      await s.upsert([entry("at075", AT_075), entry("below075", BELOW_075), entry("at050", AT_050), entry("far", FAR)]);
      const hits = await s.query(E1, BASE, { limit: 10, minScore: 0.75, now: 5_000 });
      assert.deepEqual(
        hits.map((h) => h.entry.id),
        ["at075"],
      );
      assert.equal(hits[0]!.score, 0.75, "score is exactly 0.75");
      // The smallest double above 0.75 excludes it.
      const justAbove = 0.75 + Number.EPSILON / 2;
      assert.ok(justAbove > 0.75);
      assert.deepEqual(await ids(s, E1, BASE, justAbove), []);
      // The entry just below 0.75 is found as soon as the threshold allows it, with its true score.
      const lower = await s.query(E1, BASE, { limit: 10, minScore: 0.7499, now: 5_000 });
      assert.deepEqual(
        lower.map((h) => h.entry.id),
        ["at075", "below075"],
      );
      assert.ok(lower[1]!.score < 0.75 && lower[1]!.score > 0.7499);
      // 0.5 exactly, inclusive; results are best first and limited.
      assert.deepEqual(await ids(s, E1, BASE, 0.5), ["at075", "below075", "at050"]);
      assert.deepEqual(await ids(s, E1, BASE, 0.5, 5_000, 2), ["at075", "below075"]);
      assert.deepEqual(await ids(s, E1, BASE, -1), ["at075", "below075", "at050", "far"]);
    });

    it("never returns expired entries (expired once now >= expiresAt); deleteExpired removes them", async () => {
      const s = await fresh();
      await s.upsert([entry("ttl", E1, { expiresAt: 10_000 }), entry("forever", E1, { expiresAt: null })]);
      assert.deepEqual((await ids(s, E1, BASE, 0.9, 9_999)).sort(), ["forever", "ttl"]);
      assert.deepEqual(await ids(s, E1, BASE, 0.9, 10_000), ["forever"]);
      assert.deepEqual(await ids(s, E1, BASE, 0.9, 99_999_999_999_999), ["forever"]);
      assert.equal(await s.count(), 2, "expired entries stay counted until deleteExpired");
      assert.equal(await s.deleteExpired(9_999), 0);
      assert.equal(await s.deleteExpired(10_000), 1);
      assert.equal(await s.count(), 1);
      assert.deepEqual(await ids(s, E1, BASE, 0.9, 1), ["forever"]);
    });

    it("evicts least recently used first down to maxEntries (touch refreshes; unknown ids ignored)", async () => {
      const s = await fresh();
      await s.upsert([1, 2, 3, 4, 5].map((i) => entry(`e${i}`, E1, { createdAt: i * 100 })));
      await s.touch(["e1"], 1_000);
      await s.touch(["e2", "does-not-exist"], 1_100);
      // A touch older than the last one never moves an entry back.
      await s.touch(["e1"], 50);
      assert.equal(await s.evict({ maxEntries: 3 }), 2);
      assert.equal(await s.count(), 3);
      assert.deepEqual((await ids(s, E1, BASE)).sort(), ["e1", "e2", "e5"]);
      assert.equal(await s.evict({ maxEntries: 3 }), 0, "nothing to do at the limit");
      // Next least recently used: e5 (500) < e1 (1000) < e2 (1100).
      assert.equal(await s.evict({ maxEntries: 1 }), 2);
      assert.deepEqual(await ids(s, E1, BASE), ["e2"]);
      assert.equal(await s.evict({ maxEntries: 0 }), 1);
      assert.equal(await s.count(), 0);
    });

    it("evicts within a scope when asked, leaving other scopes alone", async () => {
      const s = await fresh();
      const other: CacheScope = { ...BASE, tenantId: "t2" };
      await s.upsert([
        entry("a1", E1, { createdAt: 1 }),
        entry("a2", E1, { createdAt: 2 }),
        entry("a3", E1, { createdAt: 3 }),
        entry("b1", E1, { createdAt: 0, scope: other }),
      ]);
      assert.equal(await s.evict({ maxEntries: 1, scope: { tenantId: "t1" } }), 2);
      assert.equal(await s.count({ tenantId: "t1" }), 1);
      assert.deepEqual(await ids(s, E1, BASE), ["a3"]);
      assert.deepEqual(await ids(s, E1, other), ["b1"]);
    });

    it("deleteScope deletes exactly the matching entries and says how many", async () => {
      const s = await fresh();
      await s.upsert([
        entry("x1", E1),
        entry("x2", AT_075),
        entry("y1", E1, { scope: { ...BASE, tenantId: "t2" } }),
        entry("z1", E1, { scope: { ...BASE, namespace: "ns2" } }),
      ]);
      assert.equal(await s.count({ tenantId: "t1" }), 3);
      assert.equal(await s.count({ tenantId: "t1", namespace: "ns2" }), 1);
      assert.equal(await s.deleteScope({ tenantId: "t1", namespace: "default" }), 2);
      assert.equal(await s.count(), 2);
      assert.equal(await s.deleteScope({ tenantId: "nobody" }), 0);
      assert.equal(await s.deleteScope({ tenantId: "t2" }), 1);
      assert.deepEqual(await ids(s, E1, { ...BASE, namespace: "ns2" }), ["z1"]);
      await assert.rejects(s.deleteScope({}), /at least one scope field/);
    });

    it("upsert is idempotent by id: the latest write wins, also within one batch", async () => {
      const s = await fresh();
      await s.upsert([entry("same", E1, { output: "v1" })]);
      await s.upsert([entry("same", E1, { output: "v1" })]);
      assert.equal(await s.count(), 1);
      await s.upsert([entry("same", AT_075, { output: "v2", text: "second" })]);
      const hits = await s.query(E1, BASE, { limit: 5, minScore: 0.5, now: 5_000 });
      assert.equal(hits.length, 1);
      assert.equal(hits[0]!.entry.output, "v2");
      assert.equal(hits[0]!.entry.text, "second");
      assert.equal(hits[0]!.score, 0.75);
      await s.upsert([entry("dup", FAR, { output: "first" }), entry("dup", E1, { output: "last" })]);
      assert.equal(await s.count(), 2);
      const dup = await s.query(E1, BASE, { limit: 5, minScore: 0.99, now: 5_000 });
      assert.deepEqual(
        dup.map((h) => [h.entry.id, h.entry.output]),
        [["dup", "last"]],
      );
    });

    it("bulk upserts (hundreds of entries in one call) store every entry intact", async () => {
      const s = await fresh();
      const many = Array.from({ length: 300 }, (_, i) => {
        const v = [0, 0, 0, 0, 0, 0, 0, 0];
        v[i % 8] = 1;
        v[(i + 1) % 8] = (i % 17) / 17;
        return entry(`bulk-${i}`, v, { output: { i }, sourceItemId: i, createdAt: 1_000 + i, expiresAt: i % 2 === 0 ? null : 9_000_000 });
      });
      await s.upsert(many);
      assert.equal(await s.count(), 300);
      const probe = many[123]!;
      const hits = await s.query(probe.vector, BASE, { limit: 50, minScore: 0.999999, now: 5_000 });
      const hit = hits.find((h) => h.entry.id === "bulk-123");
      assert.ok(hit, "entry found by its own vector");
      assert.deepEqual(hit.entry.output, { i: 123 });
      assert.equal(hit.entry.sourceItemId, 123);
      assert.equal(hit.entry.createdAt, 1_123);
      assert.equal(hit.entry.expiresAt, 9_000_000);
      // Re-upserting the whole batch changes nothing.
      await s.upsert(many);
      assert.equal(await s.count(), 300);
    });

    it("queryMany answers one list per vector, in order", async () => {
      const s = await fresh();
      await s.upsert([entry("e1", E1), entry("far", FAR)]);
      const res = await s.queryMany([FAR, E1, AT_050], BASE, { limit: 3, minScore: 0.9, now: 5_000 });
      assert.deepEqual(
        res.map((hits) => hits.map((h) => h.entry.id)),
        [["far"], ["e1"], []],
      );
    });

    it("rejects malformed input instead of storing it", async () => {
      const s = await fresh();
      await assert.rejects(s.upsert([entry("short", [1, 0, 0])]), /dimensions/);
      await assert.rejects(s.upsert([entry("zero", [0, 0, 0, 0, 0, 0, 0, 0])]), /zeros/);
      await assert.rejects(s.upsert([entry("noscope", E1, { scope: { ...BASE, tenantId: "" } })]), /tenantId/);
      await assert.rejects(s.query(E1, BASE, { limit: 0, minScore: 0.5 }), /limit/);
      await assert.rejects(s.query(E1, BASE, { limit: 1, minScore: Number.NaN }), /minScore/);
      assert.equal(await s.count(), 0);
    });
  });
}
