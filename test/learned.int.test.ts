/**
 * The learned classification cache wired end to end (docs/quality.md): LLM labels of opted-in
 * requests reach the model through the learned-fill queue; once warm and certified it answers
 * items with cache "learned" and its confidence; never another tenant's or another label set's
 * items, never a request that did not opt in; its answers are audited by the LLM. Real embedder
 * (USE-lite), real Redis and Postgres, the simulator answering from reference labels.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { LEARNED_FILL_QUEUE, queryRows } from "@sieve/shared";
import { ReferenceAnswers } from "@sieve/simulator";
import { startHarness, waitForJob, waitForQueueDrained, type Harness } from "./support/harness.js";
import { LEARNED_ENV, LEARNED_LABELS, corpus } from "./support/learned-corpus.js";

const LABELS = LEARNED_LABELS;
const train = corpus(0, 6); // 96 labelled examples
const probe = corpus(6, 10); // 64 texts the cache has never seen

describe("learned cache end to end", () => {
  let h: Harness;
  before(async () => {
    const answers = new ReferenceAnswers();
    for (const x of [...train, ...probe]) answers.addLabel(x.text, x.label);
    h = await startHarness({
      answers,
      env: {
        ...LEARNED_ENV,
        SIEVE_LEARNED_AUDIT_RATE: "1",
      },
    });
  });
  after(async () => {
    await h.close();
  });

  const submit = async (tenant: string, items: Array<{ text: string }>, cache: object, labels = LABELS) => {
    const r = await h.call(tenant, "POST", "/v1/jobs", { task: "classify", labels, cache, items: items.map((x, i) => ({ id: `x${i}`, text: x.text })) });
    assert.equal(r.status, 202, r.text);
    return waitForJob(h, tenant, r.body.id);
  };

  /** GET /v1/learned for a tenant, polled until `ready` holds (a fill job lands just after its job finishes). */
  const learnedStatus = async (tenant: string, ready: (body: any) => boolean) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await h.call(tenant, "GET", "/v1/learned");
      assert.equal(r.status, 200, r.text);
      if (ready(r.body) || Date.now() >= deadline) return r.body;
      await new Promise((res) => setTimeout(res, 200));
    }
  };

  test("silent while warming up, then answers with its confidence; only for the tenant and label set it learned", async () => {
    // Warm-up: nothing is answered locally while the model has no examples.
    const first = await submit("acme", train.slice(0, 48), { learned: true });
    assert.equal(first.items.filter((i: any) => i.cache === "learned").length, 0);
    await submit("acme", train.slice(48), { learned: true });
    await waitForQueueDrained(h, LEARNED_FILL_QUEUE);

    // GET /v1/learned: the tenant sees where its model stands; another tenant sees nothing of it.
    const status = await learnedStatus("acme", (b) => b.scopes[0]?.examples === train.length);
    assert.equal(status.enabled, true);
    assert.equal(status.maxError, 0.2);
    assert.equal(status.scopes.length, 1);
    const [mine] = status.scopes;
    assert.equal(mine.state, "answering");
    assert.deepEqual(mine.labels, [...new Set(train.map((x) => x.label))].sort());
    assert.equal(typeof mine.threshold, "number");
    assert.equal(mine.task, "classify");
    const empty = await h.call("globex", "GET", "/v1/learned");
    assert.deepEqual(empty.body.scopes, []);

    const job = await submit("acme", probe, { learned: true });
    const learned = job.items.filter((i: any) => i.cache === "learned");
    assert.ok(learned.length >= probe.length / 4, `answered locally: ${learned.length}/${probe.length}`);
    const goldOf = new Map(probe.map((x, i) => [`x${i}`, x.label]));
    const wrong = learned.filter((i: any) => i.output.label !== goldOf.get(i.id)).length;
    assert.ok(wrong / learned.length <= 0.2, `wrong ${wrong}/${learned.length}`);
    for (const i of learned) {
      assert.ok(i.cacheSource.confidence >= i.cacheSource.threshold);
      assert.equal(i.llmCallId, null);
    }
    assert.equal(job.quality.learned.answered, learned.length);

    // Another tenant, another label set, or no opt-in: never a learned answer.
    const globex = await submit("globex", probe.slice(0, 16), { learned: true });
    assert.equal(globex.items.filter((i: any) => i.cache === "learned").length, 0);
    const otherLabels = await submit("acme", probe.slice(16, 32).map((x) => ({ text: `${x.text}!` })), { learned: true }, ["billing", "technical", "other"]);
    assert.equal(otherLabels.items.filter((i: any) => i.cache === "learned").length, 0);
    const optOut = await submit("acme", probe.slice(32, 48).map((x) => ({ text: `${x.text}.` })), {});
    assert.equal(optOut.items.filter((i: any) => i.cache === "learned").length, 0);

    // The other label set is a scope of its own, still warming up; globex's own scope is its only one.
    const after = (await learnedStatus("acme", (b) => b.scopes.some((x: any) => x.examples === 16))).scopes;
    assert.deepEqual(after.map((x: any) => x.state).sort(), ["answering", "warming-up"]);
    assert.ok(after.find((x: any) => x.state === "warming-up").labels.every((l: string) => ["billing", "technical", "other"].includes(l)));
    const globexScopes = (await learnedStatus("globex", (b) => b.scopes[0]?.examples === 16)).scopes;
    assert.deepEqual(globexScopes.map((x: any) => [x.state, x.examples]), [["warming-up", 16]]);

    // Audits (rate 1): every learned answer is asked alone to the LLM and recorded.
    const deadline = Date.now() + 60_000;
    let audits: Array<{ agree: boolean | null }> = [];
    while (Date.now() < deadline) {
      audits = await queryRows<{ agree: boolean | null }>(h.db.db, sql`select a.agree from cache_audits a join items i on i.id = a.item_id where a.kind = 'learned' and i.job_id = ${job.id}`);
      if (audits.length >= learned.length) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(audits.length, learned.length);
    assert.equal(audits.filter((a) => a.agree === false).length, wrong, "audit disagreements are exactly the wrong answers (the simulator answers gold alone)");
    const metrics = await (await fetch(`${h.api.url}/metrics`)).text();
    assert.match(metrics, /sieve_learned_audits_total\{task="classify",agree="true"\} \d+/);
    assert.match(metrics, /sieve_learned_error_rate\{task="classify"\} [\d.]+/);
  });
});
