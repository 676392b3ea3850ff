/**
 * Answer quality end to end (docs/quality.md), against real Redis and Postgres and the provider
 * simulator in reference mode: packed answers re-checked alone, agreement per job and in metrics,
 * the maxItems controller lowering a batch key's limit; the fine-tune export's format and exclusions.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { RECHECK_QUEUE, queryRows } from "@sieve/shared";
import { ReferenceAnswers, ReferenceNoise } from "@sieve/simulator";
import { PassThrough } from "node:stream";
import { main as cli } from "../apps/cli/src/main.js";
import { startHarness, waitForJob, waitForQueueDrained, LABELS, type Harness } from "./support/harness.js";

const gold = new Map<string, string>();
for (let i = 0; i < 400; i++) gold.set(`Quality probe headline ${i} on subject ${i % 13}`, LABELS[(i * 7) % 4]!);
const texts = [...gold.keys()];

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("answer quality", () => {
  let h: Harness;
  before(async () => {
    // Alone: always the gold label. 20 per call: 0.43 (3 points lost per extra item).
    const answers = new ReferenceAnswers(ReferenceNoise.parse({ baseAccuracy: 1, perItemDrop: 0.03, seed: 1 }));
    for (const [t, l] of gold) answers.addLabel(t, l);
    h = await startHarness({
      answers,
      env: {
        SIEVE_CLASSIFY_MAX_ITEMS: "20",
        SIEVE_CLASSIFY_MAX_WAIT_MS: "300",
        SIEVE_RECHECK_RATE: "1",
        SIEVE_RECHECK_MIN_SAMPLES: "30",
        SIEVE_RECHECK_COOLDOWN_MS: "0",
      },
    });
  });
  after(async () => {
    await h.close();
  });

  let jobA: any;
  test("packed answers are re-checked alone; agreement is stored per job and exported as a metric", async () => {
    const items = texts.slice(0, 200).map((text, i) => ({ id: `a${i}`, text }));
    const r = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
    assert.equal(r.status, 202, r.text);
    await waitForJob(h, "acme", r.body.id);
    // Re-checks run off the hot path: the job finishes first, they land after.
    await until("re-checks", async () => {
      const [row] = await queryRows<{ n: number }>(h.db.db, sql`select count(*)::int as n from quality_checks where job_id = ${r.body.id}`);
      return row!.n >= 200 ? row : undefined;
    });
    jobA = (await h.call("acme", "GET", `/v1/jobs/${r.body.id}?limit=1000`)).body;
    const q = jobA.quality;
    assert.equal(q.rechecked, 200, "every packed answer was re-checked at rate 1");
    // Alone the simulator gives gold, so agreement = share of packed answers equal to gold.
    const packedRight = jobA.items.filter((it: any) => it.output.label === gold.get(items.find((x) => x.id === it.id)!.text)).length;
    assert.equal(q.agreed, packedRight);
    assert.ok(q.agreement < 0.9, `agreement ${q.agreement}`);
    assert.ok(q.byItemsPerCall.every((b: any) => b.itemsPerCall >= 2));
    assert.equal(q.byItemsPerCall.reduce((s: number, b: any) => s + b.rechecked, 0), 200);
    // The single-item calls are recorded like any call: their spend is visible.
    const [calls] = await queryRows<{ n: number }>(h.db.db, sql`select count(*)::int as n from llm_calls where lane = 'recheck'`);
    assert.equal(calls!.n, 200);
    const metrics = await (await fetch(`${h.api.url}/metrics`)).text();
    assert.match(metrics, /sieve_recheck_total\{task="classify",model="gpt-4.1-mini",items_per_call="\d+",agree="false"\} \d+/);
    assert.match(metrics, /sieve_recheck_agreement\{task="classify",model="gpt-4.1-mini",items_per_call="\d+"\} 0\.\d+/);
  });

  test("the controller lowers the batch key's maxItems, and later calls of that key are smaller", async () => {
    const [limit] = await queryRows<{ batch_key: string; max_items: number }>(h.db.db, sql`select batch_key, max_items from batch_limits`);
    assert.ok(limit, "a limit row exists for the batch key");
    assert.ok(limit.max_items <= 10, `maxItems ${limit.max_items}`);
    await new Promise((r) => setTimeout(r, 6_000)); // aggregators refresh limits every 5 s
    const [{ last }] = (await queryRows<{ last: number }>(h.db.db, sql`select coalesce(max(id), 0)::int as last from llm_calls`)) as [{ last: number }];
    const items = texts.slice(200, 300).map((text, i) => ({ id: `b${i}`, text }));
    const r = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
    await waitForJob(h, "acme", r.body.id);
    const sizes = await queryRows<{ item_count: number }>(h.db.db, sql`select item_count from llm_calls where id > ${last} and lane = 'realtime' and batch_key = ${limit.batch_key}`);
    assert.ok(sizes.length >= 10);
    for (const s of sizes) assert.ok(s.item_count <= limit.max_items, `a call of ${s.item_count} items after the limit fell to ${limit.max_items}`);
  });

  test("fine-tune export: OpenAI chat JSONL of LLM answers only, without disagreed re-checks or other tenants", async () => {
    // Re-checks of the previous job are queued after it finished (not awaited on the call path)
    // and land later: give the last ones a moment to be queued, then let them all land.
    await new Promise((r) => setTimeout(r, 1_000));
    await waitForQueueDrained(h, RECHECK_QUEUE, 60_000);
    // Cache answers (exact repeats) and another tenant's items must not appear.
    const repeat = await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, items: texts.slice(0, 5).map((text, i) => ({ id: `r${i}`, text })) });
    assert.ok(repeat.body.items.every((it: any) => it.cache === "exact"), JSON.stringify(repeat.body.items.map((i: any) => i.cache)));
    const other = await h.call("globex", "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, items: [{ id: "g1", text: "Globex private text" }] });
    assert.equal(other.status, 200);
    const tr = await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "translate", targetLanguage: "de", items: [{ id: "t1", text: "Good morning" }, { id: "t2", text: "Good night" }] });
    assert.equal(tr.status, 200);

    const res = await fetch(`${h.api.url}/v1/exports/fine-tune?task=classify`, { headers: { authorization: `Bearer ${h.keys.acme}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /ndjson/);
    const lines = (await res.text()).split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const disagreed = new Set(
      (await queryRows<{ text: string }>(h.db.db, sql`select i.text from quality_checks q join items i on i.id = q.item_id where q.agree = false`)).map((r) => r.text),
    );
    assert.ok(disagreed.size > 50);
    const expected = texts.slice(0, 300).filter((t) => !disagreed.has(t)).sort();
    const exported = lines.map((l) => JSON.parse(l.messages[1].content.split("\n").find((x: string) => x.startsWith("{"))).text as string).sort();
    assert.deepEqual(exported, expected);
    const byText = new Map<string, string>();
    for (const it of jobA.items) byText.set(texts[Number(it.id.slice(1))]!, it.output.label);
    for (const l of lines) {
      assert.deepEqual(l.messages.map((m: any) => m.role), ["system", "user", "assistant"]);
      assert.match(l.messages[0].content, /Allowed labels/);
      const text = JSON.parse(l.messages[1].content.split("\n").find((x: string) => x.startsWith("{"))).text;
      const answer = JSON.parse(l.messages[2].content);
      assert.equal(answer.results.length, 1);
      assert.equal(answer.results[0].id, "i1");
      if (byText.has(text)) assert.equal(answer.results[0].label, byText.get(text));
    }

    // The CLI command streams the same export.
    const out = new PassThrough();
    let cliText = "";
    out.on("data", (c: Buffer) => (cliText += c.toString("utf8")));
    assert.equal(await cli(["export-fine-tune", "--task", "classify"], { out, err: process.stderr, env: { SIEVE_URL: h.api.url, SIEVE_API_KEY: h.keys.acme! } }), 0);
    assert.deepEqual(cliText.split("\n").filter(Boolean).map((l) => JSON.parse(l)), lines);

    const trLines = (await (await fetch(`${h.api.url}/v1/exports/fine-tune?task=translate`, { headers: { authorization: `Bearer ${h.keys.acme}` } })).text()).split("\n").filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(trLines.length, 2);
    for (const l of trLines) assert.equal(typeof JSON.parse(l.messages[2].content).results[0].translation, "string");

    const globex = (await (await fetch(`${h.api.url}/v1/exports/fine-tune?task=classify`, { headers: { authorization: `Bearer ${h.keys.globex}` } })).text()).split("\n").filter(Boolean);
    assert.equal(globex.length, 1);
    assert.match(globex[0]!, /Globex private text/);

    const future = await h.call("acme", "GET", "/v1/exports/fine-tune?task=classify&since=2999-01-01");
    assert.equal(future.status, 200);
    assert.equal(future.text, "");
  });

  test("fine-tune export: bad query parameters are a 400 naming the field; no key is a 401", async () => {
    for (const [q, field] of [["", "task"], ["task=summarize", "task"], ["task=classify&since=yesterday", "since"]] as const) {
      const r = await h.call("acme", "GET", `/v1/exports/fine-tune?${q}`);
      assert.equal(r.status, 400, r.text);
      assert.ok(r.body.error.message.startsWith(`${field}:`), r.body.error.message);
    }
    const anon = await fetch(`${h.api.url}/v1/exports/fine-tune?task=classify`);
    assert.equal(anon.status, 401);
  });
});
