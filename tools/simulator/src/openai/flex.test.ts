/** OpenAI flex processing in the simulator, through the real openai SDK. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startSimulator, type Simulator } from "../server.js";
import { CLASSIFY, makeItems, sieveCall } from "../testSupport.js";

let sim: Simulator;
let client: OpenAI;
before(async () => {
  sim = await startSimulator();
  client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: "sk-test", maxRetries: 0 });
});
after(() => sim.close());

function ask(tier?: "flex" | "auto") {
  const c = sieveCall(CLASSIFY, makeItems(3));
  return client.chat.completions.create({
    model: "gpt-5-mini",
    messages: [
      { role: "system", content: c.system },
      { role: "user", content: c.user },
    ],
    ...(tier ? { service_tier: tier } : {}),
  });
}

test("service_tier flex is served and reported as flex; auto is served as default", async () => {
  sim.setFaults({});
  assert.equal((await ask("flex")).service_tier, "flex");
  assert.equal((await ask("auto")).service_tier, "default");
  assert.equal((await ask()).service_tier, "default");
});

test("flexRate429: flex requests get 429 resource unavailable; default-tier requests never do", async () => {
  sim.setFaults({ flexRate429: 1, seed: 7 });
  await assert.rejects(ask("flex"), (e: unknown) => {
    assert.ok(e instanceof OpenAI.RateLimitError);
    assert.equal(e.code, "resource_unavailable");
    assert.match(e.message, /Resource unavailable/);
    return true;
  });
  assert.equal((await ask()).service_tier, "default");
  sim.setFaults({});
});

test("flexLatencyMs slows flex requests only", async () => {
  sim.setFaults({ flexLatencyMs: 300 });
  const t0 = performance.now();
  await ask("flex");
  const flexMs = performance.now() - t0;
  const t1 = performance.now();
  await ask();
  const defMs = performance.now() - t1;
  assert.ok(flexMs >= 290, `flex took ${flexMs} ms`);
  assert.ok(defMs < flexMs, `default ${defMs} ms < flex ${flexMs} ms`);
  sim.setFaults({});
});
