/**
 * Every schedule comes back on its own when Redis comes back EMPTY (docs/operations.md#outages):
 * the sweeper, the batch lane's packer and poller (workers) and the nightly inbox cron (API) are
 * re-created by the processes that own them, without a restart. And /readyz says so when nothing
 * runs the recovery machinery (no sweeper heartbeat).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { BATCH_LANE_QUEUE, BULK_INBOX_QUEUE, MAINTENANCE_QUEUE } from "@sieve/shared";
import { startHarness, type Harness } from "./support/harness.js";
import { OwnRedis } from "./support/own-services.js";

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`${what}: not within ${timeoutMs} ms`);
}

describe("schedules after Redis lost its data", () => {
  let redis: OwnRedis;
  let h: Harness;
  let inbox: string;
  before(async () => {
    redis = await OwnRedis.start();
    inbox = mkdtempSync(path.join(tmpdir(), "sieve-inbox-"));
    h = await startHarness({
      workers: false,
      batchLane: true,
      env: { REDIS_URL: redis.url, SIEVE_BULK_CRON: "0 3 * * *", SIEVE_BULK_INBOX: inbox, SIEVE_SCHEDULE_CHECK_MS: "1000" },
    });
    await h.startWorkers({ sweepEveryMs: 1_000, staleAfterMs: 60_000 });
  });
  after(async () => {
    await h.close();
    await redis.destroy();
    rmSync(inbox, { recursive: true, force: true });
  });

  test("the sweeper, batch-lane and inbox schedulers are re-created, and the sweeper runs again", async () => {
    const conn = { url: redis.url };
    const prefix = h.env.SIEVE_QUEUE_PREFIX;
    const queues = [new Queue(MAINTENANCE_QUEUE, { connection: conn, prefix }), new Queue(BATCH_LANE_QUEUE, { connection: conn, prefix }), new Queue(BULK_INBOX_QUEUE, { connection: conn, prefix })];
    for (const q of queues) q.on("error", () => {});
    const schedulers = async () =>
      [
        await queues[0]!.getJobScheduler("sweep"),
        await queues[1]!.getJobScheduler("batch-pack"),
        await queues[1]!.getJobScheduler("batch-poll"),
        await queues[2]!.getJobScheduler("bulk-inbox"),
      ].map((s) => (s ? s.key : undefined));
    try {
      assert.deepEqual(await schedulers(), ["sweep", "batch-pack", "batch-poll", "bulk-inbox"]);
      await waitFor("a sweeper heartbeat", async () => (await (await fetch(`${h.api.url}/readyz`)).json() as any).checks.sweeper === "ok", 20_000);

      const marker = new Redis(redis.url);
      marker.on("error", () => {});
      await marker.set(`${prefix}:marker`, "before");
      await redis.kill();
      await redis.start(); // nothing survived (the owners may re-create their schedulers at once, on reconnect)
      assert.equal(await marker.get(`${prefix}:marker`), null, "Redis came back empty");
      marker.disconnect();
      await waitFor("every scheduler re-created", async () => (await schedulers()).every((s) => s !== undefined), 20_000);
      await waitFor("the sweeper ran again (heartbeat back)", async () => {
        const r = await fetch(`${h.api.url}/readyz`);
        return r.status === 200 && ((await r.json()) as any).checks.sweeper === "ok";
      }, 20_000);
    } finally {
      await Promise.all(queues.map((q) => q.close()));
    }
  });
});

describe("readiness without a sweeper", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ workers: false, env: { SIEVE_READY_SWEEPER_MAX_AGE_MS: "1500" } });
  });
  after(async () => h.close());

  test("/readyz turns 503 once no sweeper has run for SIEVE_READY_SWEEPER_MAX_AGE_MS", async () => {
    const first = await fetch(`${h.api.url}/readyz`);
    const body = (await first.json()) as any;
    // Right after start the grace period may or may not have passed on a loaded machine.
    assert.ok(["waiting", "stale"].includes(body.checks.sweeper), JSON.stringify(body));
    await new Promise((r) => setTimeout(r, 1_700));
    const later = await fetch(`${h.api.url}/readyz`);
    assert.equal(later.status, 503);
    assert.ok(Number(later.headers.get("retry-after")) > 0);
    assert.deepEqual(((await later.json()) as any).checks, { redis: "ok", postgres: "ok", sweeper: "stale" });
  });
});
