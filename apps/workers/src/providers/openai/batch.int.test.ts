/**
 * The OpenAI batch transforms with the REAL openai SDK against the provider simulator: upload,
 * create, poll, download the output AND error files, reconcile by custom_id, for every way a
 * batch can end (completed, expired with partial output, cancelled, completed-but-all-failed),
 * malformed output lines, and the enqueued-token limit.
 */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import { startSimulator, type Simulator } from "@sieve/simulator";
import { validateResults } from "@sieve/shared/tasks/output";
import { countChatTokens } from "@sieve/shared/tokens";
import type { PromptItem, TaskParams } from "@sieve/shared";
import { reconcileBatch, type BatchRequestSpec } from "../batch-types.js";
import { BATCH_ENDPOINT, COMPLETION_WINDOW, fileContent, parseOutputFile, splitIntoFiles, toBatchLine } from "./batch.js";
import { buildChatRequest } from "./chat.js";

const MODEL = "gpt-4.1-mini";
const PARAMS: TaskParams = { task: "classify", labels: ["World", "Sports", "Business", "Sci/Tech"] };
const TERMINAL = new Set(["completed", "failed", "expired", "cancelled"]);

function specs(n: number, prefix = "r", itemsPerRequest = 3): BatchRequestSpec[] {
  return Array.from({ length: n }, (_, r) => ({
    customId: `${prefix}${r}`,
    model: MODEL,
    params: PARAMS,
    items: Array.from({ length: itemsPerRequest }, (_, i): PromptItem => ({ id: `i${i + 1}`, text: `request ${r} item ${i}: markets moved today` })),
  }));
}

describe("OpenAI Batch API lifecycle (real openai SDK, simulator)", () => {
  let sim: Simulator;
  let client: OpenAI;
  before(async () => {
    sim = await startSimulator({ batch: { phaseMs: 20, seed: 1 } });
    client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: "sk-test", maxRetries: 0 });
  });
  after(() => sim.close());
  beforeEach(() => {
    sim.setFaults({});
    sim.setBatchKnobs({ phaseMs: 20, seed: 1 });
    sim.resetStats();
  });

  async function submit(list: BatchRequestSpec[]): Promise<OpenAI.Batch> {
    const files = splitIntoFiles(list.map(toBatchLine));
    assert.equal(files.length, 1);
    const file = await client.files.create({ file: await toFile(Buffer.from(fileContent(files[0]!)), "sieve-batch.jsonl"), purpose: "batch" });
    assert.equal(file.purpose, "batch");
    assert.equal(file.bytes, files[0]!.bytes);
    return client.batches.create({ input_file_id: file.id, endpoint: BATCH_ENDPOINT, completion_window: COMPLETION_WINDOW, metadata: { sieve: "test" } });
  }

  /** Moves the simulator's batch clock forward. */
  async function tick(ms: number): Promise<void> {
    const res = await fetch(`${sim.url}/_sim/batch/clock`, { method: "POST", body: JSON.stringify({ advanceMs: ms }) });
    assert.equal(res.status, 200);
  }

  async function poll(id: string): Promise<OpenAI.Batch> {
    for (;;) {
      const b = await client.batches.retrieve(id);
      if (TERMINAL.has(b.status)) return b;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async function read(fileId: string | null | undefined): Promise<string> {
    if (!fileId) return "";
    return (await client.files.content(fileId)).text();
  }

  async function outcome(b: OpenAI.Batch, list: BatchRequestSpec[]) {
    const out = await read(b.output_file_id);
    const err = await read(b.error_file_id);
    const lines = [...parseOutputFile(out), ...parseOutputFile(err)];
    return { out, err, lines, rec: reconcileBatch(list.map((s) => s.customId), lines) };
  }

  test("upload -> validating -> in_progress -> finalizing -> completed; answers reconciled by custom_id", async () => {
    // The batch clock is stepped by hand: every status is seen, however busy the machine.
    sim.setBatchKnobs({ phaseMs: 10_000, seed: 1 });
    const list = specs(40);
    list[5]!.items[1] = { id: "i2", text: "this item is SIM_POISON" };
    const created = await submit(list);
    assert.equal(created.status, "validating");
    assert.deepEqual(created.request_counts, { total: 0, completed: 0, failed: 0 });
    assert.equal(created.endpoint, BATCH_ENDPOINT);
    assert.deepEqual(created.metadata, { sieve: "test" });
    await tick(10_000);
    const started = await client.batches.retrieve(created.id);
    assert.equal(started.status, "in_progress");
    assert.ok((started.request_counts?.completed ?? 0) < 40);
    await tick(5_000);
    const half = await client.batches.retrieve(created.id);
    assert.equal(half.status, "in_progress");
    assert.ok((half.request_counts?.completed ?? 0) >= 20 && (half.request_counts?.completed ?? 0) < 40, "the counts grow while in_progress");
    await tick(5_000);
    const finalizing = await client.batches.retrieve(created.id);
    assert.equal(finalizing.status, "finalizing");
    assert.equal(finalizing.output_file_id ?? null, null, "no file before the batch has ended");
    await tick(10_000);
    const done = await client.batches.retrieve(created.id);
    assert.equal(done.status, "completed");
    assert.deepEqual(done.request_counts, { total: 40, completed: 40, failed: 0 });
    assert.ok(done.in_progress_at && done.finalizing_at && done.completed_at && done.expires_at);
    assert.equal(done.error_file_id ?? null, null);

    const { out, rec } = await outcome(done, list);
    const order = out.trim().split("\n").map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
    assert.equal(order.length, 40);
    assert.notDeepEqual(order, list.map((s) => s.customId), "output is NOT in input order");
    assert.equal(rec.ok.size, 40);
    assert.deepEqual(rec.missing, []);

    let input = 0;
    let output = 0;
    for (const s of list) {
      const r = rec.ok.get(s.customId)!;
      assert.match(r.requestId ?? "", /^req_/);
      // The usage is the realtime usage of the same body: prompt tokens counted with the real tokenizer.
      const body = buildChatRequest(s);
      assert.equal(r.usage.inputTokens, countChatTokens(body.messages.map((m) => ({ role: m.role, content: String(m.content) }))));
      input += r.usage.inputTokens;
      output += r.usage.outputTokens;
      const v = validateResults(PARAMS, s.items.map((i) => i.id), r.answer);
      if (s.customId === "r5") {
        assert.deepEqual([...v.failed.keys()], ["i2"], "the poison item is never answered");
      } else assert.equal(v.ok.size, 3, s.customId);
    }
    assert.equal(done.usage?.input_tokens, input);
    assert.equal(done.usage?.output_tokens, output);
    const stats = sim.batchStats();
    assert.equal(stats.filesUploaded, 1);
    assert.equal(stats.openai.created, 1);
    assert.deepEqual(stats.openai.ended, { completed: 1 });
    assert.equal(stats.openai.requests.succeeded, 40);
    assert.equal(sim.stats().tokensByProvider.openai.prompt, input);
  });

  test("the same items get the same answers as a realtime call", async () => {
    const [s] = specs(1);
    const realtime = await client.chat.completions.create(buildChatRequest(s!));
    const done = await poll((await submit([s!])).id);
    const { rec } = await outcome(done, [s!]);
    assert.equal(JSON.stringify(rec.ok.get("r0")?.answer), realtime.choices[0]!.message.content);
  });

  test("expired: the finished part is in the output file, the rest in the error file as batch_expired", async () => {
    sim.setBatchKnobs({ phaseMs: 20, seed: 2, expireFraction: 1, expiredDoneFraction: 0.4 });
    const list = specs(10);
    const b = await poll((await submit(list)).id);
    assert.equal(b.status, "expired");
    assert.ok(b.expired_at);
    assert.deepEqual(b.request_counts, { total: 10, completed: 4, failed: 0 });
    const { rec } = await outcome(b, list);
    assert.equal(rec.ok.size, 4);
    assert.equal(rec.errors.size, 6);
    for (const e of rec.errors.values()) assert.deepEqual([e.reason, e.code, e.retryable], ["expired", "batch_expired", true]);

    // Resubmit ONLY what expired: every item ends with an answer, none twice.
    sim.setBatchKnobs({ phaseMs: 20, seed: 2 });
    const again = list.filter((s) => rec.errors.has(s.customId));
    const second = await outcome(await poll((await submit(again)).id), again);
    assert.equal(second.rec.ok.size, 6);
    assert.deepEqual(new Set([...rec.ok.keys(), ...second.rec.ok.keys()]), new Set(list.map((s) => s.customId)));
    assert.deepEqual(sim.batchStats().openai.ended, { expired: 1, completed: 1 });
  });

  test("cancelled: partial output; requests that never ran are in neither file", async () => {
    sim.setBatchKnobs({ phaseMs: 10_000, seed: 3 });
    const list = specs(20);
    const created = await submit(list);
    await tick(13_000);
    const cancelling = await client.batches.cancel(created.id);
    assert.equal(cancelling.status, "cancelling");
    assert.ok(cancelling.cancelling_at);
    await tick(10_000);
    const b = await client.batches.retrieve(created.id);
    assert.equal(b.status, "cancelled");
    assert.ok(b.cancelled_at);
    const { rec } = await outcome(b, list);
    assert.ok(rec.ok.size >= 6 && rec.ok.size < 20, `partial output (${rec.ok.size})`);
    assert.equal(b.request_counts?.completed, rec.ok.size);
    assert.equal(b.request_counts?.failed, 0);
    assert.equal(rec.errors.size, 0);
    assert.equal(rec.missing.length, 20 - rec.ok.size);
    await assert.rejects(client.batches.cancel(created.id), (e: unknown) => e instanceof OpenAI.ConflictError);
  });

  test("completed but every request failed: output_file_id null, all in the error file", async () => {
    sim.setBatchKnobs({ phaseMs: 10, seed: 4, failAllFraction: 1 });
    const list = specs(8);
    const b = await poll((await submit(list)).id);
    assert.equal(b.status, "completed");
    assert.equal(b.output_file_id ?? null, null);
    assert.ok(b.error_file_id);
    assert.deepEqual(b.request_counts, { total: 8, completed: 0, failed: 8 });
    const { rec } = await outcome(b, list);
    assert.equal(rec.ok.size, 0);
    assert.equal(rec.errors.size, 8);
    for (const e of rec.errors.values()) assert.deepEqual([e.reason, e.status, e.retryable], ["request_error", 500, true]);
    assert.equal(sim.batchStats().openai.allFailed, 1);
  });

  test("per-request errors and malformed lines: nothing is lost, every request is accounted for", async () => {
    sim.setBatchKnobs({ phaseMs: 10, seed: 5, requestErrorRate: 0.2, malformedLineRate: 0.15 });
    const list = specs(60);
    const b = await poll((await submit(list)).id);
    assert.equal(b.status, "completed");
    const { rec } = await outcome(b, list);
    const stats = sim.batchStats().openai;
    assert.ok(stats.malformedLines > 0 && stats.requests.errored > 0, "both faults fired");
    assert.equal(rec.malformed, stats.malformedLines);
    assert.equal(rec.ok.size + rec.errors.size + rec.missing.length, 60);
    assert.equal(rec.missing.length, rec.malformed);
    assert.equal(b.request_counts?.failed, stats.requests.errored);
    for (const e of rec.errors.values()) assert.equal(e.status, 500);
  });

  test("enqueued-token limit: a batch over the limit is refused (400 token_limit_exceeded) until the first ends", async () => {
    const first = specs(5, "a");
    const tokens = first.reduce((n, s) => n + countChatTokens(buildChatRequest(s).messages.map((m) => ({ role: m.role, content: String(m.content) }))), 0);
    sim.setBatchKnobs({ phaseMs: 10_000, seed: 6, enqueuedTokenLimit: { [MODEL]: tokens + 10 } });
    const a = await submit(first);
    await assert.rejects(submit(specs(1, "b")), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.code, "token_limit_exceeded");
      assert.match(e.message, /Enqueued token limit reached for gpt-4\.1-mini/);
      return true;
    });
    assert.equal(sim.batchStats().openai.rejected, 1);
    // Other models have their own budget.
    const other = specs(1, "c").map((s) => ({ ...s, model: "gpt-4o-mini" }));
    await submit(other);
    // Once the first batch has ended, its tokens no longer count.
    sim.setBatchKnobs({ phaseMs: 0, seed: 6, enqueuedTokenLimit: { [MODEL]: tokens + 10 } });
    assert.equal((await poll(a.id)).status, "completed");
    const b = await submit(specs(1, "b"));
    assert.equal((await poll(b.id)).status, "completed");
  });

  test("list batches (newest first, cursor pagination) and delete files", async () => {
    sim.setBatchKnobs({ phaseMs: 0, seed: 7 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await submit(specs(1, `l${i}x`))).id);
    const page = await client.batches.list({ limit: 2 });
    assert.deepEqual(
      page.data.map((b) => b.id),
      [ids[2], ids[1]],
    );
    assert.ok(page.hasNextPage());
    const all: string[] = [];
    for await (const b of client.batches.list({ limit: 2 })) all.push(b.id);
    assert.deepEqual(all.slice(0, 3), [ids[2], ids[1], ids[0]]);
    const b = await client.batches.retrieve(ids[0]!);
    const deleted = await client.files.delete(b.input_file_id);
    assert.equal(deleted.deleted, true);
    await assert.rejects(client.files.retrieve(b.input_file_id), (e: unknown) => e instanceof OpenAI.NotFoundError);
  });
});
