/**
 * The console's "Lanes and engines" page over the GPU lane (docs/console.md "GPU engines"): two
 * GPU worker processes (in-process worker sets, each with its own pool and adaptive limiters)
 * serve two simulated vLLM engines; the page, read over HTTP with basic auth, lists both engines
 * with the limits the pools report (summed over the processes) and their history, shows an engine
 * that was killed as unhealthy, stops counting a worker process that stopped, and probes
 * VLLM_BASE_URL itself once no GPU worker reports.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { gpuEnginesKey, providerEndpoints, publishGpuEngines } from "@sieve/shared";
import { startSimulator, type Simulator } from "@sieve/simulator";
import { startWorkers, type WorkersHandle } from "@sieve/workers";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";
import { agNewsItems } from "./support/datasets.js";

const MODEL = "Qwen/Qwen2.5-7B-Instruct-AWQ";
const AUTH = { authorization: `Basic ${Buffer.from("admin:engines-pw").toString("base64")}` };

interface Row {
  id: string;
  url: string;
  health: string;
  limit: number;
  inFlight: number;
  processes: number;
  text: string;
}

interface Page {
  rows: Row[];
  history: Array<{ id: string; samples: Array<{ at: number; limit?: number; inFlight?: number }> }>;
}

async function lanes(h: Harness): Promise<Page> {
  const res = await fetch(`${h.api.url}/admin/lanes`, { headers: AUTH });
  assert.equal(res.status, 200);
  const body = await res.text();
  const rows: Row[] = [];
  for (const m of body.matchAll(/<tr data-engine="([^"]*)" data-url="([^"]*)" data-health="([^"]*)" data-limit="([^"]*)" data-in-flight="([^"]*)" data-processes="([^"]*)">([\s\S]*?)<\/tr>/g)) {
    rows.push({ id: m[1]!, url: m[2]!, health: m[3]!, limit: Number(m[4]), inFlight: Number(m[5]), processes: Number(m[6]), text: m[7]!.replace(/<[^>]+>/g, " ") });
  }
  const json = /<script type="application\/json" id="engines-data">([\s\S]*?)<\/script>/.exec(body);
  return { rows, history: json ? JSON.parse(json[1]!) : [] };
}

/** Reloads the page until `ok` holds (the console samples at most every 5 s on a page load). */
async function until(h: Harness, what: string, ok: (p: Page) => boolean, ms = 30_000): Promise<Page> {
  const deadline = Date.now() + ms;
  let p = await lanes(h);
  while (!ok(p)) {
    if (Date.now() > deadline) assert.fail(`${what} within ${ms} ms; last rows: ${JSON.stringify(p.rows)}`);
    await new Promise((r) => setTimeout(r, 500));
    p = await lanes(h);
  }
  return p;
}

describe("console: per-engine state of the GPU lane over several worker processes", () => {
  let h: Harness;
  let engines: Simulator[];
  let second: WorkersHandle | undefined;
  const closed = new Set<Simulator>();
  before(async () => {
    engines = await Promise.all([0, 1].map(() => startSimulator({ vllm: { perf: { timeScale: 20 }, kvCacheTokens: 6 * 1_000 } })));
    h = await startHarness({
      tenants: ["acme"],
      env: {
        SIEVE_ADMIN_USER: "admin",
        SIEVE_ADMIN_PASSWORD: "engines-pw",
        SIEVE_GPU_ENGINES: engines.map((e) => `${e.url}/vllm/v1`).join(","),
        SIEVE_ROUTE_CLASSIFY: `vllm:${MODEL}`,
        SIEVE_CLASSIFY_MAX_ITEMS: "5",
        SIEVE_CLASSIFY_MAX_WAIT_MS: "20",
        SIEVE_GPU_POLL_MS: "100",
        SIEVE_CALL_TIMEOUT_MS: "20000",
        SIEVE_CACHE_ENABLED: "false",
        SIEVE_MAX_ITEMS_PER_REQUEST: "2000",
      },
    });
    // A second GPU worker process: its own pool, limiters and report in Redis.
    second = await startWorkers({ env: h.env, db: h.db.db, endpoints: providerEndpoints(h.env), log: h.api.ctx.log, lockDurationMs: 5_000, sweepEveryMs: 0 });
  });
  after(async () => {
    await second?.close();
    await h?.close();
    await Promise.all((engines ?? []).filter((e) => !closed.has(e)).map((e) => e.close()));
  });

  const pools = () => [h.workers!.gpu!, second!.gpu!];
  const urls = () => engines.map((e) => `${e.url}/vllm/v1`);

  test("both engines are listed with the adaptive limits the pools report, summed over the processes, with their history", async () => {
    // Before any work: every limiter starts at 2, so each engine shows 2 + 2.
    const first = await until(h, "both engines reported by both processes", (p) => p.rows.length === 2 && p.rows.every((r) => r.processes === 2));
    assert.deepEqual(first.rows.map((r) => [r.url, r.health, r.limit]), urls().map((u) => [u, "healthy", 4]));

    const items = agNewsItems(600).map(({ id, text }) => ({ id, text: `${text} (engines)` }));
    const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
    assert.equal(res.status, 202, res.text);
    const job = await waitForJob(h, "acme", res.body.id, 120_000);
    assert.equal(job.status, "completed");

    // Idle now: the limits hold still, so the page must come to show exactly what the pools hold.
    const expected = () => [0, 1].map((i) => pools().reduce((a, p) => a + p.snapshot()[i]!.limit, 0));
    const grown = expected();
    assert.ok(Math.max(...pools().flatMap((p) => p.snapshot().map((s) => s.limit))) > 2, `the limiters moved from 2 (${JSON.stringify(pools().map((p) => p.snapshot()))})`);
    const page = await until(h, "the page shows the pools' limits", (p) => p.rows.length === 2 && p.rows.every((r, i) => r.limit === expected()[i]));
    assert.deepEqual(page.rows.map((r) => r.limit), grown);
    for (const [i, r] of page.rows.entries()) {
      assert.equal(r.url, urls()[i]);
      assert.equal(r.health, "healthy");
      assert.equal(r.processes, 2);
      assert.equal(r.inFlight, 0, "no call in flight once the job is done");
      // Each process's own limit, as its pool reports it (listed in process-id order).
      const shown = /(\d+(?: \+ \d+)+) in 2 processes/.exec(r.text)?.[1]?.split("+").map(Number);
      const byPool = pools().map((p) => p.snapshot()[i]!.limit);
      assert.deepEqual(shown?.sort((x, y) => x - y), byPool.sort((x, y) => x - y), r.text);
    }
    // Over time: the history holds the starting limit and the grown one, oldest first.
    for (const [i, e] of page.history.entries()) {
      const limits = e.samples.map((s) => s.limit);
      assert.equal(limits[0], 4, `${e.id} starts at 2 + 2`);
      assert.equal(limits[limits.length - 1], grown[i]);
      assert.ok(e.samples.every((s, k) => k === 0 || s.at > e.samples[k - 1]!.at));
    }
  });

  test("a killed engine shows unhealthy (drained in every process); the other stays healthy", async () => {
    await engines[1]!.close();
    closed.add(engines[1]!);
    const page = await until(h, "engine 1 unhealthy", (p) => p.rows[1]?.health === "unhealthy");
    assert.ok(pools().every((p) => p.snapshot()[1]!.health === "drained"), "both pools drained it");
    assert.match(page.rows[1]!.text, /drained/);
    assert.equal(page.rows[0]!.health, "healthy");
    assert.deepEqual(page.rows.map((r) => r.url), urls());
  });

  test("a worker process that stops is no longer counted; a dead process's stale report is ignored and removed", async () => {
    await second!.close();
    second = undefined;
    // What a SIGKILLed process leaves behind: its last report, 60 s old, naming an engine of its own.
    const redis = h.api.ctx.redis;
    const prefix = h.env.SIEVE_QUEUE_PREFIX;
    const ghost = { id: "vllm-0", url: "http://127.0.0.1:9/vllm/v1", model: MODEL, health: "healthy" as const, limit: 50, inFlight: 7, signal: "grow" };
    await publishGpuEngines(redis, prefix, "killed-process", [ghost], Date.now() - 60_000);
    const page = await until(h, "one process left", (p) => p.rows.length === 2 && p.rows.every((r) => r.processes === 1));
    assert.equal(page.rows[0]!.limit, h.workers!.gpu!.snapshot()[0]!.limit);
    assert.ok(!page.rows.some((r) => r.url === ghost.url), "the dead process's engine is not listed");
    assert.equal(await redis.hexists(gpuEnginesKey(prefix), "killed-process"), 0, "its report was removed");
  });

  test("no GPU worker left: the console probes VLLM_BASE_URL itself; the engines nobody reports show unhealthy", async () => {
    await h.workers!.close();
    delete h.workers;
    const direct = h.env.VLLM_BASE_URL!;
    const page = await until(h, "the direct probe of VLLM_BASE_URL", (p) => p.rows.some((r) => r.url === direct && r.health === "healthy"));
    const probed = page.rows.find((r) => r.url === direct)!;
    // Without a GPU lane the realtime aggregator's concurrency is what applies to a vLLM server.
    assert.equal(probed.limit, h.env.SIEVE_WORKER_CONCURRENCY);
    for (const u of urls()) {
      const r = page.rows.find((x) => x.url === u);
      assert.equal(r?.health, "unhealthy", u);
      assert.match(r!.text, /no GPU worker reports/);
    }
  });
});
