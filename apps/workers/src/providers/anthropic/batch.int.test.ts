/**
 * The Anthropic batch transforms with the REAL @anthropic-ai/sdk against the provider simulator:
 * create, poll, read the results, reconcile by custom_id, for every way a batch ends (all
 * processed, expired with partial results, canceled, every request errored), malformed result
 * lines, and the enqueued-token limit.
 */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { startSimulator, type Simulator } from "@sieve/simulator";
import { validateResults } from "@sieve/shared/tasks/output";
import type { PromptItem, TaskParams } from "@sieve/shared";
import { reconcileBatch, type BatchRequestSpec } from "../batch-types.js";
import { parseResultLine, parseResults, splitIntoBatches, toBatchRequest } from "./batch.js";
import { buildMessagesRequest } from "./chat.js";

const MODEL = "claude-haiku-4-5";
const PARAMS: TaskParams = { task: "translate", targetLanguage: "fr" };

function specs(n: number, prefix = "r", itemsPerRequest = 3): BatchRequestSpec[] {
  return Array.from({ length: n }, (_, r) => ({
    customId: `${prefix}${r}`,
    model: MODEL,
    params: PARAMS,
    items: Array.from({ length: itemsPerRequest }, (_, i): PromptItem => ({ id: `i${i + 1}`, text: `request ${r} item ${i}: good morning` })),
  }));
}

describe("Anthropic Message Batches lifecycle (real @anthropic-ai/sdk, simulator)", () => {
  let sim: Simulator;
  let client: Anthropic;
  before(async () => {
    sim = await startSimulator({ batch: { phaseMs: 20, seed: 11 } });
    client = new Anthropic({ baseURL: sim.url, apiKey: "sk-ant-test", maxRetries: 0 });
  });
  after(() => sim.close());
  beforeEach(() => {
    sim.setFaults({});
    sim.setBatchKnobs({ phaseMs: 20, seed: 11 });
    sim.resetStats();
  });

  function submit(list: BatchRequestSpec[]) {
    const chunks = splitIntoBatches(list.map(toBatchRequest));
    assert.equal(chunks.length, 1);
    return client.messages.batches.create({ requests: chunks[0]!.requests });
  }

  /** Moves the simulator's batch clock forward. */
  async function tick(ms: number): Promise<void> {
    const res = await fetch(`${sim.url}/_sim/batch/clock`, { method: "POST", body: JSON.stringify({ advanceMs: ms }) });
    assert.equal(res.status, 200);
  }

  async function poll(id: string): Promise<Anthropic.Messages.Batches.MessageBatch> {
    for (;;) {
      const b = await client.messages.batches.retrieve(id);
      if (b.processing_status === "ended") return b;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The raw results text (what a lane that must survive malformed lines reads). */
  async function rawResults(b: Anthropic.Messages.Batches.MessageBatch): Promise<string> {
    assert.ok(b.results_url);
    const res = await client.get(b.results_url, { headers: { Accept: "application/binary" }, __binaryResponse: true }).asResponse();
    return res.text();
  }

  async function outcome(b: Anthropic.Messages.Batches.MessageBatch, list: BatchRequestSpec[]) {
    const text = await rawResults(b);
    return { text, rec: reconcileBatch(list.map((s) => s.customId), parseResults(text)) };
  }

  test("in_progress -> ended; results through the SDK and raw, reconciled by custom_id", async () => {
    sim.setBatchKnobs({ phaseMs: 10_000, seed: 11 });
    const list = specs(30);
    list[3]!.items[0] = { id: "i1", text: "SIM_POISON here" };
    const created = await submit(list);
    assert.equal(created.processing_status, "in_progress");
    assert.deepEqual(created.request_counts, { processing: 30, succeeded: 0, errored: 0, canceled: 0, expired: 0 });
    assert.equal(created.results_url, null);
    await tick(5_000);
    const half = await client.messages.batches.retrieve(created.id);
    assert.equal(half.processing_status, "in_progress");
    assert.equal(half.request_counts.processing, 30, "counts stay `processing` until the batch ends");
    await tick(5_000);
    const b = await poll(created.id);
    assert.deepEqual(b.request_counts, { processing: 0, succeeded: 30, errored: 0, canceled: 0, expired: 0 });
    assert.ok(b.ended_at && b.expires_at);
    assert.equal(b.results_url, `${sim.url}/v1/messages/batches/${b.id}/results`);

    // The SDK's own decoder reads the same file.
    const viaSdk: string[] = [];
    for await (const line of await client.messages.batches.results(b.id)) {
      viaSdk.push(line.custom_id);
      const parsed = parseResultLine(JSON.stringify(line));
      assert.equal(parsed.kind, "ok");
    }
    assert.equal(viaSdk.length, 30);
    assert.notDeepEqual(viaSdk, list.map((s) => s.customId), "results are NOT in input order");

    const { rec } = await outcome(b, list);
    assert.equal(rec.ok.size, 30);
    for (const s of list) {
      const r = rec.ok.get(s.customId)!;
      assert.ok(r.usage.inputTokens > 0 && r.usage.outputTokens > 0);
      const v = validateResults(PARAMS, s.items.map((i) => i.id), r.answer);
      if (s.customId === "r3") assert.deepEqual([...v.failed.keys()], ["i1"], "the poison item is never answered");
      else assert.equal(v.ok.size, 3, s.customId);
    }
    const first = validateResults(PARAMS, ["i1"], rec.ok.get("r0")!.answer).ok.get("i1");
    assert.deepEqual(first, { translation: "[sim→fr] request 0 item 0: good morning" });
    const stats = sim.batchStats().anthropic;
    assert.equal(stats.created, 1);
    assert.deepEqual(stats.ended, { processed: 1 });
    assert.equal(stats.requests.succeeded, 30);
    assert.equal(sim.stats().tokensByProvider.anthropic.completion, [...rec.ok.values()].reduce((n, r) => n + r.usage.outputTokens, 0));
  });

  test("the same request gets the same answer as a realtime call (forced tool -> tool_use)", async () => {
    const [s] = specs(1);
    const realtime = await client.messages.create(buildMessagesRequest(s!));
    const block = realtime.content[0] as Anthropic.Messages.ToolUseBlock;
    const { rec } = await outcome(await poll((await submit([s!])).id), [s!]);
    assert.deepEqual(rec.ok.get("r0")?.answer, block.input);
  });

  test("expired: partial results, the rest `expired`; resubmitting only those completes the set", async () => {
    sim.setBatchKnobs({ phaseMs: 20, seed: 12, expireFraction: 1, expiredDoneFraction: 0.5 });
    const list = specs(10);
    const b = await poll((await submit(list)).id);
    assert.deepEqual(b.request_counts, { processing: 0, succeeded: 5, errored: 0, canceled: 0, expired: 5 });
    const { rec } = await outcome(b, list);
    assert.equal(rec.ok.size, 5);
    for (const e of rec.errors.values()) assert.deepEqual([e.reason, e.retryable], ["expired", true]);
    sim.setBatchKnobs({ phaseMs: 20, seed: 12 });
    const again = list.filter((s) => rec.errors.has(s.customId));
    const second = await outcome(await poll((await submit(again)).id), again);
    assert.deepEqual(new Set([...rec.ok.keys(), ...second.rec.ok.keys()]), new Set(list.map((s) => s.customId)));
    assert.deepEqual(sim.batchStats().anthropic.ended, { expired: 1, processed: 1 });
  });

  test("canceled: canceling -> ended; requests that ran keep their results, the rest are `canceled`", async () => {
    sim.setBatchKnobs({ phaseMs: 10_000, seed: 13 });
    const list = specs(20);
    const created = await submit(list);
    await tick(4_000);
    const canceling = await client.messages.batches.cancel(created.id);
    assert.equal(canceling.processing_status, "canceling");
    assert.ok(canceling.cancel_initiated_at);
    sim.advanceBatchClock(10_000);
    const b = await client.messages.batches.retrieve(created.id);
    assert.equal(b.processing_status, "ended");
    const { rec } = await outcome(b, list);
    assert.ok(rec.ok.size >= 8 && rec.ok.size < 20, `partial (${rec.ok.size})`);
    assert.equal(b.request_counts.succeeded, rec.ok.size);
    assert.equal(b.request_counts.canceled, 20 - rec.ok.size);
    for (const e of rec.errors.values()) assert.deepEqual([e.reason, e.code], ["cancelled", "canceled"]);
    await assert.rejects(client.messages.batches.cancel(created.id), (e: unknown) => e instanceof Anthropic.ConflictError);
  });

  test("every request errored; per-request errors and malformed lines: every request accounted for", async () => {
    sim.setBatchKnobs({ phaseMs: 10, seed: 14, failAllFraction: 1 });
    const all = specs(6);
    const b = await poll((await submit(all)).id);
    assert.deepEqual(b.request_counts, { processing: 0, succeeded: 0, errored: 6, canceled: 0, expired: 0 });
    const failed = await outcome(b, all);
    for (const e of failed.rec.errors.values()) assert.deepEqual([e.code, e.status, e.retryable], ["api_error", 500, true]);

    sim.setBatchKnobs({ phaseMs: 10, seed: 15, requestErrorRate: 0.2, malformedLineRate: 0.15 });
    sim.resetStats();
    const list = specs(60);
    const b2 = await poll((await submit(list)).id);
    const { rec } = await outcome(b2, list);
    const stats = sim.batchStats().anthropic;
    assert.ok(stats.malformedLines > 0 && stats.requests.errored > 0, "both faults fired");
    assert.equal(rec.malformed, stats.malformedLines);
    assert.equal(rec.ok.size + rec.errors.size + rec.missing.length, 60);
    assert.equal(rec.missing.length, rec.malformed);
    // The SDK's own decoder gives up at the first malformed line: why the lane reads the raw text.
    await assert.rejects(
      (async () => {
        for await (const _ of await client.messages.batches.results(b2.id));
      })(),
      SyntaxError,
    );
  });

  test("invalid params come back `errored` (validated when the request runs), not as a failed create", async () => {
    const [good] = specs(1);
    const bad = { custom_id: "bad-1", params: { model: MODEL, messages: [{ role: "user", content: "hi" }] } } as unknown as ReturnType<typeof toBatchRequest>;
    const created = await client.messages.batches.create({ requests: [toBatchRequest(good!), bad] });
    const { rec } = await outcome(await poll(created.id), [good!, { ...good!, customId: "bad-1" }]);
    assert.equal(rec.ok.size, 1);
    assert.deepEqual([rec.errors.get("bad-1")?.code, rec.errors.get("bad-1")?.retryable], ["invalid_request_error", false]);
  });

  test("create is validated at once: custom_id rules and duplicates are 400s", async () => {
    const [s] = specs(1);
    const req = toBatchRequest(s!);
    await assert.rejects(client.messages.batches.create({ requests: [{ ...req, custom_id: "has.dot" }] }), (e: unknown) => e instanceof Anthropic.BadRequestError);
    await assert.rejects(client.messages.batches.create({ requests: [req, req] }), (e: unknown) => e instanceof Anthropic.BadRequestError && /Duplicate custom_id/.test(e.message));
    await assert.rejects(client.messages.batches.create({ requests: [] }), (e: unknown) => e instanceof Anthropic.BadRequestError);
  });

  test("enqueued-token limit and open-batch limit: 429 until earlier batches end", async () => {
    sim.setBatchKnobs({ phaseMs: 10_000, seed: 16, enqueuedTokenLimit: { "*": 2_000 } });
    const a = await submit(specs(4, "a"));
    await assert.rejects(submit(specs(10, "b")), (e: unknown) => e instanceof Anthropic.RateLimitError && /enqueued batch tokens/.test(e.message));
    sim.setBatchKnobs({ phaseMs: 10_000, seed: 16, maxOpenBatches: 1 });
    await assert.rejects(submit(specs(1, "c")), (e: unknown) => e instanceof Anthropic.RateLimitError);
    assert.equal(sim.batchStats().anthropic.rejected, 2);
    sim.setBatchKnobs({ phaseMs: 0, seed: 16, maxOpenBatches: 1, enqueuedTokenLimit: { "*": 2_000 } });
    await poll(a.id);
    await poll((await submit(specs(1, "c"))).id);
  });

  test("list (newest first, after_id pagination) and delete", async () => {
    sim.setBatchKnobs({ phaseMs: 0, seed: 17 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await submit(specs(1, `l${i}x`))).id);
    const page = await client.messages.batches.list({ limit: 2 });
    assert.deepEqual(
      page.data.map((b) => b.id),
      [ids[2], ids[1]],
    );
    const all: string[] = [];
    for await (const b of client.messages.batches.list({ limit: 2 })) all.push(b.id);
    assert.deepEqual(all.slice(0, 3), [ids[2], ids[1], ids[0]]);
    assert.deepEqual(await client.messages.batches.delete(ids[0]!), { id: ids[0], type: "message_batch_deleted" });
    await assert.rejects(client.messages.batches.retrieve(ids[0]!), (e: unknown) => e instanceof Anthropic.NotFoundError);
  });
});
