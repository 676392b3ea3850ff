/**
 * Flush rules: a batch goes out at maxItems, at the token budget, or after maxWaitMs, whichever
 * comes first; each is configured per task.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { countTokens, queryOne, queryRows } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";

describe("flush rules", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      env: {
        SIEVE_CLASSIFY_MAX_ITEMS: "50",
        SIEVE_CLASSIFY_MAX_TOKENS: "300",
        SIEVE_CLASSIFY_MAX_WAIT_MS: "400",
        SIEVE_TRANSLATE_MAX_ITEMS: "3",
        SIEVE_TRANSLATE_MAX_WAIT_MS: "5000",
      },
    });
  });
  after(async () => h.close());

  test("the token budget closes a batch before maxItems", async () => {
    const text = "A reasonably long news sentence about markets, weather and sport that takes up some tokens here.";
    const per = countTokens(text);
    const items = Array.from({ length: 40 }, (_, i) => ({ id: `t${i}`, text: `${text} #${i}` }));
    const r = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
    await waitForJob(h, "acme", r.body.id);
    const rows = await queryRows<{ n: number }>(h.db.db, sql`select item_count as n from llm_calls where batch_key = (select batch_key from jobs where id = ${r.body.id})`);
    const maxPerCall = Math.max(...rows.map((x) => x.n));
    assert.ok(maxPerCall <= Math.ceil(300 / per) + 1, `calls hold at most ~300 tokens of items (max ${maxPerCall} items of ${per} tokens)`);
    assert.ok(rows.length >= Math.ceil((40 * per) / 300), `${rows.length} calls`);
  });

  test("maxItems is per task: translate packs 3 per call", async () => {
    const items = Array.from({ length: 7 }, (_, i) => ({ id: `x${i}`, text: `Sentence number ${i}` }));
    const r = await h.call("acme", "POST", "/v1/jobs", { task: "translate", targetLanguage: "es", items });
    await waitForJob(h, "acme", r.body.id);
    const rows = await queryRows<{ n: number }>(h.db.db, sql`select item_count as n from llm_calls where batch_key = (select batch_key from jobs where id = ${r.body.id}) order by n desc`);
    assert.deepEqual(rows.map((x) => x.n), [3, 3, 1]);
  });

  test("a lone item waits maxWaitMs for neighbours, then goes alone", async () => {
    const t0 = Date.now();
    const r = await h.call("acme", "POST", "/v1/jobs?wait=10s", { task: "classify", labels: LABELS, items: [{ id: "solo", text: "Lonely headline" }] });
    const took = Date.now() - t0;
    assert.equal(r.body.status, "completed");
    assert.ok(took >= 400, `waited for neighbours (${took} ms)`);
    // "Not much longer": below the 10 s long-poll (a batch that never flushed answers 202 pending),
    // with room for a loaded 2-core machine.
    assert.ok(took < 8_000, `but not much longer (${took} ms)`);
    const { n } = await queryOne<{ n: number }>(h.db.db, sql`select item_count as n from llm_calls order by id desc limit 1`);
    assert.equal(n, 1);
  });
});
