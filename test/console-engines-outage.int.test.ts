/**
 * The console's GPU engine reports through a Redis outage (docs/console.md "GPU engines"), on a
 * redis-server of the test's own that is killed and started again (empty): the Lanes page keeps
 * answering 200 with the history it has and says why it is not fresh; neither the API nor the GPU
 * worker logs a line per sample (the DependencyMonitor logs the outage once); once Redis is back
 * the workers publish again and the page shows the engine healthy with a fresh sample.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger, parseEnv, providerEndpoints } from "@sieve/shared";
import { createTestDb, type TestDb } from "@sieve/shared/db/testing";
import { startSimulator, type Simulator } from "@sieve/simulator";
import { startApi, type ApiHandle } from "@sieve/producer/server";
import { startWorkers, type WorkersHandle } from "@sieve/workers";
import { OwnRedis } from "./support/own-services.js";

const AUTH = { authorization: `Basic ${Buffer.from("admin:outage-pw").toString("base64")}` };

describe("console GPU engines through a Redis outage", () => {
  let redis: OwnRedis;
  let db: TestDb;
  let engine: Simulator;
  let api: ApiHandle;
  let workers: WorkersHandle;
  let redisDown = false;
  const lines: Array<{ msg: string; [k: string]: unknown }> = [];

  before(async () => {
    redis = await OwnRedis.start();
    db = await createTestDb("sieve_engines_outage");
    engine = await startSimulator({ port: 0 });
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    const log = createLogger({ level: "info", destination: sink });
    const env = parseEnv({
      PORT: "0",
      HOST: "127.0.0.1",
      REDIS_URL: redis.url,
      DATABASE_URL: db.url,
      SIEVE_QUEUE_PREFIX: "engines-outage",
      VLLM_BASE_URL: `${engine.url}/vllm/v1`,
      VLLM_MODEL: "Qwen/Qwen2.5-7B-Instruct-AWQ",
      SIEVE_ROUTE_CLASSIFY: "vllm:Qwen/Qwen2.5-7B-Instruct-AWQ",
      SIEVE_ROUTE_TRANSLATE: "vllm:Qwen/Qwen2.5-7B-Instruct-AWQ",
      SIEVE_ROLE: "gpu",
      SIEVE_ADMIN_USER: "admin",
      SIEVE_ADMIN_PASSWORD: "outage-pw",
      SIEVE_SEMANTIC_CACHE: "off",
      SIEVE_CACHE_ENABLED: "false",
      SIEVE_GPU_POLL_MS: "200",
    });
    api = await startApi({ env, db: db.db, endpoints: providerEndpoints(env), log: log.child({ role: "api" }) });
    workers = await startWorkers({ env, db: db.db, endpoints: providerEndpoints(env), log: log.child({ role: "gpu" }), sweepEveryMs: 0 });
  });
  after(async () => {
    // Closing BullMQ workers waits for Redis: bring it back first if a failed assertion left it down.
    if (redisDown) await redis.start();
    await workers?.close();
    await api?.close();
    await engine?.close();
    await redis?.destroy();
    await db?.drop();
  });

  const lanes = async () => {
    const res = await fetch(`${api.url}/admin/lanes`, { headers: AUTH });
    const body = await res.text();
    const row = /<tr data-engine="vllm-0"[^>]*data-health="([^"]*)"[^>]*>([\s\S]*?)<\/tr>/.exec(body);
    return { status: res.status, health: row?.[1], text: row?.[2]?.replace(/<[^>]+>/g, " ") ?? "", source: /As reported by the GPU worker processes/.test(body) };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test("the page keeps its history and says why; one outage line per process, none per sample; fresh again after", async () => {
    const before = await lanes();
    assert.deepEqual([before.status, before.health, before.source], [200, "healthy", true]);

    await redis.kill();
    redisDown = true;
    // Three page loads more than 5 s apart: each one samples (and fails to read Redis).
    let during = before;
    for (let i = 0; i < 3; i++) {
      await sleep(5_500);
      during = await lanes();
      assert.equal(during.status, 200, "the Lanes page answers during the outage");
    }
    assert.match(during.text, /could not read the GPU workers&#39; reports/);
    const perSample = lines.filter((l) => /could not (read the GPU workers' engine reports|publish GPU lane stats)/.test(l.msg));
    assert.deepEqual(perSample, [], "no line per failed sample or publish");
    const down = lines.filter((l) => /^redis unreachable/.test(l.msg));
    assert.ok(down.length >= 1, "the outage is logged");
    assert.ok(down.length <= 2, `once per process (api, gpu): ${down.length} lines`);

    await redis.start();
    redisDown = false;
    let after = during;
    // Redis came back empty: until the worker's connection is back and it has published again, the
    // console may probe VLLM_BASE_URL itself (the same engine, the same history).
    for (let i = 0; i < 60 && !(after.health === "healthy" && after.source && !/could not read/.test(after.text)); i++) {
      await sleep(500);
      after = await lanes();
    }
    assert.equal(after.health, "healthy", after.text);
    assert.doesNotMatch(after.text, /could not read/);
    assert.ok(after.source, "from the GPU worker's report again");
  });
});
