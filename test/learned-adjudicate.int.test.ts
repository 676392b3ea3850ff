/**
 * Learned-cache adjudication wired end to end (docs/quality.md): with
 * SIEVE_LEARNED_ADJUDICATE_ABOVE set, a confident disagreement between the model and a label from
 * a packed call is asked alone once (an llm_calls row of one item, lane audit) before it counts as
 * the model's error. The simulator answers alone always right and packed calls with errors, so
 * the disagreements it sends for adjudication are the packed answers' mistakes. Real embedder
 * (USE-lite), real Redis and Postgres.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { LEARNED_AUDIT_QUEUE, LEARNED_FILL_QUEUE, queryRows } from "@sieve/shared";
import { ReferenceAnswers } from "@sieve/simulator";
import { startHarness, waitForJob, waitForQueueDrained, type Harness } from "./support/harness.js";
import { LEARNED_ENV, LEARNED_LABELS, corpus } from "./support/learned-corpus.js";

const LABELS = LEARNED_LABELS;
const train = corpus(0, 10);

describe("learned cache adjudication end to end", () => {
  let h: Harness;
  before(async () => {
    // Alone: always the reference label. Packed: 0.6% less per extra item in the call.
    const answers = new ReferenceAnswers({ baseAccuracy: 1, perItemDrop: 0.006, positionDrop: 0, minAccuracy: 0, seed: 3 });
    for (const x of train) answers.addLabel(x.text, x.label);
    h = await startHarness({
      answers,
      env: {
        ...LEARNED_ENV,
        SIEVE_LEARNED_AUDIT_RATE: "0",
        SIEVE_LEARNED_ADJUDICATE_ABOVE: "0.5",
      },
    });
  });
  after(async () => {
    await h.close();
  });

  test("confident disagreements with packed labels are asked alone, once each, and only those", async () => {
    for (let i = 0; i < train.length; i += 40) {
      const chunk = train.slice(i, i + 40);
      const r = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, cache: { learned: true }, items: chunk.map((x, k) => ({ id: `x${k}`, text: x.text })) });
      assert.equal(r.status, 202, r.text);
      await waitForJob(h, "acme", r.body.id);
      await waitForQueueDrained(h, LEARNED_FILL_QUEUE);
    }
    await waitForQueueDrained(h, LEARNED_AUDIT_QUEUE);
    const calls = await queryRows<{ items: number; lane: string }>(h.db.db, sql`select item_count as items, lane from llm_calls where batch_key = 'learned-adjudicate'`);
    assert.ok(calls.length > 0, "some packed answers were wrong and the model disagreed with them");
    assert.ok(calls.length < train.length / 4, `adjudications ${calls.length}: only confident disagreements, not every label`);
    for (const c of calls) {
      assert.equal(c.items, 1);
      assert.equal(c.lane, "audit");
    }
  });
});
