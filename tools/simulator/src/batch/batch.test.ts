/** The simulated Files / Batches / Message Batches routes with the real SDKs: validation, knobs, faults. */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { OUTPUT_SCHEMA_NAME, validateResults } from "@sieve/shared/tasks/output";
import { startSimulator, type Simulator } from "../server.js";
import { CLASSIFY, makeItems, sieveCall } from "../testSupport.js";
import { BatchState } from "./state.js";
import { shuffled } from "./common.js";
import { createRng } from "../faults.js";

const MODEL = "gpt-4o-mini";

function chatBody(prefix: string, model = MODEL) {
  const call = sieveCall(CLASSIFY, makeItems(3, prefix));
  return {
    model,
    messages: [
      { role: "system", content: call.system },
      { role: "user", content: call.user },
    ],
    response_format: { type: "json_schema", json_schema: { name: OUTPUT_SCHEMA_NAME, schema: call.schema, strict: true } },
  };
}

const inputLine = (customId: string, over: Record<string, unknown> = {}) =>
  JSON.stringify({ custom_id: customId, method: "POST", url: "/v1/chat/completions", body: chatBody(customId), ...over });

describe("simulated batch APIs", () => {
  let sim: Simulator;
  let openai: OpenAI;
  let anthropic: Anthropic;
  before(async () => {
    sim = await startSimulator({ batch: { phaseMs: 5, seed: 3 } });
    openai = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: "sk-test", maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: sim.url, apiKey: "x", maxRetries: 0 });
  });
  after(() => sim.close());
  beforeEach(() => {
    sim.setFaults({});
    sim.setBatchKnobs({ phaseMs: 5, seed: 3 });
    sim.resetStats();
  });

  async function upload(text: string, name = "in.jsonl") {
    return openai.files.create({ file: await toFile(Buffer.from(text), name), purpose: "batch" });
  }
  async function createFrom(text: string) {
    const f = await upload(text);
    return openai.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
  }
  async function settle(id: string) {
    for (;;) {
      const b = await openai.batches.retrieve(id);
      if (["completed", "failed", "expired", "cancelled"].includes(b.status)) return b;
      await new Promise((r) => setTimeout(r, 3));
    }
  }

  test("files: upload (multipart), retrieve, content, list, delete; batch files must be .jsonl", async () => {
    const text = inputLine("a") + "\n";
    const f = await upload(text);
    assert.match(f.id, /^file-/);
    assert.deepEqual([f.object, f.purpose, f.filename, f.bytes, f.status], ["file", "batch", "in.jsonl", Buffer.byteLength(text), "processed"]);
    assert.deepEqual(await openai.files.retrieve(f.id), f);
    assert.equal(await (await openai.files.content(f.id)).text(), text);
    const listed: string[] = [];
    for await (const x of openai.files.list({ purpose: "batch" })) listed.push(x.id);
    assert.ok(listed.includes(f.id));
    assert.equal((await openai.files.delete(f.id)).deleted, true);
    await assert.rejects(openai.files.content(f.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(upload(text, "in.txt"), (e: unknown) => e instanceof OpenAI.BadRequestError && /\.jsonl/.test(e.message));
    assert.equal(sim.batchStats().filesUploaded, 1);
  });

  test("create refuses a missing file, another endpoint, another window, a non-batch file", async () => {
    const f = await upload(inputLine("a"));
    const bad = [
      { input_file_id: "file-nope", endpoint: "/v1/chat/completions", completion_window: "24h" },
      { input_file_id: f.id, endpoint: "/v1/embeddings", completion_window: "24h" },
      { input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "1h" },
    ] as OpenAI.BatchCreateParams[];
    for (const body of bad) await assert.rejects(openai.batches.create(body), (e: unknown) => e instanceof OpenAI.BadRequestError, JSON.stringify(body));
    const other = await openai.files.create({ file: await toFile(Buffer.from("x"), "x.txt"), purpose: "user_data" });
    await assert.rejects(openai.batches.create({ input_file_id: other.id, endpoint: "/v1/chat/completions", completion_window: "24h" }), OpenAI.BadRequestError);
    await assert.rejects(openai.batches.retrieve("batch_nope"), OpenAI.NotFoundError);
  });

  test("an invalid input file: the batch ends `failed` with errors.data naming code and line", async () => {
    const text = [
      inputLine("a"),
      "{not json",
      inputLine("a"),
      inputLine("b", { url: "/v1/embeddings" }),
      inputLine("c", { body: chatBody("c", "gpt-4.1") }),
      inputLine("d", { method: "GET" }),
      JSON.stringify({ method: "POST", url: "/v1/chat/completions", body: chatBody("e") }),
    ].join("\n");
    const b = await settle((await createFrom(text)).id);
    assert.equal(b.status, "failed");
    assert.ok(b.failed_at);
    assert.deepEqual(b.request_counts, { total: 0, completed: 0, failed: 0 });
    assert.deepEqual(
      b.errors?.data?.map((e) => [e.code, e.line]),
      [
        ["invalid_json_line", 2],
        ["duplicate_custom_id", 3],
        ["url_mismatch", 4],
        ["model_mismatch", 5],
        ["invalid_value", 6],
        ["missing_required_parameter", 7],
      ],
    );
    assert.deepEqual(
      (await settle((await createFrom("\n")).id)).errors?.data?.map((e) => e.code),
      ["empty_file"],
    );
    sim.setBatchKnobs({ phaseMs: 5, openaiMaxRequests: 2, openaiMaxFileBytes: 100_000 });
    const three = [inputLine("x"), inputLine("y"), inputLine("z")].join("\n");
    assert.deepEqual(
      (await settle((await createFrom(three)).id)).errors?.data?.map((e) => e.code),
      ["too_many_tasks"],
    );
    sim.setBatchKnobs({ phaseMs: 5, openaiMaxFileBytes: 100 });
    assert.deepEqual(
      (await settle((await createFrom(inputLine("x"))).id)).errors?.data?.map((e) => e.code),
      ["file_too_large"],
    );
    assert.equal(sim.batchStats().openai.ended.failed, 4);
  });

  test("output lines have the documented shape; item faults apply, request-level faults do not", async () => {
    sim.setFaults({ rate429: 1, rate5xx: 1, rateTimeout: 1, latencyMs: 5_000, rateDropItem: 1 });
    const b = await settle((await createFrom([inputLine("a"), inputLine("b")].join("\n"))).id);
    assert.equal(b.status, "completed");
    const text = await (await openai.files.content(b.output_file_id!)).text();
    const lines = text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    for (const l of lines) {
      assert.deepEqual(Object.keys(l), ["id", "custom_id", "response", "error"]);
      assert.match(String(l.id), /^batch_req_/);
      assert.equal(l.error, null);
      const response = l.response as { status_code: number; request_id: string; body: OpenAI.ChatCompletion };
      assert.equal(response.status_code, 200);
      assert.match(response.request_id, /^req_/);
      assert.equal(response.body.object, "chat.completion");
      const v = validateResults(CLASSIFY, ["i1", "i2", "i3"], JSON.parse(response.body.choices[0]!.message.content ?? ""));
      assert.equal(v.ok.size, 2, "one entry dropped by the item fault");
    }
    const out = await openai.files.retrieve(b.output_file_id!);
    assert.equal(out.purpose, "batch_output");
    assert.equal(sim.stats().injected.droppedItems, 2);
    assert.equal(sim.stats().injected.rateLimited, 0);
  });

  test("a request the endpoint refuses lands in the error file with its HTTP error, error: null", async () => {
    const b = await settle((await createFrom([inputLine("ok"), inputLine("bad", { body: { model: MODEL, messages: [] } })].join("\n"))).id);
    assert.deepEqual(b.request_counts, { total: 2, completed: 1, failed: 1 });
    const [line] = (await (await openai.files.content(b.error_file_id!)).text()).trim().split("\n");
    const parsed = JSON.parse(line!) as { custom_id: string; response: { status_code: number; body: { error: { param: string } } }; error: unknown };
    assert.equal(parsed.custom_id, "bad");
    assert.equal(parsed.response.status_code, 400);
    assert.equal(parsed.response.body.error.param, "messages");
    assert.equal(parsed.error, null);
  });

  test("phaseMs is read at every look: a held batch moves on when the knob changes", async () => {
    sim.setBatchKnobs({ phaseMs: 60_000 });
    const created = await createFrom(inputLine("a"));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await openai.batches.retrieve(created.id)).status, "validating");
    sim.setBatchKnobs({ phaseMs: 0 });
    assert.equal((await openai.batches.retrieve(created.id)).status, "completed");
  });

  test("token limit in `fail` mode: the batch is created, then fails with token_limit_exceeded", async () => {
    sim.setBatchKnobs({ phaseMs: 5, enqueuedTokenLimit: { "*": 10 }, tokenLimitMode: "fail" });
    const b = await settle((await createFrom(inputLine("a"))).id);
    assert.equal(b.status, "failed");
    assert.equal(b.errors?.data?.[0]?.code, "token_limit_exceeded");
    assert.match(b.errors?.data?.[0]?.message ?? "", /Enqueued token limit reached for gpt-4o-mini/);
  });

  test("maxOpenBatches: one more open batch is a 429", async () => {
    sim.setBatchKnobs({ phaseMs: 60_000, maxOpenBatches: 1 });
    await createFrom(inputLine("a"));
    await assert.rejects(createFrom(inputLine("b")), (e: unknown) => e instanceof OpenAI.RateLimitError);
    assert.equal(sim.batchStats().openai.rejected, 1);
  });

  test("control route: GET /_sim/batch shows knobs, stats and enqueued tokens; POST replaces knobs", async () => {
    sim.setBatchKnobs({ phaseMs: 60_000, enqueuedTokenLimit: { "*": 1_000_000 } });
    await createFrom(inputLine("a"));
    const snap = (await (await fetch(`${sim.url}/_sim/batch`)).json()) as { knobs: Record<string, unknown>; enqueuedTokens: { openai: Record<string, number> }; openBatches: { openai: number } };
    assert.equal(snap.knobs.phaseMs, 60_000);
    assert.ok((snap.enqueuedTokens.openai[MODEL] ?? 0) > 100);
    assert.ok(snap.openBatches.openai >= 1);
    const bad = await fetch(`${sim.url}/_sim/batch`, { method: "POST", body: JSON.stringify({ expireFraction: 2 }) });
    assert.equal(bad.status, 400);
    const unknown = await fetch(`${sim.url}/_sim/batch`, { method: "POST", body: JSON.stringify({ nope: 1 }) });
    assert.equal(unknown.status, 400);
    const ok = await fetch(`${sim.url}/_sim/batch`, { method: "POST", body: JSON.stringify({ phaseMs: 1, failAllFraction: 0.5 }) });
    assert.equal(ok.status, 200);
    assert.deepEqual(sim.getBatchKnobs(), { phaseMs: 1, failAllFraction: 0.5 });
    await fetch(`${sim.url}/_sim/reset`, { method: "POST" });
    assert.equal(sim.batchStats().openai.created, 0);
  });

  test("anthropic: create limits from the knobs (count 400, bytes 413); results before the end are refused", async () => {
    const params = { model: "claude-haiku-4-5", max_tokens: 64, messages: [{ role: "user" as const, content: "hi" }] };
    sim.setBatchKnobs({ phaseMs: 60_000, anthropicMaxRequests: 2 });
    const reqs = ["a", "b", "c"].map((custom_id) => ({ custom_id, params }));
    await assert.rejects(anthropic.messages.batches.create({ requests: reqs }), Anthropic.BadRequestError);
    sim.setBatchKnobs({ phaseMs: 60_000, anthropicMaxBytes: 200 });
    await assert.rejects(anthropic.messages.batches.create({ requests: reqs }), (e: unknown) => e instanceof Anthropic.APIError && e.status === 413);
    sim.setBatchKnobs({ phaseMs: 60_000 });
    const b = await anthropic.messages.batches.create({ requests: reqs });
    const res = await fetch(`${sim.url}/v1/messages/batches/${b.id}/results`, { headers: { "x-api-key": "x", "anthropic-version": "2023-06-01" } });
    assert.equal(res.status, 400);
    await assert.rejects(anthropic.messages.batches.delete(b.id), Anthropic.BadRequestError);
    const noKey = await fetch(`${sim.url}/v1/messages/batches/${b.id}`, { headers: { "anthropic-version": "2023-06-01" } });
    assert.equal(noKey.status, 401);
  });

  test("state: outcomes drawn from the knobs; shuffles never keep the input order", () => {
    const s = new BatchState({ seed: 1, expireFraction: 1, expiredDoneFraction: 0.3 });
    assert.deepEqual(s.drawOutcome(), { outcome: "expire", doneFraction: 0.3 });
    s.setKnobs({ seed: 1, failAllFraction: 1 });
    assert.equal(s.drawOutcome().outcome, "fail_all");
    s.setKnobs({});
    assert.deepEqual(s.drawOutcome(), { outcome: "normal", doneFraction: 1 });
    assert.throws(() => s.setKnobs({ requestErrorRate: -1 }));
    const rng = createRng(5);
    for (let n = 2; n < 40; n++) {
      const input = Array.from({ length: n }, (_, i) => i);
      for (let k = 0; k < 20; k++) assert.notDeepEqual(shuffled(input, rng), input);
    }
  });
});
