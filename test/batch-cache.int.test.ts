/**
 * The batch lane and the caches: batch answers populate the exact cache, and identical batch-lane
 * items never wait on each other (no in-flight coalescing in that lane: a leader in a provider
 * batch can take hours, and its followers must not be stranded).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";

describe("batch lane with the caches on", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ batchLane: true, batchKnobs: { phaseMs: 100, seed: 2 }, env: { SIEVE_CACHE_ENABLED: "true" } });
  });
  after(async () => h.close());

  test("identical batch-lane submissions both complete; their answers then serve realtime requests from the cache", async () => {
    const items = Array.from({ length: 6 }, (_, i) => ({ id: `b${i}`, text: `Batch lane headline number ${i} about trade` }));
    const [a, b] = await Promise.all([0, 1].map(() => h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, lane: "batch", provider: "openai", items })));
    assert.equal(a!.status, 202, a!.text);
    assert.equal(b!.status, 202, b!.text);
    const ja = await waitForJob(h, "acme", a!.body.id, 90_000);
    const jb = await waitForJob(h, "acme", b!.body.id, 90_000);
    assert.equal(ja.status, "completed");
    assert.equal(jb.status, "completed");
    const rt = await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, provider: "openai", items });
    assert.equal(rt.status, 200, rt.text);
    // The exact key includes the provider and model but not the lane: a batch answer serves realtime.
    assert.ok(rt.body.items.every((i: any) => i.cache === "exact"), JSON.stringify(rt.body.items.map((i: any) => i.cache)));
  });

  test("GET /v1/jobs/:id?limit=0 gives the counts without items", async () => {
    const r = await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, items: [{ id: "x", text: "Limit zero" }, { id: "y", text: "Limit zero two" }] });
    const g = await h.call("acme", "GET", `/v1/jobs/${r.body.id}?limit=0`);
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.body.items, []);
    assert.equal(g.body.counts.items, 2);
  });
});
