import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "./server.js";
import { sendJson } from "./http.js";
import type { SimulatorStats } from "./stats.js";

describe("simulator server and control API", () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({
      faults: { latencyMs: 0 },
      routes: [{ method: "GET", path: /^\/v1\/things\/(?<id>[^/]+)$/, name: "GET /v1/things/:id", dialect: "openai", handler: (ctx) => sendJson(ctx.res, 200, { id: ctx.params.id }) }],
    });
  });
  after(() => sim.close());

  const post = (path: string, body: unknown) =>
    fetch(`${sim.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  test("url is http://127.0.0.1:PORT without a trailing slash", () => {
    assert.match(sim.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test("GET /_sim says it is a test tool; every response carries x-sieve-simulator", async () => {
    const info = await fetch(`${sim.url}/_sim`);
    assert.equal(info.headers.get("x-sieve-simulator"), "1");
    const body = (await info.json()) as { testTool: boolean; routes: string[] };
    assert.equal(body.testTool, true);
    assert.ok(body.routes.includes("POST /v1/messages"));
    const missing = await fetch(`${sim.url}/nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("x-sieve-simulator"), "1");
    assert.equal(((await missing.json()) as { error: { type: string } }).error.type, "invalid_request_error");
  });

  test("POST /_sim/faults replaces the faults (validated), GET /_sim/faults reads them", async () => {
    let res = await post("/_sim/faults", { rate429: 0.5, retryAfterS: 2 });
    assert.equal(res.status, 200);
    assert.deepEqual(sim.getFaults(), { rate429: 0.5, retryAfterS: 2 });
    res = await post("/_sim/faults", { rateDropItem: 1 });
    assert.deepEqual(((await (await fetch(`${sim.url}/_sim/faults`)).json()) as { faults: unknown }).faults, { rateDropItem: 1 });
    res = await post("/_sim/faults", { rate429: 3 });
    assert.equal(res.status, 400);
    const err = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(err.error.code, "invalid_faults");
    assert.match(err.error.message, /rate429/);
    res = await post("/_sim/faults", { rateOops: 1 });
    assert.equal(res.status, 400, "unknown knobs are rejected, not ignored");
    assert.throws(() => sim.setFaults({ rate5xx: -1 }));
    sim.setFaults({});
  });

  test("GET /_sim/stats and POST /_sim/reset", async () => {
    await fetch(`${sim.url}/v1/things/42`);
    let stats = (await (await fetch(`${sim.url}/_sim/stats`)).json()) as SimulatorStats;
    assert.equal(stats.requests["GET /v1/things/:id"], 1);
    assert.equal(stats.statuses["200"]! >= 1, true);
    assert.equal((await post("/_sim/reset", {})).status, 200);
    stats = sim.stats();
    assert.deepEqual(stats.requests, {}, "the reset request itself was counted before the reset");
    assert.equal(stats.itemsSeen, 0);
  });

  test("extra routes are matched, with named params", async () => {
    const res = await fetch(`${sim.url}/v1/things/abc`);
    assert.deepEqual(await res.json(), { id: "abc" });
  });

  test("close() returns promptly even while a timeout-faulted request is held open", async () => {
    const other = await startSimulator({ faults: { rateTimeout: 1 } });
    const pending = fetch(`${other.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer k", "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    }).then(
      () => "answered",
      () => "dropped",
    );
    while (other.stats().injected.timeouts === 0) await new Promise((r) => setTimeout(r, 5));
    const t0 = Date.now();
    await other.close();
    // close() must not wait for the request that will never be answered (that would be forever).
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(await pending, "dropped");
  });
});
