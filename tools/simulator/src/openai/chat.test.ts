/** The real openai SDK against the simulator's OpenAI routes. */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { OUTPUT_SCHEMA_NAME, parseModelJson, validateResults, type JsonSchema } from "@sieve/shared/tasks/output";
import type { TaskParams } from "@sieve/shared/tasks/params";
import { countChatTokens, countTokens } from "@sieve/shared/tokens";
import { startSimulator, type Simulator } from "../server.js";
import { assertSchemaValid, CLASSIFY, longClassifyParams, makeItems, sieveCall } from "../testSupport.js";

describe("OpenAI chat completions (real openai SDK)", () => {
  let sim: Simulator;
  let client: OpenAI;
  before(async () => {
    sim = await startSimulator();
    client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: "sk-test", maxRetries: 0 });
  });
  after(() => sim.close());
  beforeEach(() => {
    sim.setFaults({});
    sim.resetStats();
    sim.clearPromptCaches();
  });

  function create(params: TaskParams, n: number, extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming> = {}, prefix = "text") {
    const call = sieveCall(params, makeItems(n, prefix));
    const messages = [
      { role: "system" as const, content: call.system },
      { role: "user" as const, content: call.user },
    ];
    const request = client.chat.completions.create({
      model: "gpt-4o-mini",
      messages,
      response_format: { type: "json_schema", json_schema: { name: OUTPUT_SCHEMA_NAME, schema: call.schema, strict: true } },
      ...extra,
    });
    return { call, messages, request };
  }

  const results = (c: OpenAI.ChatCompletion) => validateResultsOf(c);
  function validateResultsOf(c: OpenAI.ChatCompletion, params: TaskParams = CLASSIFY, ids = makeItems(5).map((i) => i.id)) {
    return validateResults(params, ids, parseModelJson(c.choices[0]!.message.content ?? ""));
  }

  test("answers a Sieve call: schema-valid, one entry per id, exact usage, simulator header", async () => {
    const { call, messages, request } = create(CLASSIFY, 5);
    const { data, response } = await request.withResponse();
    assert.equal(response.headers.get("x-sieve-simulator"), "1");
    assert.match(response.headers.get("x-request-id") ?? "", /^req_/);
    assert.equal(data.object, "chat.completion");
    assert.match(data.id, /^chatcmpl-/);
    assert.equal(data.model, "gpt-4o-mini");
    assert.equal(data.choices[0]!.finish_reason, "stop");
    const content = data.choices[0]!.message.content ?? "";
    assertSchemaValid(call.schema, JSON.parse(content));
    const v = validateResults(CLASSIFY, call.ids, JSON.parse(content));
    assert.equal(v.ok.size, 5);
    assert.equal(v.failed.size, 0);
    assert.equal(data.usage?.prompt_tokens, countChatTokens(messages));
    assert.equal(data.usage?.completion_tokens, countTokens(content));
    assert.equal(data.usage?.total_tokens, data.usage!.prompt_tokens + data.usage!.completion_tokens);
    assert.equal(data.usage?.prompt_tokens_details?.cached_tokens, 0);
    const stats = sim.stats();
    assert.equal(stats.requests["POST /v1/chat/completions"], 1);
    assert.equal(stats.itemsSeen, 5);
    assert.equal(stats.tokens.prompt, countChatTokens(messages));
    assert.equal(stats.tokensByProvider.openai.completion, countTokens(content));
  });

  test("the same text gets the same label in every call", async () => {
    const a = await create(CLASSIFY, 5).request;
    const b = await create(CLASSIFY, 5).request;
    assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
  });

  test("translate: every item translated into the target language", async () => {
    const params: TaskParams = { task: "translate", targetLanguage: "fr" };
    const { call, request } = create(params, 3);
    const c = await request;
    const answer = JSON.parse(c.choices[0]!.message.content ?? "");
    assertSchemaValid(call.schema, answer);
    assert.equal(answer.results[0].translation, "[sim→fr] text number 1: something happened today.");
    assert.equal(validateResults(params, call.ids, answer).ok.size, 3);
  });

  test("prompt caching: a repeated system prompt >= 1024 tokens is cached in 128-token steps", async () => {
    const params = longClassifyParams();
    const first = await create(params, 3).request;
    assert.equal(first.usage?.prompt_tokens_details?.cached_tokens, 0);
    const { call, request } = create(params, 4, {}, "other");
    const second = await request;
    const prefix = 4 + countTokens(call.system);
    assert.equal(second.usage?.prompt_tokens_details?.cached_tokens, Math.floor(prefix / 128) * 128);
    assert.equal(sim.stats().tokens.cached, Math.floor(prefix / 128) * 128);
    // Another model has its own cache.
    const other = await create(params, 4, { model: "gpt-4.1-mini" }, "other").request;
    assert.equal(other.usage?.prompt_tokens_details?.cached_tokens, 0);
    // A short system prompt is never cached.
    await create(CLASSIFY, 3).request;
    const short = await create(CLASSIFY, 3, {}, "again").request;
    assert.equal(short.usage?.prompt_tokens_details?.cached_tokens, 0);
  });

  test("401 without a bearer key, in OpenAI's error shape", async () => {
    const res = await fetch(`${sim.url}/v1/chat/completions`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("x-sieve-simulator"), "1");
    const body = (await res.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
    assert.equal(body.error.type, "invalid_request_error");
  });

  test("429 carries retry-after; the SDK surfaces status 429", async () => {
    sim.setFaults({ rate429: 1, retryAfterS: 7 });
    await assert.rejects(create(CLASSIFY, 2).request, (e: unknown) => {
      assert.ok(e instanceof OpenAI.RateLimitError);
      assert.equal(e.status, 429);
      assert.equal(e.headers?.get("retry-after"), "7");
      assert.equal(e.code, "rate_limit_exceeded");
      return true;
    });
    assert.equal(sim.stats().injected.rateLimited, 1);
    assert.equal(sim.stats().statuses["429"], 1);
  });

  test("5xx fault: a 500 the SDK reports as InternalServerError", async () => {
    sim.setFaults({ rate5xx: 1 });
    await assert.rejects(create(CLASSIFY, 2).request, (e: unknown) => e instanceof OpenAI.InternalServerError && e.status === 500);
    assert.equal(sim.stats().injected.serverErrors, 1);
  });

  test("timeout fault: never answers; the SDK's own timeout fires", async () => {
    sim.setFaults({ rateTimeout: 1 });
    const quick = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: "sk-test", maxRetries: 0, timeout: 200 });
    await assert.rejects(
      quick.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
      (e: unknown) => e instanceof OpenAI.APIConnectionTimeoutError,
    );
    assert.ok(sim.stats().injected.timeouts >= 1);
  });

  test("truncation fault: finish_reason length and JSON that does not parse", async () => {
    sim.setFaults({ rateTruncated: 1 });
    const c = await create(CLASSIFY, 5).request;
    assert.equal(c.choices[0]!.finish_reason, "length");
    assert.throws(() => JSON.parse(c.choices[0]!.message.content ?? ""));
    assert.equal(c.usage?.completion_tokens, countTokens(c.choices[0]!.message.content ?? ""));
    assert.equal(sim.stats().injected.truncated, 1);
  });

  test("drop fault removes exactly one entry", async () => {
    sim.setFaults({ rateDropItem: 1 });
    const v = results(await create(CLASSIFY, 5).request);
    assert.equal(v.ok.size, 4);
    assert.deepEqual([...v.failed.values()].map((f) => f.reason), ["missing"]);
    assert.equal(sim.stats().injected.droppedItems, 1);
  });

  test("duplicate fault repeats exactly one entry", async () => {
    sim.setFaults({ rateDuplicateItem: 1 });
    const v = results(await create(CLASSIFY, 5).request);
    assert.equal(v.ok.size, 4);
    assert.deepEqual([...v.failed.values()].map((f) => f.reason), ["duplicated"]);
  });

  test("bad-value fault: one label outside the enum / one empty translation", async () => {
    sim.setFaults({ rateBadValue: 1 });
    const v = results(await create(CLASSIFY, 5).request);
    assert.deepEqual([...v.failed.values()].map((f) => f.reason), ["invalid_value"]);
    const tr: TaskParams = { task: "translate", targetLanguage: "de" };
    const c = await create(tr, 5).request;
    const vt = validateResultsOf(c, tr);
    assert.deepEqual([...vt.failed.values()].map((f) => f.message), ["translation is empty"]);
    assert.equal(sim.stats().injected.badValues, 2);
  });

  test("a poison item is never answered; its neighbours are", async () => {
    const items = makeItems(5);
    items[2] = { id: "i3", text: "this one is SIM_POISON" };
    const call = sieveCall(CLASSIFY, items);
    for (let attempt = 0; attempt < 3; attempt++) {
      const c = await client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [
          { role: "system", content: call.system },
          { role: "user", content: call.user },
        ],
        response_format: { type: "json_schema", json_schema: { name: OUTPUT_SCHEMA_NAME, schema: call.schema, strict: true } },
      });
      const v = validateResults(CLASSIFY, call.ids, JSON.parse(c.choices[0]!.message.content ?? ""));
      assert.deepEqual([...v.ok.keys()].sort(), ["i1", "i2", "i4", "i5"]);
      assert.equal(v.failed.get("i3")?.reason, "missing");
    }
    assert.equal(sim.stats().injected.poisonedItems, 3);
  });

  test("seeded faults are reproducible", async () => {
    const run = async () => {
      sim.setFaults({ rateDropItem: 0.5, rateBadValue: 0.3, seed: 42 });
      const out: number[] = [];
      for (let i = 0; i < 8; i++) out.push(results(await create(CLASSIFY, 5).request).ok.size);
      return out;
    };
    const a = await run();
    assert.deepEqual(await run(), a);
    assert.ok(new Set(a).size > 1, "the faults fired on some calls and not on others");
  });

  test("the request's own max_tokens cuts the answer (finish_reason length)", async () => {
    const c = await create(CLASSIFY, 10, { max_completion_tokens: 20 }).request;
    assert.equal(c.choices[0]!.finish_reason, "length");
    assert.equal(c.usage?.completion_tokens, 20);
    assert.equal(sim.stats().maxTokensCut, 1);
  });

  test("stream: true and malformed response_format are 400s", async () => {
    await assert.rejects(
      client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "stream",
    );
    await assert.rejects(
      client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "hi" }],
        response_format: { type: "json_schema", json_schema: { name: "x" } as never },
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError,
    );
  });

  test("json_object and no response_format: Sieve prompts still get Sieve-shaped JSON; others plain text", async () => {
    const call = sieveCall(CLASSIFY, makeItems(3));
    const c = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: call.system },
        { role: "user", content: call.user },
      ],
      response_format: { type: "json_object" },
    });
    assert.equal(validateResults(CLASSIFY, call.ids, JSON.parse(c.choices[0]!.message.content ?? "")).ok.size, 3);
    const plain = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] });
    assert.match(plain.choices[0]!.message.content ?? "", /simulat/);
  });

  test("any JSON schema is filled, not only Sieve's", async () => {
    const schema: JsonSchema = {
      type: "object",
      properties: { sentiment: { type: "string", enum: ["pos", "neg"] }, score: { type: "number" } },
      required: ["sentiment", "score"],
      additionalProperties: false,
    };
    const c = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "rate this" }],
      response_format: { type: "json_schema", json_schema: { name: "rating", schema, strict: true } },
    });
    assertSchemaValid(schema, JSON.parse(c.choices[0]!.message.content ?? ""));
  });

  test("GET /v1/models lists models", async () => {
    const page = await client.models.list();
    assert.ok(page.data.some((m) => m.id === "gpt-4o-mini"));
  });
});
