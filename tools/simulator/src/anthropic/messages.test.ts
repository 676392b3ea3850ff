/** The real @anthropic-ai/sdk against the simulator's Anthropic routes. */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { OUTPUT_SCHEMA_NAME, validateResults } from "@sieve/shared/tasks/output";
import type { TaskParams } from "@sieve/shared/tasks/params";
import { countChatTokens, countTokens } from "@sieve/shared/tokens";
import { startSimulator, type Simulator } from "../server.js";
import { assertSchemaValid, CLASSIFY, longClassifyParams, makeItems, sieveCall } from "../testSupport.js";

const MODEL = "claude-haiku-4-5";

describe("Anthropic messages (real @anthropic-ai/sdk)", () => {
  let sim: Simulator;
  let client: Anthropic;
  before(async () => {
    sim = await startSimulator();
    client = new Anthropic({ baseURL: sim.url, apiKey: "x", maxRetries: 0 });
  });
  after(() => sim.close());
  beforeEach(() => {
    sim.setFaults({});
    sim.resetStats();
    sim.clearPromptCaches();
  });

  /** What Sieve sends: a byte-stable forced tool (no pinned ids), a cached system block, the items. */
  function sieveMessage(params: TaskParams, n: number, prefix = "text") {
    const call = sieveCall(params, makeItems(n, prefix), false);
    const tool = { name: OUTPUT_SCHEMA_NAME, description: "Record the results.", input_schema: call.schema as Anthropic.Tool.InputSchema };
    const request = client.messages.create({
      model: MODEL,
      max_tokens: 4096,
      system: [{ type: "text", text: call.system, cache_control: { type: "ephemeral" } }],
      tools: [tool],
      tool_choice: { type: "tool", name: OUTPUT_SCHEMA_NAME },
      messages: [{ role: "user", content: call.user }],
    });
    const expectedInput =
      countTokens(JSON.stringify(tool)) +
      countChatTokens([
        { role: "system", content: call.system },
        { role: "user", content: call.user },
      ]);
    return { call, tool, request, expectedInput };
  }

  const toolInput = (m: Anthropic.Message) => {
    const block = m.content[0]!;
    assert.equal(block.type, "tool_use");
    return (block as Anthropic.ToolUseBlock).input;
  };

  test("a forced tool is answered with one tool_use block: schema-valid, one entry per id", async () => {
    const { call, request, expectedInput } = sieveMessage(CLASSIFY, 5);
    const { data, response } = await request.withResponse();
    assert.equal(response.headers.get("x-sieve-simulator"), "1");
    assert.match(response.headers.get("request-id") ?? "", /^req_/);
    assert.equal(data.type, "message");
    assert.equal(data.role, "assistant");
    assert.equal(data.stop_reason, "tool_use");
    assert.equal(data.content.length, 1);
    const block = data.content[0] as Anthropic.ToolUseBlock;
    assert.equal(block.name, OUTPUT_SCHEMA_NAME);
    assert.match(block.id, /^toolu_/);
    assertSchemaValid(call.schema, block.input);
    const v = validateResults(CLASSIFY, call.ids, block.input);
    assert.equal(v.ok.size, 5);
    // A short prompt is below Anthropic's minimum cacheable length: nothing cached.
    const u = data.usage;
    assert.equal(u.cache_creation_input_tokens, 0);
    assert.equal(u.cache_read_input_tokens, 0);
    assert.equal(u.input_tokens, expectedInput);
    assert.equal(u.output_tokens, countTokens(JSON.stringify(block.input)));
  });

  test("prompt caching: first call writes the cached prefix, the next reads it; input_tokens excludes both", async () => {
    const params = longClassifyParams();
    const first = sieveMessage(params, 3);
    const a = (await first.request).usage;
    const prefix = countTokens(JSON.stringify(first.tool)) + 3 + 4 + countTokens(first.call.system);
    assert.equal(a.cache_creation_input_tokens, prefix);
    assert.equal(a.cache_read_input_tokens, 0);
    assert.equal(a.input_tokens, first.expectedInput - prefix);
    assert.equal(a.cache_creation?.ephemeral_5m_input_tokens, prefix);

    const second = sieveMessage(params, 4, "other");
    const b = (await second.request).usage;
    assert.equal(b.cache_read_input_tokens, prefix);
    assert.equal(b.cache_creation_input_tokens, 0);
    assert.equal(b.input_tokens + (b.cache_read_input_tokens ?? 0), second.expectedInput);

    const stats = sim.stats();
    assert.equal(stats.tokensByProvider.anthropic.cached, prefix);
    assert.equal(stats.tokensByProvider.anthropic.cacheCreation, prefix);
    assert.equal(stats.tokens.prompt, first.expectedInput + second.expectedInput);
  });

  test("401 without x-api-key, in Anthropic's error shape", async () => {
    const res = await fetch(`${sim.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: "{}",
    });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, "error");
    assert.equal(body.error.type, "authentication_error");
    // The classic x-api-key header (older SDKs, curl) is accepted as well as the SDK's Bearer key.
    const ok = await fetch(`${sim.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "k" },
      body: JSON.stringify({ model: MODEL, max_tokens: 10, messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { type: string }).type, "message");
  });

  test("429 with retry-after; 529 overloaded", async () => {
    sim.setFaults({ rate429: 1, retryAfterS: 3 });
    await assert.rejects(sieveMessage(CLASSIFY, 2).request, (e: unknown) => {
      assert.ok(e instanceof Anthropic.RateLimitError);
      assert.equal(e.status, 429);
      assert.equal(e.headers?.get("retry-after"), "3");
      assert.equal((e.error as { error: { type: string } }).error.type, "rate_limit_error");
      return true;
    });
    sim.setFaults({ rate5xx: 1 });
    await assert.rejects(sieveMessage(CLASSIFY, 2).request, (e: unknown) => {
      assert.ok(e instanceof Anthropic.APIError);
      assert.equal(e.status, 529);
      assert.equal((e.error as { error: { type: string } }).error.type, "overloaded_error");
      return true;
    });
    assert.deepEqual([sim.stats().injected.rateLimited, sim.stats().injected.serverErrors], [1, 1]);
  });

  test("truncation fault: stop_reason max_tokens and a text block of cut JSON", async () => {
    sim.setFaults({ rateTruncated: 1 });
    const m = await sieveMessage(CLASSIFY, 5).request;
    assert.equal(m.stop_reason, "max_tokens");
    const block = m.content[0]!;
    assert.equal(block.type, "text");
    assert.throws(() => JSON.parse((block as Anthropic.TextBlock).text));
  });

  test("drop fault removes exactly one entry; a poison item is never answered", async () => {
    sim.setFaults({ rateDropItem: 1 });
    const d = sieveMessage(CLASSIFY, 5);
    const v = validateResults(CLASSIFY, d.call.ids, toolInput(await d.request));
    assert.equal(v.ok.size, 4);
    assert.equal(v.failed.size, 1);

    sim.setFaults({});
    const items = makeItems(4);
    items[0] = { id: "i1", text: "SIM_POISON here" };
    const call = sieveCall(CLASSIFY, items, false);
    const m = await client.messages.create({
      model: MODEL,
      max_tokens: 1024,
      system: call.system,
      tools: [{ name: OUTPUT_SCHEMA_NAME, input_schema: call.schema as Anthropic.Tool.InputSchema }],
      tool_choice: { type: "tool", name: OUTPUT_SCHEMA_NAME },
      messages: [{ role: "user", content: call.user }],
    });
    const p = validateResults(CLASSIFY, call.ids, toolInput(m));
    assert.deepEqual([...p.ok.keys()], ["i2", "i3", "i4"]);
    assert.equal(p.failed.get("i1")?.reason, "missing");
  });

  test("a prefilled assistant turn is continued as text", async () => {
    const call = sieveCall(CLASSIFY, makeItems(2), false);
    const m = await client.messages.create({
      model: MODEL,
      max_tokens: 1024,
      system: call.system,
      messages: [
        { role: "user", content: call.user },
        { role: "assistant", content: "{" },
      ],
    });
    assert.equal(m.stop_reason, "end_turn");
    const text = (m.content[0] as Anthropic.TextBlock).text;
    assert.equal(validateResults(CLASSIFY, call.ids, JSON.parse(`{${text}`)).ok.size, 2);
  });

  test("invalid requests are 400 invalid_request_error", async () => {
    await assert.rejects(
      client.messages.create({
        model: MODEL,
        max_tokens: 100,
        tools: [{ name: "a", input_schema: { type: "object" } }],
        tool_choice: { type: "tool", name: "missing" },
        messages: [{ role: "user", content: "hi" }],
      }),
      (e: unknown) => e instanceof Anthropic.BadRequestError,
    );
  });

  test("GET /v1/models answers in Anthropic's shape to the Anthropic SDK", async () => {
    const page = await client.models.list();
    assert.ok(page.data.some((m) => m.id === MODEL));
  });
});
