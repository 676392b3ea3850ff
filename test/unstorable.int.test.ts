/**
 * Bytes Postgres cannot store (U+0000, lone UTF-16 surrogates) are refused with a 400 naming the
 * field, in every field, before anything is written; in /v1/bulk such a line is one bad line and
 * the good lines are kept. And a failed statement never puts its parameters (item texts) in the
 * logs. Real Redis + Postgres; workers in-process for the log test.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import { createLogger, queryOne } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";

const NUL = "\u0000";
const ok = { task: "classify", labels: ["a", "b"], items: [{ id: "1", text: "hello" }] };
const items = (n: number, bad: number, text: string) => Array.from({ length: n }, (_, i) => ({ id: `i${i}`, text: i === bad ? text : `fine ${i}` }));

describe("bytes Postgres cannot store", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ workers: false });
  });
  after(async () => {
    await h.close();
  });

  const cases: Array<[string, unknown, string]> = [
    ["NUL in a text", { ...ok, items: items(5, 3, `bad${NUL}text`) }, "items[3].text: contains U+0000"],
    ["lone high surrogate in a text", { ...ok, items: items(2, 1, "half \ud83d emoji") }, "items[1].text: contains a lone UTF-16 surrogate (U+D83D)"],
    ["lone low surrogate in a text", { ...ok, items: items(2, 0, "\ude00 tail") }, "items[0].text: contains a lone UTF-16 surrogate (U+DE00)"],
    ["NUL in an item id", { ...ok, items: [{ id: `a${NUL}`, text: "x" }] }, "items[0].id: contains U+0000"],
    ["NUL in a label", { ...ok, labels: ["a", `b${NUL}`] }, "labels[1]: contains U+0000"],
    ["NUL in instructions", { ...ok, instructions: `be brief${NUL}` }, "instructions: contains U+0000"],
    ["NUL in a label description", { ...ok, labelDescriptions: { a: `first${NUL}` } }, "labelDescriptions.a: contains U+0000"],
    ["NUL in a label description key", { ...ok, labelDescriptions: { [`a${NUL}`]: "first" } }, "labelDescriptions: a key contains U+0000"],
    ["NUL in targetLanguage", { task: "translate", targetLanguage: `de${NUL}`, items: ok.items }, "targetLanguage: contains U+0000"],
    ["NUL in a model", { ...ok, model: `gpt${NUL}` }, "model: contains U+0000"],
    ["NUL in a cache namespace", { ...ok, cache: { namespace: `ns${NUL}` } }, "cache.namespace: contains U+0000"],
    ["NUL in an unknown field", { ...ok, metadata: { note: `x${NUL}` } }, "metadata.note: contains U+0000"],
  ];
  for (const [name, body, message] of cases) {
    test(`${name} -> 400 "${message}"`, async () => {
      const r = await h.call("acme", "POST", "/v1/jobs", body);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error.message, message);
      assert.equal(r.body.error.details[0].field, message.slice(0, message.indexOf(":")));
    });
  }

  test("nothing was stored by any refused request", async () => {
    const { n } = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from jobs`);
    assert.equal(n, 0);
  });

  test("a job id with U+0000 in the path is a 400 naming id", async () => {
    for (const path of ["/v1/jobs/job_%00x", "/v1/jobs/job_%00x/results"]) {
      const r = await h.call("acme", "GET", path);
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.equal(r.body.error.message, "id: contains U+0000");
    }
  });

  test("a query parameter with U+0000 is a 400 naming it", async () => {
    const r = await h.call("acme", "GET", "/v1/usage?since=%00");
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error.message, "since: contains U+0000");
  });

  test("bulk: a line Postgres cannot store is one bad line, reported by number; the others are kept", async () => {
    const lines = [
      JSON.stringify({ task: "classify", labels: LABELS }),
      JSON.stringify({ id: "g1", text: "good one" }),
      JSON.stringify({ id: "n1", text: `nul${NUL}inside` }),
      JSON.stringify({ id: `n${NUL}2`, text: "bad id" }),
      JSON.stringify({ id: "s1", text: "lone \udc00" }),
      JSON.stringify({ id: "g2", text: "good two" }),
    ];
    const res = await fetch(`${h.api.url}/v1/bulk`, { method: "POST", headers: { authorization: `Bearer ${h.keys.acme}`, "content-type": "application/x-ndjson" }, body: lines.join("\n") });
    const body = (await res.json()) as any;
    assert.equal(res.status, 202, JSON.stringify(body));
    assert.deepEqual(body.counts, { lines: 5, accepted: 2, rejected: 3, cached: 0 });
    assert.deepEqual(
      body.errors.map((e: any) => [e.line, e.field, e.message]),
      [
        [3, "text", "contains U+0000"],
        [4, "id", "contains U+0000"],
        [5, "text", "contains a lone UTF-16 surrogate (U+DC00)"],
      ],
    );
    assert.equal(body.errors[0].id, "n1");
    const { n } = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from items where job_id = ${body.id}`);
    assert.equal(n, 2);
  });

  test("bulk: U+0000 in the header is a 400 naming the line and field", async () => {
    const body = [JSON.stringify({ task: "classify", labels: ["a", `b${NUL}`] }), JSON.stringify({ id: "x", text: "y" })].join("\n");
    const res = await fetch(`${h.api.url}/v1/bulk`, { method: "POST", headers: { authorization: `Bearer ${h.keys.acme}`, "content-type": "application/x-ndjson" }, body });
    const out = (await res.json()) as any;
    assert.equal(res.status, 400);
    assert.equal(out.error.message, "header (line 1): labels[1]: contains U+0000");
  });
});

describe("failed statements never log their parameters", () => {
  let h: Harness;
  const lines: string[] = [];
  before(async () => {
    const dest = new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    h = await startHarness({ log: createLogger({ level: "debug", destination: dest }) });
  });
  after(async () => {
    await h.close();
  });

  test("an INSERT of items that fails (API) and of results that fails (worker) logs code and constraint, never a text", async () => {
    // Real failing statements: check constraints that refuse rows carrying a marker.
    await h.db.db.execute(sql`alter table items add constraint refuse_marker check (text not like '%api-marker%')`);
    await h.db.db.execute(sql`alter table results add constraint refuse_output check (output::text not like '%worker-marker%')`);
    const secretApi = "confidential-text-4471 api-marker";
    const r = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: [{ id: "1", text: secretApi }, { id: "2", text: "other private words 9913" }] });
    assert.ok(r.status >= 500, r.text);
    assert.ok(!r.text.includes("confidential"), "the answer does not echo item texts");

    // Translate answers echo their source text (simulator): the worker's result INSERT carries it.
    const secretWorker = "translate-me-secret-8812 worker-marker";
    const t = await h.call("acme", "POST", "/v1/jobs", { task: "translate", targetLanguage: "de", items: [{ id: "w", text: secretWorker }] });
    assert.equal(t.status, 202, t.text);
    // The worker's write fails until the constraint goes; then the retried parcel lands.
    const deadline = Date.now() + 30_000;
    while (!lines.some((l) => l.includes("refuse_output")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await h.db.db.execute(sql`alter table results drop constraint refuse_output`);
    await waitForJob(h, "acme", t.body.id);

    const log = lines.join("");
    assert.ok(log.includes("refuse_marker"), "the API's log names the constraint");
    assert.ok(log.includes("refuse_output"), "the worker's log names the constraint");
    assert.ok(log.includes("23514"), "and the SQLSTATE");
    for (const secret of ["confidential-text-4471", "other private words 9913", "translate-me-secret-8812", "params:"]) {
      assert.ok(!log.includes(secret), `"${secret}" reached the logs`);
    }
  });
});
