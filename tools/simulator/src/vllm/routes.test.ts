/** The real openai SDK against the simulated vLLM server under /vllm. */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { OUTPUT_SCHEMA_NAME, validateResults } from "@sieve/shared/tasks/output";
import { countChatTokens } from "@sieve/shared/tokens";
import { startSimulator, type Simulator } from "../server.js";
import { assertSchemaValid, CLASSIFY, longClassifyParams, makeItems, sieveCall } from "../testSupport.js";
import { DEFAULT_VLLM_MODEL } from "./engine.js";

/** One sample of a Prometheus text exposition, by metric name and (optional) label filter. */
function sample(text: string, name: string, labelFilter = ""): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labelFilter));
  assert.ok(line, `metric ${name} ${labelFilter} present`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("vLLM OpenAI-compatible server (real openai SDK at /vllm/v1)", () => {
  let sim: Simulator;
  let client: OpenAI;
  before(async () => {
    sim = await startSimulator({ vllm: { maxNumSeqs: 1 } });
    client = new OpenAI({ baseURL: `${sim.url}/vllm/v1`, apiKey: "EMPTY", maxRetries: 0 });
  });
  after(() => sim.close());
  beforeEach(() => {
    sim.setFaults({});
    sim.resetStats();
    sim.clearPromptCaches();
  });

  const metrics = async () => (await fetch(`${sim.url}/vllm/metrics`)).text();

  function sieveRequest(extra: Record<string, unknown>, n = 4, params = CLASSIFY, prefix = "text") {
    const call = sieveCall(params, makeItems(n, prefix));
    const messages = [
      { role: "system" as const, content: call.system },
      { role: "user" as const, content: call.user },
    ];
    const body = { model: DEFAULT_VLLM_MODEL, messages, ...extra } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;
    return { call, messages, request: client.chat.completions.create(body) };
  }

  test("health, version and the served model", async () => {
    const health = await fetch(`${sim.url}/vllm/health`);
    assert.equal(health.status, 200);
    assert.equal(health.headers.get("x-sieve-simulator"), "1");
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), [DEFAULT_VLLM_MODEL]);
  });

  test("structured output via response_format json_schema and via structured_outputs.json", async () => {
    for (const extra of [
      { response_format: { type: "json_schema", json_schema: { name: OUTPUT_SCHEMA_NAME, schema: null, strict: true } } },
      { structured_outputs: { json: null } },
    ]) {
      const call = sieveCall(CLASSIFY, makeItems(4));
      // Put this call's schema where the variant carries it.
      const body = JSON.parse(JSON.stringify(extra).replace("null", JSON.stringify(call.schema)));
      const { request, messages } = sieveRequest(body);
      const c = await request;
      const answer = JSON.parse(c.choices[0]!.message.content ?? "");
      assertSchemaValid(call.schema, answer);
      assert.equal(validateResults(CLASSIFY, call.ids, answer).ok.size, 4);
      assert.equal(c.usage?.prompt_tokens, countChatTokens(messages));
    }
  });

  test("the removed guided_json field is rejected with a 400 that names the replacement", async () => {
    const call = sieveCall(CLASSIFY, makeItems(2));
    await assert.rejects(sieveRequest({ guided_json: call.schema }).request, (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.status, 400);
      assert.match(e.message, /guided_json.*removed in vLLM v0\.12\.0.*structured_outputs/s);
      return true;
    });
  });

  test("legacyGuided: ignore imitates real vLLM: 200 with unconstrained (non-JSON) text", async () => {
    const lax = await startSimulator({ vllm: { legacyGuided: "ignore" } });
    try {
      const c = await new OpenAI({ baseURL: `${lax.url}/vllm/v1`, apiKey: "EMPTY", maxRetries: 0 }).chat.completions.create({
        model: DEFAULT_VLLM_MODEL,
        messages: [{ role: "user", content: "hi" }],
        guided_json: { type: "object" },
      } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
      assert.throws(() => JSON.parse(c.choices[0]!.message.content ?? ""));
    } finally {
      await lax.close();
    }
  });

  test("a model that is not served is a 404", async () => {
    await assert.rejects(sieveRequest({ model: "gpt-4o-mini" }).request, (e: unknown) => e instanceof OpenAI.NotFoundError);
  });

  test("/metrics: prefix-cache counters, TTFT histogram and running/waiting gauges from real traffic", async () => {
    const params = longClassifyParams();
    const a = sieveRequest({}, 3, params);
    const first = await a.request;
    const b = sieveRequest({}, 3, params, "other");
    const second = await b.request;
    const cached = second.usage?.prompt_tokens_details?.cached_tokens ?? 0;
    assert.ok(cached > 1000 && cached % 16 === 0, `whole 16-token blocks of the system prompt are hits (${cached})`);
    let text = await metrics();
    assert.equal(sample(text, "vllm:prefix_cache_queries_total"), first.usage!.prompt_tokens + second.usage!.prompt_tokens);
    assert.equal(sample(text, "vllm:prefix_cache_hits_total"), cached);
    assert.equal(sample(text, "vllm:time_to_first_token_seconds_count"), 2);
    assert.equal(sample(text, "vllm:time_to_first_token_seconds_bucket", 'le="+Inf"'), 2);
    assert.equal(sample(text, "vllm:num_requests_running"), 0);
    assert.equal(sample(text, "vllm:kv_cache_usage_perc"), 0);

    // With --max-num-seqs 1, a second concurrent request waits.
    sim.setFaults({ latencyMs: 300 });
    const slow = [sieveRequest({}).request, sieveRequest({}).request];
    await new Promise((r) => setTimeout(r, 120));
    text = await metrics();
    assert.equal(sample(text, "vllm:num_requests_running"), 1);
    assert.equal(sample(text, "vllm:num_requests_waiting"), 1);
    assert.ok(sample(text, "vllm:kv_cache_usage_perc") > 0);
    await Promise.all(slow);
    text = await metrics();
    assert.equal(sample(text, "vllm:num_requests_running"), 0);
    assert.equal(sample(text, "vllm:num_requests_waiting"), 0);
    assert.ok(sample(text, "vllm:time_to_first_token_seconds_sum") >= 0.3);
  });

  test("faults apply to vLLM too: 500 in vLLM's error shape", async () => {
    sim.setFaults({ rate5xx: 1 });
    await assert.rejects(sieveRequest({}).request, (e: unknown) => {
      assert.ok(e instanceof OpenAI.InternalServerError);
      assert.equal((e.error as { type: string }).type, "InternalServerError");
      return true;
    });
  });
});
