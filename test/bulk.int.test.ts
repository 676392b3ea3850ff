/**
 * Bulk ingestion, realtime lane, on real Redis + Postgres with the provider simulator:
 * a streamed NDJSON upload with bad lines (each reported with its line number, none costing a good
 * line), header errors, the CLI (submit with progress, status, results) and the nightly inbox.
 * About 40 s (most of it process start-up).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { Queue } from "bullmq";
import { BULK_INBOX_QUEUE, createRedis, queryOne, queryRows } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";
import { agNewsItems } from "./support/datasets.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A fetch body that arrives in small, oddly cut pieces (mid-line, mid-UTF-8 character). */
function trickle(text: string, piece = 777): ReadableStream<Uint8Array> {
  const bytes = Buffer.from(text);
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(at, at + piece));
      at += piece;
    },
  });
}

async function postBulk(h: Harness, tenant: string, body: string | ReadableStream<Uint8Array>) {
  const res = await fetch(`${h.api.url}/v1/bulk`, {
    method: "POST",
    headers: { authorization: `Bearer ${h.keys[tenant] ?? tenant}`, "content-type": "application/x-ndjson" },
    body,
    duplex: "half",
  } as RequestInit);
  const text = await res.text();
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

const header = (extra: Record<string, unknown> = {}) => JSON.stringify({ task: "classify", labels: LABELS, lane: "realtime", ...extra });

describe("POST /v1/bulk (realtime lane)", () => {
  let h: Harness;
  let inbox: string;
  before(async () => {
    inbox = mkdtempSync(path.join(tmpdir(), "sieve-inbox-"));
    h = await startHarness({
      env: {
        SIEVE_BULK_CHUNK_ITEMS: "50",
        SIEVE_MAX_TEXT_CHARS: "300",
        SIEVE_CLASSIFY_MAX_WAIT_MS: "50",
        // The scheduler is registered; the test runs its scan directly (no waiting for 3 am).
        SIEVE_BULK_CRON: "0 3 * * *",
        SIEVE_BULK_INBOX: inbox,
      },
    });
  });
  after(async () => h.close());

  test("bad lines are reported with their line numbers; every good line is kept and answered", async () => {
    const items = agNewsItems(230).map(({ id, text }) => ({ id, text: text.slice(0, 300) }));
    const lines: string[] = [header()];
    const bad = new Map<number, string>(); // line number -> expected field or message fragment
    items.forEach((it, i) => {
      const no = lines.length + 1;
      if (i === 3) {
        lines.push("{not json");
        bad.set(no, "not valid JSON");
      } else if (i === 8) {
        lines.push(JSON.stringify({ id: it.id }));
        bad.set(no, "text");
      } else if (i === 17) {
        lines.push(JSON.stringify({ id: it.id, text: "x".repeat(301) }));
        bad.set(no, "text");
      } else if (i === 25) {
        lines.push(JSON.stringify({ ...it, extra: 1 }));
        bad.set(no, "extra");
      } else if (i === 31) {
        lines.push(JSON.stringify({ id: items[30]!.id, text: "same id as the line before" }));
        bad.set(no, "id");
      } else if (i === 160) {
        // Same id as a line of an earlier chunk (chunks of 50): found by the database.
        lines.push(JSON.stringify({ id: items[5]!.id, text: "same id as an earlier chunk" }));
        bad.set(no, "id");
      } else if (i === 90) {
        lines.push(JSON.stringify({ id: it.id, text: "é".repeat(5000) }));
        bad.set(no, "longer than");
      } else if (i === 120) {
        lines.push(JSON.stringify({ id: "has space", text: it.text }));
        bad.set(no, "id");
      } else if (i === 140) {
        lines.push("   "); // blank: ignored, not an error
      } else {
        lines.push(JSON.stringify(it) + (i % 7 === 0 ? "\r" : ""));
      }
    });
    const res = await postBulk(h, "acme", trickle(lines.join("\n") + "\n"));
    assert.equal(res.status, 202, res.text);
    const good = items.length - bad.size - 1;
    assert.equal(res.body.counts.accepted, good);
    assert.equal(res.body.counts.rejected, bad.size);
    assert.equal(res.body.counts.lines, items.length - 1, "blank lines are not counted");
    const reported = new Map<number, any>(res.body.errors.map((e: any) => [e.line, e]));
    assert.deepEqual([...reported.keys()].sort((a, b) => a - b), [...bad.keys()].sort((a, b) => a - b), "each bad line is reported with its line number");
    for (const [no, want] of bad) {
      const e = reported.get(no);
      assert.ok(`${e.field ?? ""} ${e.message}`.includes(want), `line ${no}: ${JSON.stringify(e)} mentions ${want}`);
    }
    const job = await waitForJob(h, "acme", res.body.id, 60_000);
    assert.equal(job.status, "completed");
    assert.equal(job.counts.items, good);
    assert.equal(job.items.length, good);
    const ids = new Set(job.items.map((i: any) => i.id));
    assert.equal(ids.size, good);
    assert.ok(ids.has(items[30]!.id) && ids.has(items[5]!.id), "the first line with an id wins");
    assert.ok(job.items.every((i: any) => i.status === "ok" && LABELS.includes(i.output.label)));
  });

  test("a bad header is a 400 naming the field, and nothing is stored", async () => {
    const before = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from jobs`);
    const cases: Array<[string, RegExp]> = [
      ["{oops", /header: not valid JSON/],
      [JSON.stringify({ task: "summarize" }), /task/],
      [JSON.stringify({ task: "classify", labels: ["only-one"] }), /labels/],
      [JSON.stringify({ task: "classify", labels: LABELS, lane: "batch" }), /lane: the batch lane is not enabled/],
      [JSON.stringify({ task: "classify", labels: LABELS, tenant: "globex" }), /tenant: unknown field/],
      // The lane router is for POST /v1/jobs (docs/gpu-lane.md, "Bulk uploads and lane auto").
      [JSON.stringify({ task: "classify", labels: LABELS, lane: "auto", deadline: "PT1H" }), /^header \(line 1\): lane: "auto" is not available for bulk uploads/],
      [JSON.stringify({ task: "classify", labels: LABELS, lane: "auto", deadline: "PT1S" }), /^header \(line 1\): lane: "auto" is not available for bulk uploads/],
      [JSON.stringify({ task: "classify", labels: LABELS, lane: "batch", deadline: "P1D" }), /^header \(line 1\): deadline: only with lane "auto"/],
    ];
    for (const [first, re] of cases) {
      const r = await postBulk(h, "acme", `${first}\n${JSON.stringify({ id: "a", text: "b" })}\n`);
      assert.equal(r.status, 400, `${first}: ${r.text}`);
      assert.match(r.body.error.message, re);
    }
    const empty = await postBulk(h, "acme", "\n  \n");
    assert.equal(empty.status, 400);
    assert.match(empty.body.error.message, /empty/);
    const allBad = await postBulk(h, "acme", `${header()}\n{bad\n${JSON.stringify({ id: "x" })}\n`);
    assert.equal(allBad.status, 400);
    assert.equal(allBad.body.error.code, "no_valid_items");
    assert.equal(allBad.body.error.details.length, 2);
    const afterN = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from jobs`);
    assert.equal(afterN.n, before.n, "no job row left behind");
    const noKey = await fetch(`${h.api.url}/v1/bulk`, { method: "POST", body: header() });
    assert.equal(noKey.status, 401);
  });

  test("CLI: submit streams a file with progress and prints the job id; status and results", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "sieve-cli-"));
    const file = path.join(dir, "items.jsonl");
    const items = agNewsItems(120).map(({ id, text }) => ({ id: `cli-${id}`, text: text.slice(0, 300) }));
    writeFileSync(file, items.map((i) => JSON.stringify(i)).join("\n") + "\n{broken\n");
    const cli = ["--import", "tsx", path.join(ROOT, "apps/cli/src/main.ts")];
    const env = { ...process.env, SIEVE_URL: h.api.url, SIEVE_API_KEY: h.keys.acme! };
    const sub = await run(process.execPath, [...cli, "submit", file, "--task", "classify", "--labels", LABELS.join(","), "--lane", "realtime"], { env, cwd: ROOT });
    const jobId = sub.stdout.trim();
    assert.match(jobId, /^job_[0-9a-f]{32}$/);
    assert.match(sub.stderr, /100\.0% .* 122 lines/, "a final progress line with bytes and lines sent (header + 121)");
    assert.match(sub.stderr, /accepted 120, rejected 1/);
    assert.match(sub.stderr, /line 121: not valid JSON/, "bad lines are named by their line in the file (not counting the header the CLI adds)");
    const st = await run(process.execPath, [...cli, "status", jobId, "--wait", "30s"], { env, cwd: ROOT });
    const status = JSON.parse(st.stdout);
    assert.equal(status.status, "completed");
    assert.equal(status.counts.items, 120);
    const rs = await run(process.execPath, [...cli, "results", jobId], { env, cwd: ROOT, maxBuffer: 10 * 1024 * 1024 });
    const out = rs.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(out.length, 120);
    assert.deepEqual(new Set(out.map((o) => o.id)), new Set(items.map((i) => i.id)));
    const noKey = await run(process.execPath, [...cli, "status", jobId], { env: { ...process.env, SIEVE_URL: h.api.url, SIEVE_API_KEY: "" }, cwd: ROOT }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((noKey as { code: number }).code, 2);
  });

  test("nightly inbox: files are ingested (tenant from the header), moved to done/ with a report; unusable ones to failed/", async () => {
    const scheduler = new Queue(BULK_INBOX_QUEUE, { connection: createRedis(h.env.REDIS_URL, "producer"), prefix: h.env.SIEVE_QUEUE_PREFIX });
    const s = await scheduler.getJobScheduler("bulk-inbox");
    assert.equal(s?.pattern, "0 3 * * *", "the cron is registered as a BullMQ job scheduler");
    await scheduler.close();
    await (scheduler.opts.connection as unknown as { quit(): Promise<void> }).quit?.().catch(() => {});

    const items = agNewsItems(60).map(({ id, text }) => ({ id: `inbox-${id}`, text: text.slice(0, 300) }));
    writeFileSync(path.join(inbox, "a.jsonl"), [JSON.stringify({ tenant: "globex", task: "classify", labels: LABELS, lane: "realtime" }), ...items.map((i) => JSON.stringify(i))].join("\n"));
    writeFileSync(path.join(inbox, "b.jsonl"), [JSON.stringify({ task: "classify", labels: LABELS }), JSON.stringify(items[0])].join("\n"));
    writeFileSync(path.join(inbox, "c.jsonl"), [JSON.stringify({ tenant: "nobody", task: "classify", labels: LABELS }), JSON.stringify(items[0])].join("\n"));
    writeFileSync(path.join(inbox, "notes.txt"), "ignored");
    const scan = await h.api.inbox!.scanNow();
    assert.equal(scan.ingested.length, 1);
    assert.equal(scan.failed.length, 2);
    assert.match(scan.failed[0]!.error, /tenant: is required|tenant/);
    assert.match(scan.failed[1]!.error, /"nobody" is not a known tenant/);
    assert.ok(existsSync(path.join(inbox, "done", "a.jsonl")) && existsSync(path.join(inbox, "done", "a.jsonl.report.json")));
    assert.ok(existsSync(path.join(inbox, "failed", "b.jsonl")) && existsSync(path.join(inbox, "failed", "c.jsonl")));
    assert.deepEqual(readdirSync(inbox).filter((f) => f.endsWith(".jsonl")), [], "nothing left in the inbox");
    const report = JSON.parse(readFileSync(path.join(inbox, "done", "a.jsonl.report.json"), "utf8"));
    assert.equal(report.accepted, 60);
    assert.equal(report.tenant, "globex");
    const job = await waitForJob(h, "globex", report.jobId, 60_000);
    assert.equal(job.status, "completed");
    const other = await h.call("acme", "GET", `/v1/jobs/${report.jobId}`);
    assert.equal(other.status, 404, "the job belongs to the tenant the file names");
    const rows = await queryRows<{ n: number }>(h.db.db, sql`select count(*)::int as n from jobs where status = 'ingesting'`);
    assert.equal(rows[0]!.n, 0);
  });
});
